-- luasync.llm: LLM calls (API.md section 8). Global `llm`; `llmBridge` is M.bridge.
--
--   llm.generate(prompt, opts) / llm.generateAsync      -> Promise of the text
--   llm.chat{messages=, model=, system=, ...}           -> Promise of {text, json?, finish_reason, usage, model, id, raw}
--   llm.stream(prompt | opts)                           -> Stream of text deltas; s:result() -> Promise of the chat table
--   llm.streamGenerate(prompt, onChunk, opts)           -> Promise of the full text
--   llm.client{provider=, base_url=, api_key=, model=, max_concurrency=, max_retries=, timeout=, headers=}
--   llm.usage()                                         -> {[model] = {requests, input_tokens, output_tokens}}
--
-- Layout: config.lua (settings, environment), request.lua (the provider-neutral
-- call), openai.lua / anthropic.lua / ollama.lua (wire formats), call.lua (slot,
-- retries, streams), retry.lua, limiter.lua, usage.lua, error.lua (errors,
-- redaction), transport.lua (the HTTP seam).
--
-- Argument errors raise at once, naming the function. Every public function
-- reaches its implementation through tail calls, so `error(msg, 2)` there
-- points at the user's line.
local json = require("luasync.json")
local config = require("luasync.llm.config")
local request = require("luasync.llm.request")
local lerr = require("luasync.llm.error")
local call = require("luasync.llm.call")
local limiter = require("luasync.llm.limiter")
local usage = require("luasync.llm.usage")

local type, error, rawequal, setmetatable, pairs, tostring = type, error, rawequal, setmetatable, pairs, tostring

local M = {}

local PROVIDERS = {
  openai = require("luasync.llm.openai"),
  anthropic = require("luasync.llm.anthropic"),
  ollama = require("luasync.llm.ollama"),
}

-- Keys in the environment are secrets even before a client uses them.
lerr.add_secret(os.getenv("OPENAI_API_KEY"))
lerr.add_secret(os.getenv("ANTHROPIC_API_KEY"))

local SECRET_HEADERS = { authorization = true, ["x-api-key"] = true, ["api-key"] = true,
                         ["proxy-authorization"] = true }

local function register_secrets(cfg)
  lerr.add_secret(cfg.api_key)
  for k, v in pairs(cfg.headers) do
    if SECRET_HEADERS[k:lower()] then
      lerr.add_secret(v)
      lerr.add_secret((v:gsub("^%s*[Bb]earer%s+", "")))
    end
  end
end

-- JSON body of a call; raises (level 3 = the user's call) when a value cannot be encoded.
local function encode_body(rec, req, stream)
  local body = rec.P.body(rec.cfg, req, stream)
  if req.extra then request.merge(body, req.extra) end
  local ok, text = pcall(json.encode, body)
  if not ok then error(lerr.redact(tostring(text)), 3) end
  return text
end

-- A call given only a prompt string (no options) is the common case, and its body differs
-- from call to call only in the prompt: each client keeps that body as JSON text around a
-- marker, made once per streaming flag, and such a call encodes just the prompt string.
local MARK = '"@@luasync.llm.prompt@@"'
local find, sub = string.find, string.sub

local function prompt_template(rec, stream)
  local req = { messages = { { role = "user", content = sub(MARK, 2, -2) } } }
  local ok, text = pcall(json.encode, rec.P.body(rec.cfg, req, stream))
  if ok then
    local a, b = find(text, MARK, 1, true)
    if a and not find(text, MARK, b + 1, true) then return { sub(text, 1, a - 1), sub(text, b + 1) } end
  end
  return false   -- the marker is not where a prompt goes: such calls take the general path
end

-- After the body is made, the call machinery reads only req.json of a request (JSON mode,
-- Anthropic's forced tool): a prompt-only call shares this empty one, kept read-only.
local PROMPT_REQ = setmetatable({}, { __newindex = function() error("llm: the shared request is read-only", 2) end })

-- The request and JSON body of a call with only a prompt, or nil when the client has no
-- template.
local function prompt_call(rec, prompt, stream)
  local key = stream and "tpl_stream" or "tpl_plain"
  local tpl = rec[key]
  if tpl == nil then
    tpl = prompt_template(rec, stream)
    rec[key] = tpl
  end
  if not tpl then return nil end
  local ok, text = pcall(json.encode, prompt)
  if not ok then error(lerr.redact(tostring(text)), 3) end
  return PROMPT_REQ, tpl[1] .. text .. tpl[2]
end

---------------------------------------------------------------------------
-- Implementations on a client record

local function impl_chat(rec, opts)
  local req, msg = request.normalize(opts, "llm.chat")
  if not req then error(msg, 2) end
  return call.chat(rec, req, encode_body(rec, req, false))
end

local function text_of(r) return r.text end

local function impl_generate(rec, prompt, opts)
  if opts == nil and type(prompt) == "string" then
    local req, body = prompt_call(rec, prompt, false)
    if req then return call.chat(rec, req, body):andThen(text_of) end
  end
  local req, msg = request.normalize(opts, "llm.generate", prompt)
  if not req then error(msg, 2) end
  return call.chat(rec, req, encode_body(rec, req, false)):andThen(text_of)
end

local function impl_stream(rec, what, opts)
  local req, msg
  if type(what) == "string" then
    if opts == nil then
      local body
      req, body = prompt_call(rec, what, true)
      if req then return call.open_stream(rec, req, body) end
    end
    req, msg = request.normalize(opts, "llm.stream", what)
  else
    req, msg = request.normalize(what, "llm.stream")
  end
  if not req then error(msg, 2) end
  return call.open_stream(rec, req, encode_body(rec, req, true))
end

local function impl_stream_generate(rec, prompt, on_chunk, opts)
  if type(on_chunk) ~= "function" and not (type(on_chunk) == "table" and getmetatable(on_chunk)
      and getmetatable(on_chunk).__call) then
    error("llm.streamGenerate: expected a function onChunk(text, err) as argument 2", 2)
  end
  if opts == nil and type(prompt) == "string" then
    local req, body = prompt_call(rec, prompt, true)
    if req then return call.stream_generate(rec, req, body, on_chunk) end
  end
  local req, msg = request.normalize(opts, "llm.streamGenerate", prompt)
  if not req then error(msg, 2) end
  return call.stream_generate(rec, req, encode_body(rec, req, true), on_chunk)
end

local Client = {}
Client.__index = Client
Client.__name = "luasync.llm.Client"
Client.__tostring = function(c) return "llm client (" .. c.provider .. ", " .. c.model .. ")" end

-- The public object holds closures bound to the record, so both c:generate(...) and
-- c.generate(...) work, and the API key is not reachable from the object.
local function new_client(cfg)
  local rec = { cfg = cfg, P = PROVIDERS[cfg.provider], url = nil, usage = {},
                limiter = limiter.new(cfg.max_concurrency) }
  rec.url = rec.P.url(cfg)
  register_secrets(cfg)
  local c = setmetatable({ provider = cfg.provider, model = cfg.model, base_url = cfg.base_url }, Client)
  c.chat = function(a, b)
    if rawequal(a, c) then return impl_chat(rec, b) end
    return impl_chat(rec, a)
  end
  c.generate = function(a, b, d)
    if rawequal(a, c) then return impl_generate(rec, b, d) end
    return impl_generate(rec, a, b)
  end
  c.generateAsync = c.generate
  c.stream = function(a, b, d)
    if rawequal(a, c) then return impl_stream(rec, b, d) end
    return impl_stream(rec, a, b)
  end
  c.streamGenerate = function(a, b, d, e)
    if rawequal(a, c) then return impl_stream_generate(rec, b, d, e) end
    return impl_stream_generate(rec, a, b, d)
  end
  c.usage = function() return usage.copy(rec.usage) end
  return c
end

--- llm.client{...} -> client
function M.client(opts)
  if rawequal(opts, M) then error("llm.client: call it as llm.client{...}, not llm:client", 2) end
  local cfg, msg = config.resolve(opts)
  if not cfg then error(msg, 2) end
  return new_client(cfg)
end

---------------------------------------------------------------------------
-- Module-level functions: the default client, from the environment, made on first use.

local default_client = nil

local function default()
  if default_client then return default_client end
  local cfg, msg = config.resolve({})
  if not cfg then return nil, msg end
  default_client = new_client(cfg)
  return default_client
end

--- llm.default() -> the default client (raises when the environment configures none)
function M.default()
  local c, msg = default()
  if not c then error(msg, 2) end
  return c
end

local bridge = {}
M.bridge = bridge

-- llm.f(...), llm:f(...) and llmBridge:f(...) all work
local function is_self(a) return rawequal(a, M) or rawequal(a, bridge) end

function M.generate(a, b, d)
  local c, msg = default()
  if not c then error(msg, 2) end
  if is_self(a) then return c.generate(b, d) end
  return c.generate(a, b)
end
M.generateAsync = M.generate

function M.chat(a, b)
  local c, msg = default()
  if not c then error(msg, 2) end
  if is_self(a) then return c.chat(b) end
  return c.chat(a)
end

function M.stream(a, b, d)
  local c, msg = default()
  if not c then error(msg, 2) end
  if is_self(a) then return c.stream(b, d) end
  return c.stream(a, b)
end

function M.streamGenerate(a, b, d, e)
  local c, msg = default()
  if not c then error(msg, 2) end
  if is_self(a) then return c.streamGenerate(b, d, e) end
  return c.streamGenerate(a, b, d)
end

--- llm.usage() -> totals per model over every client of this process
function M.usage() return usage.copy(usage.total) end

--- llm.redact(s) -> s with every known API key replaced by "[redacted]"
M.redact = lerr.redact

bridge.generateAsync = M.generateAsync
bridge.generate = M.generate
bridge.streamGenerate = M.streamGenerate
bridge.chat = M.chat
bridge.stream = M.stream

return M
