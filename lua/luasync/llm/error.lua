-- luasync.llm.error: the error tables LLM calls reject with, and API key redaction.
--
-- Every LLM error is errors.new(kind, message, fields) with
--   kind       "http" | "timeout" | "connect" | "protocol" | "cancelled"
--   provider   "openai" | "anthropic" | "ollama"
--   status     HTTP status (http errors)
--   type, code the provider's error type / code ("rate_limit_error", "insufficient_quota", ...)
--   retryable  whether the failure is worth retrying (what the retry loop decides with)
--   request_id from the x-request-id / request-id response header
--   partial    text received before a stream failed
-- Messages read "provider: what happened". Every message and body text passes
-- through redact(), the one place API keys are removed.
local errors = require("luasync.errors")

local type, pairs, tostring = type, pairs, tostring
local find, sub = string.find, string.sub

local M = {}

---------------------------------------------------------------------------
-- Redaction

local secrets = {}   -- secret string -> true
local REDACTED = "[redacted]"

--- add_secret(s): from now on, redact() removes s (API keys, auth header values)
function M.add_secret(s)
  if type(s) == "string" and #s > 0 then secrets[s] = true end
end

local function replace_plain(s, what, with)
  local out, i, n = {}, 1, 0
  while true do
    local a, b = find(s, what, i, true)
    if not a then break end
    n = n + 1
    out[n] = sub(s, i, a - 1)
    n = n + 1
    out[n] = with
    i = b + 1
  end
  n = n + 1
  out[n] = sub(s, i)
  return table.concat(out)
end

--- redact(v) -> v with every known secret replaced by "[redacted]" (strings only; other values as they are)
function M.redact(v)
  if type(v) ~= "string" then return v end
  for s in pairs(secrets) do
    if find(v, s, 1, true) then v = replace_plain(v, s, REDACTED) end
  end
  return v
end
local redact = M.redact

---------------------------------------------------------------------------
-- Building errors

--- new(kind, provider, message, fields?) -> error table (message redacted, prefixed with the provider)
function M.new(kind, provider, message, fields)
  fields = fields or {}
  fields.provider = provider
  if fields.retryable == nil then fields.retryable = false end
  return errors.new(kind, redact(provider .. ": " .. tostring(message)), fields)
end

local function request_id(headers)
  if type(headers) ~= "table" then return nil end
  return headers["x-request-id"] or headers["request-id"]
end
M.request_id = request_id

-- What a provider's error body says: OpenAI {"error":{"message","type","code"}},
-- Anthropic {"type":"error","error":{"type","message"}}, Ollama {"error":"..."},
-- and the shapes other OpenAI-compatible servers use ({"message"}, {"detail"}).
local function describe_body(obj)
  if type(obj) ~= "table" then return nil end
  local e = obj.error
  if type(e) == "table" then
    local msg = e.message
    if type(msg) ~= "string" then msg = nil end
    local etype, code = e.type, e.code
    if type(etype) ~= "string" then etype = nil end
    if type(code) ~= "string" and type(code) ~= "number" then code = nil end
    return msg, etype, code
  elseif type(e) == "string" then
    return e
  end
  if type(obj.message) == "string" then return obj.message end
  if type(obj.detail) == "string" then return obj.detail end
  return nil
end
M.describe_body = describe_body

local function retryable_status(status)
  return status == 408 or status == 409 or status == 429 or status >= 500
end
M.retryable_status = retryable_status

--- should_retry(default, headers) -> bool: x-should-retry: true|false overrides the default
local function should_retry(default, headers)
  local h = type(headers) == "table" and headers["x-should-retry"]
  if h == "true" then return true end
  if h == "false" then return false end
  return default
end
M.should_retry = should_retry

--- from_status(provider, status, headers, body_text) -> the error for an HTTP status >= 300
function M.from_status(provider, status, headers, body_text)
  local json = require("luasync.json")
  body_text = redact(body_text or "")
  local msg, etype, code
  local ok, obj = pcall(json.decode, body_text)
  if ok then msg, etype, code = describe_body(obj) end
  if msg == nil then
    msg = body_text:gsub("%s+$", "")
    if #msg > 200 then msg = msg:sub(1, 200) .. "..." end
    if msg == "" then msg = "no error message" end
  end
  local quota = etype == "insufficient_quota" or code == "insufficient_quota"
  local label = "HTTP " .. status
  if etype then label = label .. " " .. etype end
  return M.new("http", provider, label .. ": " .. msg, {
    status = status, type = etype, code = code, request_id = request_id(headers), body = body_text,
    retryable = should_retry(retryable_status(status) and not quota, headers),
  })
end

--- from_event(provider, obj, headers) -> the error for an error event inside a 200 stream
function M.from_event(provider, obj, headers)
  local msg, etype, code = describe_body(obj)
  msg = msg or "error event in the stream"
  local retryable = etype == "overloaded_error" or etype == "api_error" or etype == "server_error"
    or etype == "rate_limit_error" or etype == nil
  local label = "stream error"
  if etype then label = label .. " " .. etype end
  return M.new("http", provider, label .. ": " .. msg, {
    type = etype, code = code, request_id = request_id(headers), retryable = retryable,
  })
end

-- Transport failures (API.md section 7 kinds) as LLM kinds.
local TRANSPORT_KIND = {
  timeout = "timeout", connect = "connect", tls = "connect", protocol = "protocol",
  too_large = "protocol", cancelled = "cancelled",
}

--- from_transport(provider, e, headers?) -> the error for an HTTP client failure (or e itself if cancelled)
function M.from_transport(provider, e, headers)
  if type(e) == "table" and e.kind == "cancelled" then return e end
  local kind, msg = "protocol", e
  if type(e) == "table" then
    kind = TRANSPORT_KIND[e.kind] or "protocol"
    msg = e.message or e.kind
  end
  return M.new(kind, provider, msg, {
    request_id = request_id(headers),
    -- connection refused, timed out or dropped: worth retrying; a TLS failure is not
    retryable = should_retry(not (type(e) == "table" and e.kind == "tls"), headers),
  })
end

--- protocol(provider, message, fields?) -> a non-retryable protocol error
function M.protocol(provider, message, fields)
  return M.new("protocol", provider, message, fields)
end

return M
