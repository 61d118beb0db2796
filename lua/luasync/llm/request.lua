-- luasync.llm.request: the provider-neutral form of a call, and helpers the providers share.
--
-- normalize(opts, api) -> req | nil, message, where req is
--   { messages = { {role=, content=}, ... }, model=, system=, temperature=, max_tokens=,
--     stop = {strings} | nil, json = true | schema table | nil, extra = table | nil }
-- from llm.chat{...} (opts.messages, or opts.prompt as one user message) or
-- llm.generate(prompt, opts) (prompt becomes the last user message).
local json = require("luasync.json")

local type, pairs, ipairs, tonumber, next = type, pairs, ipairs, tonumber, next

local M = {}

local KNOWN = {
  messages = true, prompt = true, model = true, system = true, temperature = true, max_tokens = true,
  stop = true, json = true, extra = true,
}

local function check_messages(list, api)
  if type(list) ~= "table" then return nil, api .. ": messages must be a list of {role=, content=} tables" end
  local n = list.n or #list
  if n == 0 then return nil, api .. ": messages is empty" end
  local out = {}
  for i = 1, n do
    local m = list[i]
    if type(m) ~= "table" or type(m.role) ~= "string" or m.content == nil then
      return nil, api .. ": messages[" .. i .. "] must be a table with a string role and a content"
    end
    out[i] = m
  end
  return out
end

--- normalize(opts, api, prompt?) -> req | nil, message
function M.normalize(opts, api, prompt)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then return nil, api .. ": options must be a table" end
  for k in pairs(opts) do
    if not KNOWN[k] and type(k) == "string" then
      return nil, api .. ": unknown option '" .. k .. "' (use extra={...} for provider fields)"
    end
  end
  local req = {}
  local messages, err
  if prompt ~= nil then
    if type(prompt) ~= "string" then return nil, api .. ": expected a prompt string, got " .. type(prompt) end
    messages = {}
    if opts.messages ~= nil then
      messages, err = check_messages(opts.messages, api)
      if not messages then return nil, err end
    end
    messages[#messages + 1] = { role = "user", content = prompt }
  elseif opts.messages ~= nil then
    messages, err = check_messages(opts.messages, api)
    if not messages then return nil, err end
  elseif type(opts.prompt) == "string" then
    messages = { { role = "user", content = opts.prompt } }
  else
    return nil, api .. ": expected messages={...} or prompt="
  end
  req.messages = messages
  if opts.model ~= nil and (type(opts.model) ~= "string" or opts.model == "") then
    return nil, api .. ": model must be a non-empty string"
  end
  req.model = opts.model
  if opts.system ~= nil and type(opts.system) ~= "string" then return nil, api .. ": system must be a string" end
  req.system = opts.system
  if opts.temperature ~= nil then
    req.temperature = tonumber(opts.temperature)
    if not req.temperature then return nil, api .. ": temperature must be a number" end
  end
  if opts.max_tokens ~= nil then
    local n = tonumber(opts.max_tokens)
    if not n or n < 1 or n % 1 ~= 0 then return nil, api .. ": max_tokens must be an integer >= 1" end
    req.max_tokens = n
  end
  local stop = opts.stop
  if type(stop) == "string" then
    req.stop = { stop }
  elseif type(stop) == "table" then
    req.stop = {}
    for i, s in ipairs(stop) do
      if type(s) ~= "string" then return nil, api .. ": stop must be a string or a list of strings" end
      req.stop[i] = s
    end
  elseif stop ~= nil then
    return nil, api .. ": stop must be a string or a list of strings"
  end
  local j = opts.json
  if j == true or type(j) == "table" then
    req.json = j
  elseif j ~= nil and j ~= false then
    return nil, api .. ": json must be true or a JSON schema table"
  end
  if opts.extra ~= nil and type(opts.extra) ~= "table" then return nil, api .. ": extra must be a table" end
  req.extra = opts.extra
  return req
end

--- merge(body, extra): extra's fields into body; nested objects merge key by key,
-- anything else replaces; json.null removes the field.
local function merge(body, extra)
  for k, v in pairs(extra) do
    local cur = body[k]
    if v == json.null then
      body[k] = nil
    elseif type(v) == "table" and type(cur) == "table" and v[1] == nil and next(v) ~= nil
        and cur[1] == nil and next(cur) ~= nil then
      merge(cur, v)
    else
      body[k] = v
    end
  end
  return body
end
M.merge = merge

--- text_of(content) -> the text of a message content (a string, or a list of {type="text", text=} blocks)
function M.text_of(content)
  if type(content) == "string" then return content end
  if type(content) ~= "table" then return "" end
  local parts = {}
  for _, b in ipairs(content) do
    if type(b) == "table" and type(b.text) == "string" then parts[#parts + 1] = b.text end
  end
  return table.concat(parts)
end

--- strip_fences(text) -> text without a surrounding ```json ... ``` fence
function M.strip_fences(text)
  local inner = text:match("^%s*```[%w_-]*%s*\n(.-)\n?%s*```%s*$")
  return inner or text
end

local FINISH = {
  stop = "stop", length = "length", tool_calls = "tool_calls", content_filter = "content_filter",
  function_call = "tool_calls", end_turn = "stop", stop_sequence = "stop", max_tokens = "length",
  tool_use = "tool_calls", refusal = "content_filter", pause_turn = "stop",
  model_context_window_exceeded = "length",
}

--- finish_reason(provider_value) -> "stop" | "length" | "tool_calls" | "content_filter" (nil stays nil)
function M.finish_reason(v)
  if v == nil or v == json.null then return nil end
  return FINISH[v] or "stop"
end

--- add_part(st, t) -> t: appends a text delta to a stream state's parts
-- (every provider's state has `parts` and its count `n`).
function M.add_part(st, t)
  local n = st.n + 1
  st.n = n
  st.parts[n] = t
  return t
end

--- parts_text(st) -> the text of the deltas so far
function M.parts_text(st) return table.concat(st.parts, "", 1, st.n) end

return M
