-- luasync.http: http.request/get/post and fetch (API.md section 7, docs/http.md) on the native
-- transport (src/lua/mod_http.cpp over src/http: one curl multi handle driven by the libuv loop).
--
-- Every transfer has a context table `ctx` (metatable Ctx) that receives its events. The native side
-- batches events: once per loop iteration it calls drain(), which takes them all with native.next().
-- ctx doubles as
--   * the promise's cancel hook and the body Stream's close function (calling it aborts the transfer),
--   * the wake token of a task parked reading the body (op.what, op:cancel for sched.park).
local native = require("luasync.http_native")
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local errors = require("luasync.errors")

local new_cancellable, fulfill, reject = Promise._new_cancellable, Promise._fulfill, Promise._reject
local park, wake, current = sched.park, sched.wake, sched.current
local start, next_event = native.start, native.next
local type, tostring, tonumber, error, pairs, getmetatable, setmetatable, pcall =
  type, tostring, tonumber, error, pairs, getmetatable, setmetatable, pcall
local format, find, upper, lower, sub = string.format, string.find, string.upper, string.lower, string.sub

local M = {}

local Stream  -- luasync.stream, loaded on first streamed response
local function stream_module()
  Stream = Stream or require("luasync.stream")
  return Stream
end

local function is_stream(v)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__name == "luasync.Stream"
end

-- The URL for messages: no user:password@, query or fragment (they may hold secrets).
local function safe_url(url)
  return (url:gsub("[?#].*$", ""):gsub("^(%a[%w+.-]*://)[^/@]*@", "%1"))
end

---------------------------------------------------------------------------
-- Transfer contexts and their events

local Ctx = {}
Ctx.__index = Ctx
Ctx.what = "http response body"

local function close_upload(ctx)
  local s = ctx.upload
  if s then
    ctx.upload = false
    s:close()
  end
end

-- ctx(): the promise was cancelled, or the body Stream closed: abort the transfer.
Ctx.__call = function(ctx)
  ctx.t:abort()
  close_upload(ctx)
  local w = ctx.waiter
  if w then  -- a reader parked on the body: its read now returns nil
    ctx.waiter = false
    wake(w, ctx, true)
  end
end

-- sched: a task parked reading the body was cancelled.
function Ctx.cancel(ctx, rec)
  if ctx.waiter == rec then ctx.waiter = false end
end

local function make_error(ctx, kind, message)
  local url = safe_url(ctx.url)
  return errors.new(kind, format("%s %s: %s", ctx.method, url, message), { url = url, method = ctx.method })
end

local read_body

-- Nothing buffered yet: park until the transfer has more, then read again. Apart from read_body so that its
-- usual path has no loop (an inner loop stops LuaJIT's trace through the caller at this point).
local function wait_body(ctx)
  local rec = current()
  if rec == nil then error("await called outside an async task", 0) end
  ctx.waiter = rec
  local ok, e = park(ctx)
  if not ok then error(e, 0) end
  return read_body(ctx)
end

-- Next value of a streamed response body (Stream pull protocol, stream.lua).
function read_body(ctx)
  local batch = ctx.batch
  if batch then
    local i = ctx.bi + 1
    local v = batch[i]
    if v ~= nil then
      ctx.bi = i
      return v
    end
    ctx.batch = false
  end
  local v, kind, message = ctx.t:read()
  if v then
    if type(v) ~= "table" then return v end
    ctx.batch, ctx.bi = v, 1  -- framed: a batch of events (never empty)
    return v[1]
  elseif v == nil then
    if kind then error(make_error(ctx, kind, message), 0) end
    return nil
  end
  return wait_body(ctx)
end

-- The body Stream's pull: a callable {ctx} rather than a closure per response (LuaJIT does not compile
-- closure creation, so a closure here sent the whole event drain back to the interpreter).
local Pull = { __call = function(pull) return read_body(pull[1]) end }

local function on_headers(ctx, status, headers)
  local S = stream_module()
  local res = { status = status, headers = headers, body = S.new(setmetatable({ ctx }, Pull), ctx) }
  local wrap = ctx.wrap
  if wrap then res = wrap(res) end
  fulfill(ctx.p, res)
end

local function on_done(ctx, status, headers, body, url)
  fulfill(ctx.p, { status = status, headers = headers, body = body, url = url })
end

local function on_fail(ctx, kind, message)
  reject(ctx.p, make_error(ctx, kind, message))
end

local function on_readable(ctx)
  local w = ctx.waiter
  if w then
    ctx.waiter = false
    wake(w, ctx, true)
  end
end

-- Streamed request body: pull one chunk and hand it to the transfer (runs as a task: read may suspend).
local function pump(ctx)
  local s = ctx.upload
  if not s then return end
  local ok, v = pcall(s.read, s)
  ctx.pumping = false
  if ctx.upload ~= s then return end  -- the transfer ended meanwhile
  local t = ctx.t
  if ok and type(v) == "number" then v = tostring(v) end
  if ok and (v == nil or type(v) == "string") then
    if v == nil then ctx.upload = false end
    return t:feed(v)
  end
  ctx.upload = false
  if ok then v = "the body stream yielded a " .. type(v) .. " (expected strings)" end
  t:fail(errors.describe(v))
  s:close()
end

local function on_need_body(ctx, finished)
  if finished then return close_upload(ctx) end
  if ctx.pumping or not ctx.upload then return end
  ctx.pumping = true
  sched.start(pump, ctx)
end

local handlers = {
  [native.HEADERS] = on_headers, [native.DONE] = on_done, [native.FAIL] = on_fail,
  [native.READABLE] = on_readable, [native.NEED_BODY] = on_need_body,
}

native.set_drain(function()
  while true do
    local ctx, ev, a, b, c, d = next_event()
    if ctx == nil then return end
    handlers[ev](ctx, a, b, c, d)
  end
end)

---------------------------------------------------------------------------
-- Options

local function seconds(api, o, name, level)
  local v = o[name]
  if v == nil then return 0 end
  if type(v) ~= "number" or v ~= v or v < 0 then
    error(format("%s: %s must be a number of seconds >= 0", api, name), level + 1)
  end
  return v
end

-- Flat {name, value, ...} list; raises for CR/LF (never quoting the value: it may be a secret).
local function header_list(api, headers, level)
  if headers == nil then return nil, nil end
  if type(headers) ~= "table" then error(api .. ": headers must be a table", level + 1) end
  local list, n, length = {}, 0, nil
  for name, value in pairs(headers) do
    if type(name) ~= "string" then error(api .. ": header names must be strings", level + 1) end
    local tv = type(value)
    if tv == "number" then
      value = tostring(value)
    elseif tv ~= "string" then
      error(format("%s: header \"%s\" must be a string, got %s", api, name, tv), level + 1)
    end
    -- plain searches: a pattern search tries a class match at every byte (4x the cost)
    if find(name, "\n", 1, true) or find(name, "\r", 1, true) then
      error(api .. ": header name contains CR or LF", level + 1)
    end
    if find(value, "\n", 1, true) or find(value, "\r", 1, true) then
      error(format("%s: header value contains CR or LF (header \"%s\")", api, name), level + 1)
    end
    if find(value, "\0", 1, true) then
      error(format("%s: header value contains NUL (header \"%s\")", api, name), level + 1)
    end
    if lower(name) == "content-length" then length = tonumber(value) end
    list[n + 1], list[n + 2] = name, value
    n = n + 2
  end
  return list, length
end

-- Headers checked once for many requests (M._prepare_headers): the checked list as a native header set.
local Prepared = {}

local NO_OPTIONS = {}  -- read only

-- The last URL whose scheme passed: clients call the same few URLs again and again (strings are interned, so
-- the check is a pointer comparison).
local checked_url = false

local function check_url(api, url, level)
  if type(url) ~= "string" or url == "" then error(api .. ": url is required", level + 1) end
  local head = lower(sub(url, 1, 8))  -- plain string ops: string.match is not compiled by the JIT
  if sub(head, 1, 7) ~= "http://" and head ~= "https://" then
    local scheme = url:match("^(%a[%w+.-]*)://")
    if not scheme then
      error(format("%s: invalid URL \"%s\" (expected http:// or https://)", api, safe_url(url)), level + 1)
    end
    error(format("%s: unsupported URL scheme \"%s\" (only http and https)", api, lower(scheme)), level + 1)
  end
  checked_url = url
end

-- Starts a transfer; returns its promise. url/method/body, when given, win over the fields of o. deltas
-- (llm/transport.lua): "openai" or "anthropic": with SSE framing, plain text deltas come as their text
-- (mod_http.cpp).
local DELTA_FLAGS = { openai = native.OPENAI_DELTAS, anthropic = native.ANTHROPIC_DELTAS }
local function request(api, o, url, method, body, stream, wrap, level, deltas)
  level = level + 1
  if o == nil then o = NO_OPTIONS elseif type(o) ~= "table" then error(api .. ": options must be a table", level) end
  url = url or o.url
  if url ~= checked_url then check_url(api, url, level) end
  method = method or o.method or "GET"
  if method ~= "GET" then
    if type(method) ~= "string" then error(api .. ": method must be a string", level) end
    method = upper(method)
  end
  local headers, length = o.headers, nil
  if headers ~= nil then
    if getmetatable(headers) == Prepared then
      headers, length = headers.set, headers.length
    else
      headers, length = header_list(api, headers, level)
    end
  end
  if body == nil then body = o.body end
  local flags, upload = 0, false
  if stream == nil then stream = o.stream end
  if stream then flags = native.STREAM end
  if o.insecure then flags = flags + native.INSECURE end
  if deltas then flags = flags + DELTA_FLAGS[deltas] end
  if body ~= nil and type(body) ~= "string" then
    if not is_stream(body) then error(api .. ": body must be a string or a Stream", level) end
    upload, body = body, nil
    flags = flags + native.UPLOAD
  end
  local framing = o.framing
  if framing ~= nil then
    if framing ~= "sse" and framing ~= "ndjson" then error(api .. ": framing must be \"sse\" or \"ndjson\"", level) end
    if not stream then error(api .. ": framing needs stream=true", level) end
  end
  local max_body = o.max_body
  if max_body ~= nil and (type(max_body) ~= "number" or max_body < 0) then
    error(api .. ": max_body must be a number of bytes >= 0", level)
  end
  local timeout, connect_timeout = 0, 0
  if o.timeout ~= nil then timeout = seconds(api, o, "timeout", level) end
  if o.connect_timeout ~= nil then connect_timeout = seconds(api, o, "connect_timeout", level) end
  -- Only the fields a transfer of this kind uses: a buffered GET's context is a small table.
  local ctx
  if upload then
    ctx = setmetatable({ p = false, t = false, method = method, url = url, waiter = false, upload = upload,
                         pumping = false, wrap = wrap or false, batch = false, bi = 0 }, Ctx)
  elseif stream then
    ctx = setmetatable({ p = false, t = false, method = method, url = url, waiter = false, wrap = wrap or false,
                         batch = false, bi = 0 }, Ctx)
  else
    ctx = setmetatable({ p = false, t = false, method = method, url = url }, Ctx)
  end
  local t, err = start(ctx, method, url, headers, body, timeout, connect_timeout, max_body or -1, flags, framing,
    upload and length or -1)
  if not t then error(api .. ": " .. err, level) end
  ctx.t = t
  local p = new_cancellable(ctx)
  ctx.p = p
  return p
end

--- http.request{method=, url=, headers=, body=, timeout=, connect_timeout=, stream=, max_body=, insecure=,
--- framing=} -> Promise of {status=, headers=, body=}
function M.request(o)
  return (request("http.request", o, nil, nil, nil, nil, nil, 2))  -- (not a tail call: error levels count this frame)
end

--- http.get(url, opts) -> Promise of {status=, headers=, body=}
function M.get(url, o)
  if type(url) ~= "string" then error("http.get: url is required", 2) end
  return (request("http.get", o, url, "GET", nil, nil, nil, 2))
end

--- http.post(url, body, opts) -> Promise of {status=, headers=, body=}
function M.post(url, body, o)
  if type(url) ~= "string" then error("http.post: url is required", 2) end
  return (request("http.post", o, url, "POST", body == nil and "" or body, nil, nil, 2))
end

M._request = request

-- For callers that send the same headers table many times and never change it (llm/transport.lua): checks it
-- once and returns an object that request options take as `headers`; the native side then also makes curl's
-- header lines once.
function M._prepare_headers(api, headers)
  local list, length = header_list(api, headers, 2)
  local set, err = native.header_set(list or {})
  if not set then error(api .. ": " .. err, 2) end
  return setmetatable({ set = set, length = length }, Prepared)
end
M._stats = native.stats

--- fetch(url, {method=, headers=, body=, timeout=, ...}) -> Promise of a Response (resolved at the headers)
M.fetch = require("luasync.http.fetch")(M)

return M
