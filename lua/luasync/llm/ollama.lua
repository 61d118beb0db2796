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

local decode = json.decode
local type, pcall, ipairs, tostring, concat = type, pcall, ipairs, tostring, table.concat

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
  return { parts = {}, n = 0, model = false, last = false, done = false }
end

function P.event(st, line)
  local ok, obj = pcall(decode, line)
  if not ok or type(obj) ~= "table" then
    return nil, lerr.protocol("ollama", "invalid JSON in the NDJSON stream: " .. tostring(obj))
  end
  if obj.error ~= nil then return nil, lerr.from_event("ollama", obj) end
  if not st.model then st.model = obj.model end
  if obj.done == true then
    st.done = true
    st.last = obj
  end
  local m = obj.message
  if type(m) == "table" then
    local t = m.content
    if type(t) == "string" and t ~= "" then
      local n = st.n + 1
      st.n = n
      st.parts[n] = t
      return t
    end
  end
  return nil
end

function P.text(st) return concat(st.parts, "", 1, st.n) end

function P.result(st)
  local text = concat(st.parts, "", 1, st.n)
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
