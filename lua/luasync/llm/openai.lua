-- luasync.llm.openai: OpenAI Chat Completions, as spoken by api.openai.com and every
-- OpenAI-compatible server (vLLM, llama.cpp server, Ollama /v1, LM Studio, OpenRouter, Groq).
--
-- POST {base_url}/chat/completions; streaming is SSE: "data: {chunk}" events, a usage
-- chunk with empty choices (stream_options.include_usage), then "data: [DONE]".
local json = require("luasync.json")
local lerr = require("luasync.llm.error")
local request = require("luasync.llm.request")
local add_part, parts_text = request.add_part, request.parts_text

local decode, null = json.decode, json.null
local type, pcall, ipairs, tostring = type, pcall, ipairs, tostring
local find, sub, byte = string.find, string.sub, string.byte

-- deltas: the transport hands a plain content delta (plain_delta below) over as its text alone, a string event,
-- after the stream's first event (src/http/plain_delta.h).
local P = { name = "openai", framing = "sse", deltas = "openai" }

-- api.openai.com wants max_completion_tokens (its newer models reject max_tokens);
-- compatible servers know max_tokens.
local OFFICIAL = "^https://api%.openai%.com/"

function P.url(cfg) return cfg.base_url .. "/chat/completions" end

function P.headers(cfg, stream)
  local h = { ["content-type"] = "application/json", accept = stream and "text/event-stream" or "application/json" }
  if cfg.api_key then h.authorization = "Bearer " .. cfg.api_key end
  return h
end

local function mentions_json(req)
  if req.system and req.system:lower():find("json", 1, true) then return true end
  for _, m in ipairs(req.messages) do
    if request.text_of(m.content):lower():find("json", 1, true) then return true end
  end
  return false
end

function P.body(cfg, req, stream)
  local msgs = {}
  if req.system then msgs[1] = { role = "system", content = req.system } end
  for _, m in ipairs(req.messages) do msgs[#msgs + 1] = m end
  local body = { model = req.model or cfg.model, messages = msgs }
  if req.temperature then body.temperature = req.temperature end
  if req.max_tokens then
    if (cfg.base_url .. "/"):find(OFFICIAL) then
      body.max_completion_tokens = req.max_tokens
    else
      body.max_tokens = req.max_tokens
    end
  end
  if req.stop then body.stop = json.array(req.stop) end
  if req.json == true then
    body.response_format = { type = "json_object" }
    -- OpenAI refuses json_object unless a message says "JSON"
    if not mentions_json(req) then table.insert(msgs, 1, { role = "system", content = "Respond in JSON." }) end
  elseif type(req.json) == "table" then
    local s = req.json
    local spec
    if type(s.schema) == "table" and type(s.name) == "string" then
      spec = s   -- already {name=, schema=, strict=}
    else
      spec = { name = "response", schema = s, strict = true }
    end
    body.response_format = { type = "json_schema", json_schema = spec }
  end
  if stream then
    body.stream = true
    body.stream_options = { include_usage = true }
  end
  return body
end

local function usage_of(u)
  if type(u) ~= "table" then return { input_tokens = 0, output_tokens = 0 } end
  return { input_tokens = u.prompt_tokens or u.input_tokens or 0,
           output_tokens = u.completion_tokens or u.output_tokens or 0 }
end

--- parse(obj) -> result | nil, error: a non-streaming chat.completion
function P.parse(obj)
  local choice = type(obj) == "table" and type(obj.choices) == "table" and obj.choices[1]
  if type(choice) ~= "table" or type(choice.message) ~= "table" then
    return nil, lerr.protocol("openai", "response has no choices[1].message")
  end
  local text = choice.message.content
  if type(text) ~= "string" then text = "" end
  local model = obj.model
  if type(model) ~= "string" then model = nil end
  return {
    text = text, finish_reason = request.finish_reason(choice.finish_reason), usage = usage_of(obj.usage),
    model = model, id = type(obj.id) == "string" and obj.id or nil, raw = obj,
  }
end

---------------------------------------------------------------------------
-- Streaming: new_state() -> st; event(st, ev) -> delta | nil, err; result(st) -> result

function P.new_state()
  return { parts = {}, n = 0, id = false, model = false, finish = false, usage = false, done = false, head = false }
end

-- Fast path for the event that makes up almost the whole stream, a plain content delta
-- of the first choice, as OpenAI and vLLM write it:
--   {...,"choices":[{"index":0,"delta":{"content":"TEXT"},...,"finish_reason":null}]...}
-- Returns TEXT without decoding the JSON, or nil when the event is anything else (the
-- role chunk OpenAI sends first, finish/usage/tool events, another choice, escapes in TEXT, other field
-- order or spacing): those take the full decode. Inside a JSON string a quote is always
-- escaped, so the patterns can only match the object's own keys. Each pattern starts
-- with a character that is rare in such events ('{', 'f', 'd'): string.find checks every
-- occurrence of the first character with a memcmp.
local HEAD = '{"index":0,"delta":{"content":"'
local function plain_delta(data)
  local a = find(data, HEAD, 1, true)
  if not a then return nil end
  local b = a + #HEAD                                   -- TEXT starts here
  local e = find(data, '"', b, true)
  if not e or byte(data, e + 1) ~= 125 then return nil end   -- '}': content is delta's only field
  local bs = find(data, "\\", b, true)
  if bs and bs < e then return nil end
  local f = find(data, 'finish_reason":null', e, true)
  if not f or byte(data, f - 1) ~= 34 then return nil end
  if find(data, 'delta":', e, true) then return nil end    -- a second choice
  return sub(data, b, e - 1)
end
P._plain_delta = plain_delta

-- The chunk OpenAI (and vLLM, llama.cpp) sends before the first token,
--   {...,"choices":[{"index":0,"delta":{"role":"assistant","content":""[,"refusal":null]},...,"finish_reason":null}]...}
-- carries no text: true for it, so the first token does not wait for its decode either.
local ROLE = '{"index":0,"delta":{"role":"assistant","content":""'
local function role_chunk(data)
  local a = find(data, ROLE, 1, true)
  if not a then return false end
  local e = a + #ROLE                                    -- after the empty content
  if byte(data, e) ~= 125 then                           -- '}', else only a null refusal may follow
    if sub(data, e, e + 15) ~= ',"refusal":null}' then return false end
    e = e + 15
  end
  local f = find(data, 'finish_reason":null', e, true)
  if not f or byte(data, f - 1) ~= 34 then return false end
  if find(data, 'delta":', e, true) then return false end   -- a second choice
  return true
end
P._role_chunk = role_chunk

-- Every chunk of a completion carries the same id and model. When the first event is a
-- plain delta or the role chunk, it is kept undecoded in st.head (the first token is not
-- delayed by a JSON decode): the id and model then come from the first event that is
-- decoded anyway (the finish chunk, usage), and only a stream without one decodes st.head
-- when its result is made.
local function read_head(st)
  local h = st.head
  st.head = false
  local ok, obj = pcall(decode, h)
  if ok and type(obj) == "table" then
    st.id = obj.id
    st.model = obj.model
  end
end

function P.event(st, ev)
  if type(ev) == "string" then   -- a plain content delta the transport found (P.deltas)
    if ev == "" then return nil end
    return add_part(st, ev)
  end
  local data = ev.data
  local t = plain_delta(data)
  if t then
    if not st.id and not st.head then st.head = data end
    if t == "" then return nil end
    return add_part(st, t)
  end
  if role_chunk(data) then
    if not st.id and not st.head then st.head = data end
    return nil
  end
  if data == "[DONE]" then
    st.done = true
    return nil
  end
  local ok, obj = pcall(decode, data)
  if not ok or type(obj) ~= "table" then
    return nil, lerr.protocol("openai", "invalid JSON in the event stream: " .. tostring(obj))
  end
  if obj.error ~= nil and obj.error ~= null then return nil, lerr.from_event("openai", obj) end
  if not st.id and (obj.id ~= nil or not st.head) then
    st.id = obj.id
    st.model = obj.model
    st.head = false
  end
  local u = obj.usage
  if u ~= nil and u ~= null then st.usage = u end
  local choices = obj.choices
  if type(choices) == "table" then
    local c = choices[1]
    if type(c) == "table" and (c.index == nil or c.index == 0) then
      local fr = c.finish_reason
      if fr ~= nil and fr ~= null then st.finish = fr end
      local d = c.delta
      if type(d) == "table" then
        local t = d.content
        if type(t) == "string" and t ~= "" then
          return add_part(st, t)
        end
      end
    end
  end
  return nil
end

P.text = parts_text

function P.result(st)
  if st.head and not st.id then read_head(st) end
  local text = parts_text(st)
  local finish = st.finish or nil
  local raw = {
    id = st.id or nil, object = "chat.completion", model = st.model or nil,
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = finish } },
    usage = st.usage or nil,
  }
  return {
    text = text, finish_reason = request.finish_reason(finish), usage = usage_of(st.usage or nil),
    model = type(st.model) == "string" and st.model or nil, id = type(st.id) == "string" and st.id or nil,
    raw = raw,
  }
end

return P
