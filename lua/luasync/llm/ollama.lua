-- luasync.llm.ollama: Ollama's native chat API.
--
-- POST {host}/api/chat. Ollama streams unless the body says "stream": false; the
-- stream is NDJSON: {"message":{"content":...},"done":false} lines, then a
-- "done": true line with done_reason, prompt_eval_count and eval_count. Sampling
-- settings go in "options" (temperature, num_predict, stop); JSON mode is
-- "format": "json" or "format": <schema>.
local json = require("luasync.json")
local lerr = require("luasync.llm.error")
local request = require("luasync.llm.request")
local add_part, parts_text = request.add_part, request.parts_text

local decode = json.decode
local type, pcall, ipairs, tostring, tonumber, pairs = type, pcall, ipairs, tostring, tonumber, pairs
local find, sub, byte = string.find, string.sub, string.byte

local P = { name = "ollama", framing = "ndjson" }

function P.url(cfg) return cfg.base_url .. "/api/chat" end

function P.headers(cfg, stream)
  local h = { ["content-type"] = "application/json", accept = stream and "application/x-ndjson" or "application/json" }
  if cfg.api_key then h.authorization = "Bearer " .. cfg.api_key end   -- for a proxy in front of Ollama
  return h
end

function P.body(cfg, req, stream)
  local msgs = {}
  if req.system then msgs[1] = { role = "system", content = req.system } end
  for _, m in ipairs(req.messages) do msgs[#msgs + 1] = m end
  local body = { model = req.model or cfg.model, messages = msgs, stream = stream and true or false }
  local options = {}
  local any = false
  if req.temperature then options.temperature = req.temperature; any = true end
  if req.max_tokens then options.num_predict = req.max_tokens; any = true end
  if req.stop then options.stop = json.array(req.stop); any = true end
  if any then body.options = options end
  if req.json == true then body.format = "json" elseif type(req.json) == "table" then body.format = req.json end
  return body
end

local function usage_of(obj)
  return { input_tokens = tonumber(obj.prompt_eval_count) or 0, output_tokens = tonumber(obj.eval_count) or 0 }
end

function P.parse(obj)
  if type(obj) ~= "table" or type(obj.message) ~= "table" then
    return nil, lerr.protocol("ollama", "response has no message")
  end
  local text = obj.message.content
  if type(text) ~= "string" then text = "" end
  return {
    text = text, finish_reason = request.finish_reason(obj.done_reason or "stop"), usage = usage_of(obj),
    model = type(obj.model) == "string" and obj.model or nil, id = nil, raw = obj,
  }
end

---------------------------------------------------------------------------
-- Streaming: each event is one NDJSON line (a string)

function P.new_state()
  return { parts = {}, n = 0, model = false, last = false, done = false, head = false }
end

-- Fast path for a plain content line, nearly every line of a stream:
--   {"model":"M","created_at":"T","message":{"role":"assistant","content":"TEXT"},"done":false}
-- Returns TEXT without decoding the JSON, or nil (the done line, tool
-- calls, thinking, escapes in TEXT, other field order or spacing) for the full decode.
local HEAD = '{"role":"assistant","content":"'
local function plain_delta(line)
  local a = find(line, HEAD, 1, true)
  if not a then return nil end
  local b = a + #HEAD
  local e = find(line, '"', b, true)
  if not e or byte(line, e + 1) ~= 125 then return nil end   -- '}': message has no other field
  local bs = find(line, "\\", b, true)
  if bs and bs < e then return nil end
  local f = find(line, 'done":false}', e, true)
  if not f or byte(line, f - 1) ~= 34 or f + 11 ~= #line then return nil end
  return sub(line, b, e - 1)
end
P._plain_delta = plain_delta

-- The model comes from the first line. When that line is a plain delta it is kept
-- undecoded in st.head (the first token is not delayed by a JSON decode): the model is
-- then taken from the done line, which is decoded anyway, and only a stream without
-- one decodes st.head when its result is made.
local function read_head(st)
  local ok, obj = pcall(decode, st.head)
  st.head = false
  if ok and type(obj) == "table" then st.model = obj.model end
end

function P.event(st, line)
  local t = plain_delta(line)
  if t then
    if not st.model and not st.head then st.head = line end
    if t == "" then return nil end
    return add_part(st, t)
  end
  local ok, obj = pcall(decode, line)
  if not ok or type(obj) ~= "table" then
    return nil, lerr.protocol("ollama", "invalid JSON in the NDJSON stream: " .. tostring(obj))
  end
  if obj.error ~= nil then return nil, lerr.from_event("ollama", obj) end
  if not st.model and (obj.model ~= nil or not st.head) then
    st.model = obj.model
    st.head = false
  end
  if obj.done == true then
    st.done = true
    st.last = obj
  end
  local m = obj.message
  if type(m) == "table" then
    local t = m.content
    if type(t) == "string" and t ~= "" then
      return add_part(st, t)
    end
  end
  return nil
end

P.text = parts_text

function P.result(st)
  if st.head and not st.model then read_head(st) end
  local text = parts_text(st)
  local last = st.last or {}
  local raw = {}
  for k, v in pairs(last) do raw[k] = v end
  raw.message = { role = "assistant", content = text }
  return {
    text = text, finish_reason = request.finish_reason(last.done_reason or "stop"), usage = usage_of(last),
    model = type(st.model) == "string" and st.model or nil, id = nil, raw = raw,
  }
end

return P
