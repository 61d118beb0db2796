-- luasync.llm.anthropic: the Anthropic Messages API.
--
-- POST {base_url}/v1/messages with x-api-key and anthropic-version: 2023-06-01.
-- max_tokens is required by the API (DEFAULT_MAX_TOKENS when the call gives none).
-- Streaming is SSE with named events: message_start, content_block_start, ping,
-- content_block_delta (text_delta / input_json_delta), content_block_stop,
-- message_delta (stop_reason, usage), message_stop, and error.
--
-- JSON: json=true asks for JSON in the system prompt; a schema table forces a
-- tool ("json_output") whose input_schema is the schema, and the tool's input
-- becomes the result's json (its text is that input as JSON).
local json = require("luasync.json")
local lerr = require("luasync.llm.error")
local request = require("luasync.llm.request")
local add_part, parts_text = request.add_part, request.parts_text

local decode, encode, null = json.decode, json.encode, json.null
local type, pcall, ipairs, tostring, concat = type, pcall, ipairs, tostring, table.concat
local find, sub, byte = string.find, string.sub, string.byte

-- deltas: the transport hands a plain text delta (plain_delta below) over as its text alone, a string event
-- (src/http/plain_delta.h).
local P = { name = "anthropic", framing = "sse", deltas = "anthropic" }

P.VERSION = "2023-06-01"
P.DEFAULT_MAX_TOKENS = 4096
P.JSON_TOOL = "json_output"
P.JSON_PROMPT = "Respond with only one valid JSON value: no prose, no code fences."

function P.url(cfg) return cfg.base_url .. "/v1/messages" end

function P.headers(cfg, stream)
  local h = { ["content-type"] = "application/json", ["anthropic-version"] = P.VERSION,
              accept = stream and "text/event-stream" or "application/json" }
  if cfg.api_key then h["x-api-key"] = cfg.api_key end
  return h
end

function P.body(cfg, req, stream)
  local system = req.system
  local msgs = {}
  for _, m in ipairs(req.messages) do
    if m.role == "system" then
      -- Messages has no system role: it goes to the top-level system field
      local t = request.text_of(m.content)
      system = system and (system .. "\n\n" .. t) or t
    else
      msgs[#msgs + 1] = m
    end
  end
  local body = { model = req.model or cfg.model, max_tokens = req.max_tokens or P.DEFAULT_MAX_TOKENS,
                 messages = msgs }
  if req.temperature then body.temperature = req.temperature end
  if req.stop then body.stop_sequences = json.array(req.stop) end
  if req.json == true then
    system = system and (system .. "\n\n" .. P.JSON_PROMPT) or P.JSON_PROMPT
  elseif type(req.json) == "table" then
    local schema = req.json
    if type(schema.schema) == "table" and type(schema.name) == "string" then schema = schema.schema end
    body.tools = { { name = P.JSON_TOOL, description = "Give the answer as JSON matching this schema.",
                     input_schema = schema } }
    body.tool_choice = { type = "tool", name = P.JSON_TOOL }
  end
  if system then body.system = system end
  if stream then body.stream = true end
  return body
end

local function finish_of(stop_reason, forced_tool)
  -- the forced JSON tool is how the answer arrives, not a request to call a tool
  if forced_tool and stop_reason == "tool_use" then return "stop" end
  return request.finish_reason(stop_reason)
end

--- parse(obj, req) -> result | nil, error: a non-streaming message
function P.parse(obj, req)
  if type(obj) ~= "table" or type(obj.content) ~= "table" then
    return nil, lerr.protocol("anthropic", "response has no content")
  end
  local parts, tool_input = {}, nil
  for _, block in ipairs(obj.content) do
    if type(block) == "table" then
      if block.type == "text" and type(block.text) == "string" then
        parts[#parts + 1] = block.text
      elseif block.type == "tool_use" and block.name == P.JSON_TOOL then
        tool_input = block.input
      end
    end
  end
  local forced = req and type(req.json) == "table"
  local text = concat(parts)
  if forced and tool_input ~= nil then text = encode(tool_input) end
  local u = type(obj.usage) == "table" and obj.usage or {}
  local r = {
    text = text, finish_reason = finish_of(obj.stop_reason, forced),
    usage = { input_tokens = u.input_tokens or 0, output_tokens = u.output_tokens or 0 },
    model = type(obj.model) == "string" and obj.model or nil, id = type(obj.id) == "string" and obj.id or nil,
    raw = obj,
  }
  if forced and tool_input ~= nil then r.json = tool_input end
  return r
end

---------------------------------------------------------------------------
-- Streaming

function P.new_state(req)
  return { parts = {}, n = 0, id = false, model = false, finish = false, input = 0, output = 0,
           done = false, forced = req and type(req.json) == "table" or false, blocks = {} }
end

local IGNORED = { ping = true, content_block_start = true, content_block_stop = true }

-- Fast path for a plain text delta, nearly every event of a stream:
--   {"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"TEXT"}}
-- Returns TEXT without decoding the JSON, or nil (escapes in TEXT, other field order or
-- spacing) for the full decode. As in openai.lua, patterns start with a rare character.
local HEAD = '{"type":"text_delta","text":"'
local function plain_delta(data)
  local a = find(data, HEAD, 1, true)
  if not a then return nil end
  local b = a + #HEAD
  local e = find(data, '"', b, true)
  if not e or byte(data, e + 1) ~= 125 or byte(data, e + 2) ~= 125 or e + 2 ~= #data then return nil end
  local bs = find(data, "\\", b, true)
  if bs and bs < e then return nil end
  return sub(data, b, e - 1)
end
P._plain_delta = plain_delta

function P.event(st, ev)
  if type(ev) == "string" then   -- a plain text delta the transport found (P.deltas)
    if ev == "" then return nil end
    return add_part(st, ev)
  end
  local name = ev.event
  if IGNORED[name] then return nil end
  if name == "content_block_delta" then
    local t = plain_delta(ev.data)
    if t then
      if t == "" then return nil end
      return add_part(st, t)
    end
  end
  local ok, obj = pcall(decode, ev.data)
  if not ok or type(obj) ~= "table" then
    return nil, lerr.protocol("anthropic", "invalid JSON in the event stream: " .. tostring(obj))
  end
  if name == "message" then name = obj.type end   -- unnamed events carry their type in the data
  if name == "content_block_delta" then
    local d = obj.delta
    if type(d) ~= "table" then return nil end
    local t
    if d.type == "text_delta" then t = d.text elseif d.type == "input_json_delta" then t = d.partial_json end
    if type(t) == "string" and t ~= "" then
      return add_part(st, t)
    end
    return nil
  elseif name == "message_start" then
    local m = obj.message
    if type(m) == "table" then
      st.id, st.model = m.id, m.model
      local u = m.usage
      if type(u) == "table" then
        st.input = u.input_tokens or st.input
        st.output = u.output_tokens or st.output
      end
    end
  elseif name == "message_delta" then
    local d = obj.delta
    if type(d) == "table" and d.stop_reason ~= nil and d.stop_reason ~= null then st.finish = d.stop_reason end
    local u = obj.usage
    if type(u) == "table" then
      if type(u.input_tokens) == "number" then st.input = u.input_tokens end
      if type(u.output_tokens) == "number" then st.output = u.output_tokens end
    end
  elseif name == "message_stop" then
    st.done = true
  elseif name == "error" then
    return nil, lerr.from_event("anthropic", obj)
  end
  return nil
end

P.text = parts_text

function P.result(st)
  local text = parts_text(st)
  local finish = st.finish or nil
  local usage = { input_tokens = st.input, output_tokens = st.output }
  local content
  if st.forced then
    local ok, input = pcall(decode, text)
    content = { { type = "tool_use", name = P.JSON_TOOL, input = ok and input or text } }
  else
    content = { { type = "text", text = text } }
  end
  local raw = { id = st.id or nil, type = "message", role = "assistant", model = st.model or nil,
                content = content, stop_reason = finish, usage = usage }
  return {
    text = text, finish_reason = finish_of(finish, st.forced),
    usage = { input_tokens = st.input, output_tokens = st.output },
    model = type(st.model) == "string" and st.model or nil, id = type(st.id) == "string" and st.id or nil,
    raw = raw,
  }
end

return P
