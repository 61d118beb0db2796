-- luasync.llm.call: running LLM calls: the concurrency slot, retries, streams.
--
-- A client record (made by init.lua) is
--   { cfg = config, P = provider module, url =, limiter =, usage = tally }
--
-- chat(client, req, body) -> Promise of the result table (a task: slot, attempts, parse).
-- open_stream(client, req, body) -> Stream of text deltas with s:result().
--
-- A stream sends its first request as soon as it gets a concurrency slot (at once
-- when one is free), without a task of its own. Its reader's task then checks the
-- status, retries until the first delta arrives, and after that pulls events
-- straight from the HTTP body stream: one event costs a read, a JSON decode (or
-- the provider's fast path) and a table lookup, with no task switch. A failure
-- after the first delta is final: the error carries the text so far in err.partial.
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local async = require("luasync.async")
local Stream = require("luasync.stream")
local json = require("luasync.json")
local lerr = require("luasync.llm.error")
local retry = require("luasync.llm.retry")
local usage = require("luasync.llm.usage")
local request = require("luasync.llm.request")
local transport = require("luasync.llm.transport")
local errors = require("luasync.errors")

local await, spawn, sleep = Promise.await, async.spawn, sched.sleep
local decode = json.decode
local type, pcall, error, pairs, tostring, getmetatable, setmetatable =
  type, pcall, error, pairs, tostring, getmetatable, setmetatable
local concat = table.concat

local M = {}

---------------------------------------------------------------------------
-- One HTTP attempt

-- The request headers of a client, made once per streaming flag (nothing changes them).
local function headers_of(client, stream)
  local key = stream and "hdr_stream" or "hdr_plain"
  local h = client[key]
  if h then return h end
  local cfg = client.cfg
  h = client.P.headers(cfg, stream)
  for k, v in pairs(cfg.headers) do h[k] = v end
  client[key] = h
  return h
end

local function send(client, body, stream)
  local cfg, P = client.cfg, client.P
  local headers = headers_of(client, stream)
  local ok, p = pcall(transport.request, {
    method = "POST", url = client.url, headers = headers, body = body, timeout = cfg.timeout,
    stream = stream, framing = stream and P.framing or nil, deltas = stream and P.deltas or nil,
  })
  if not ok then error(lerr.redact(type(p) == "table" and tostring(p.message) or tostring(p)), 0) end
  return p
end

-- The whole body of a streamed response (an error reply): raw chunks or framed events.
local function read_all(body)
  if type(body) == "string" then return body end
  if type(body) ~= "table" or type(body.read) ~= "function" then return "" end
  local parts = {}
  local ok = pcall(function()
    while true do
      local v = body:read()
      if v == nil then break end
      if type(v) == "table" then v = v.data end
      if type(v) == "string" then parts[#parts + 1] = v end
    end
  end)
  if not ok then body:close() end
  return concat(parts, type(parts[1]) == "string" and "" or "\n")
end

-- Ends an attempt that failed with err: raises unless a retry is due, else waits.
local function after_failure(client, err, attempt, headers)
  if err.kind == "cancelled" then error(err, 0) end
  err.attempts = attempt + 1
  if not err.request_id then err.request_id = lerr.request_id(headers) end
  if attempt >= client.cfg.max_retries or not err.retryable then error(err, 0) end
  sleep(retry.delay(attempt + 1, headers))
end

-- JSON mode and usage, once a call has completed: nil, or the protocol error.
local function complete(client, req, result, request_id)
  usage.record(client.usage, result)
  if req.json and result.json == nil then
    local ok, v = pcall(decode, request.strip_fences(result.text))
    if not ok then
      local shown = result.text
      if #shown > 500 then shown = shown:sub(1, 500) .. "..." end
      return lerr.protocol(client.P.name, "the model's reply is not valid JSON (" .. tostring(v) .. "): " .. shown,
        { text = result.text, request_id = request_id })
    end
    result.json = v
  end
  return nil
end

---------------------------------------------------------------------------
-- chat

local function chat_attempts(client, req, body)
  local P = client.P
  local name = P.name
  local attempt = 0
  while true do
    local err, headers
    local ok, res = pcall(await, send(client, body, false))
    if not ok then
      err = lerr.from_transport(name, res)
    else
      headers = res.headers
      local status = res.status
      if status >= 200 and status < 300 then
        local rid = lerr.request_id(headers)
        local okj, obj = pcall(decode, res.body)
        local result
        if not okj then
          err = lerr.protocol(name, "invalid JSON in the response: " .. tostring(obj), { request_id = rid })
        else
          result, err = P.parse(obj, req)
        end
        if result then
          err = complete(client, req, result, rid)
          if not err then return result end
        end
      else
        err = lerr.from_status(name, status, headers, res.body)
      end
    end
    after_failure(client, err, attempt, headers)
    attempt = attempt + 1
  end
end

local function chat_task(client, req, body)
  local lim = client.limiter
  lim:acquire()
  local ok, r = pcall(chat_attempts, client, req, body)
  lim:release()
  if not ok then error(r, 0) end
  return r
end

function M.chat(client, req, body)
  return spawn(chat_task, client, req, body)
end

---------------------------------------------------------------------------
-- Streams. The state x of one stream:
--   client, req, body (JSON text), P, st (provider stream state), hbody (HTTP body
--   stream), headers, slot (holds a limiter slot), first_p (promise of the first
--   attempt's response, sent as soon as the slot was free), start_err, slot_p (a
--   reader waiting for the slot), first (delta found while opening), pulled, opened,
--   finished, ok/value (outcome), result_p (promise given out by s:result()), stream.
-- The table is made with the sixteen fields every stream sets, so that its hash part holds sixteen slots
-- (LuaJIT's allocator for blocks up to 512 bytes): start_err, slot_p and result_p, set on rarer paths
-- (a failed first send, a full limiter, result() before the end), start out nil and are added when needed.
--
-- No task is made per stream: the first request is sent from the limiter's callback,
-- and everything else (status, retries, the first delta) runs in the reader's task.

local PENDING = Promise.PENDING

local function finalize(x, ok, v)
  if x.finished then return end
  x.finished = true
  if x.slot then
    x.slot = false
    x.client.limiter:release()
  end
  local p = x.first_p
  if p then
    x.first_p = false
    if p:status() == "pending" then p:cancel("stream closed") end   -- aborts the transfer
  end
  local hb = x.hbody
  if hb then
    x.hbody = false
    hb:close()
  end
  if not ok and type(v) == "table" and x.st and x.st.n > 0 and v.partial == nil then
    v.partial = x.P.text(x.st)
  end
  x.ok, x.value = ok, v
  local rp = x.result_p
  if rp then
    if ok then Promise._fulfill(rp, v) else Promise._reject(rp, v) end
  end
end

-- One pulled event (ok, ev from pcall(hb._pull)): the delta, or nil and false to read on,
-- or nil and nil (the regular end), or nil and err.
local function take(x, ok, ev)
  local st = x.st
  if not ok then
    if st.done then return nil, nil end   -- the terminal event arrived: what follows does not matter
    return nil, lerr.from_transport(x.P.name, ev, x.headers)
  end
  if ev == nil then
    if st.done then return nil, nil end
    return nil, lerr.new("protocol", x.P.name, "the stream ended before its final event",
      { retryable = true, request_id = lerr.request_id(x.headers) })
  end
  if st.done then return nil, false end
  local d, err = x.P.event(st, ev)
  if err then
    if not err.request_id then err.request_id = lerr.request_id(x.headers) end
    return nil, err
  end
  if d then return d end
  return nil, false
end

-- Events that give no delta (the role chunk, pings, the finish chunk, [DONE]): read on.
local function read_on(x, pull)
  while true do
    local d, err = take(x, pcall(pull))
    if d or err ~= false then return d, err end
  end
end

-- Next delta of the response, nil at its regular end, or nil, err. Nearly every event
-- is a delta: that path is straight-line code (no loop for a trace that reaches it from
-- the reader's own loop to abort on).
local function read_event(x)
  local pull = x.hbody._pull
  local d, err = take(x, pcall(pull))
  if d or err ~= false then return d, err end
  return read_on(x, pull)
end

-- The regular end of the response: the result, or an error (invalid JSON in JSON mode).
local function finish_ok(x)
  local result = x.P.result(x.st)
  local err = complete(x.client, x.req, result, lerr.request_id(x.headers))
  if err then
    finalize(x, false, err)
    return err
  end
  finalize(x, true, result)
  return nil
end

-- The stream was closed while its reader waited: stop with the recorded outcome.
local function check_open(x)
  if x.finished then error(x.value, 0) end
end

-- One attempt, in the reader's task: true once the first delta (x.first) or the regular end
-- of a reply without text arrived, else false, err, response headers. Raises a final error.
local function attempt_once(x)
  local P = x.P
  local p = x.first_p
  if p then x.first_p = false else p = send(x.client, x.body, true) end
  local ok, res = pcall(await, p)
  check_open(x)
  if not ok then return false, lerr.from_transport(P.name, res) end
  local headers = res.headers
  x.headers = headers
  local status = res.status
  if status < 200 or status >= 300 then
    local err = lerr.from_status(P.name, status, headers, read_all(res.body))
    check_open(x)
    return false, err, headers
  end
  x.hbody = res.body
  x.st = P.new_state(x.req)
  local d, err = read_event(x)
  check_open(x)
  if not err then
    if d then
      x.first = d
      return true
    end
    err = finish_ok(x)
    if not err then return true end
    error(err, 0)   -- invalid JSON in JSON mode: not retried
  end
  local hb = x.hbody
  x.hbody = false
  hb:close()
  return false, err, headers
end

-- In the reader's task: attempts until the first delta (x.first) or the regular end of a
-- reply without text. Raises the final error. The first attempt is straight-line code;
-- only retries loop (a trace reaching a loop here from the reader's own loop aborted).
local function open_attempts(x)
  if not x.slot then
    local w = x.slot_p
    if not w then
      w = Promise._new()
      x.slot_p = w
    end
    await(w)
  end
  check_open(x)
  if x.start_err then error(x.start_err, 0) end
  local done, err, headers = attempt_once(x)
  if done then return end
  local attempt = 0
  repeat
    after_failure(x.client, err, attempt, headers)
    check_open(x)
    attempt = attempt + 1
    done, err, headers = attempt_once(x)
  until done
end

-- Runs once the stream holds a slot (limiter callback): send the first request now.
local function start(x)
  if x.finished then   -- closed while it waited for the slot
    x.client.limiter:release()
    return
  end
  x.slot = true
  local ok, p = pcall(send, x.client, x.body, true)
  if ok then
    p._handled = true   -- its failure reaches the reader; never an unhandled rejection
    x.first_p = p
  else
    x.start_err = p
  end
  local w = x.slot_p
  if w then
    x.slot_p = false
    Promise._fulfill(w, true)
  end
end

local function pull(x)
  if x.finished then
    if x.ok then return nil end
    error(x.value, 0)
  end
  if not x.opened then
    x.opened = true
    x.pulled = true
    local ok, err = pcall(open_attempts, x)
    if not ok then
      finalize(x, false, err)
      error(x.value, 0)
    end
    local d = x.first
    if d then
      x.first = false
      return d
    end
    if x.finished then
      if x.ok then return nil end
      error(x.value, 0)
    end
  end
  local d, err = read_event(x)
  if d then return d end
  if x.finished then   -- closed by someone else while this task waited
    if x.ok then return nil end
    error(x.value, 0)
  end
  if not err then
    err = finish_ok(x)
    if not err then return nil end
  end
  finalize(x, false, err)
  error(err, 0)
end

local function drain(s)
  while s:read() ~= nil do end
end

local function drain_if_unread(x)
  if x.pulled or x.finished then return end
  x.pulled = true
  local p = spawn(function() pcall(drain, x.stream) end)
  p._handled = true
end

local function result_method(s)
  local x = s._llm
  if x.finished then
    local p = Promise._new()
    if x.ok then Promise._fulfill(p, x.value) else Promise._reject(p, x.value) end
    return p
  end
  local p = x.result_p
  if not p then
    p = Promise._new()
    x.result_p = p
    -- nobody reading? then result() reads the stream itself, once the caller's task yields
    sched.defer(drain_if_unread, x)
  end
  return p
end

-- The Stream's pull function is the state x itself (callable), and its close function a
-- callable table: a stream costs four tables and no task. The Stream table is made with
-- all its fields (stream.lua's _pull, _close, _closed, then _llm and result) at once.
local X = { __call = pull }
local Close = {
  __call = function(self)
    local x = self.x
    if x.finished then return end
    finalize(x, false, errors.cancelled("stream closed"))
  end,
}
local StreamMT = Stream.Stream

function M.open_stream(client, req, body)
  local x = setmetatable({ client = client, req = req, body = body, P = client.P, st = false, hbody = false,
                           headers = false, slot = false, first_p = false, first = false, pulled = false,
                           opened = false, finished = false, ok = false, value = false, stream = false }, X)
  local s = setmetatable({ _pull = x, _close = setmetatable({ x = x }, Close), _closed = false, _llm = x,
                           result = result_method }, StreamMT)
  x.stream = s
  client.limiter:acquire_cb(start, x)
  return s
end

---------------------------------------------------------------------------
-- streamGenerate: feed each delta to on_chunk; false stops (and aborts the request)

local function is_cancel(e) return type(e) == "table" and e.kind == "cancelled" end

local function stream_generate_task(s, on_chunk)
  local x = s._llm
  while true do
    local ok, d = pcall(s.read, s)
    if not ok then
      s:close()
      if not is_cancel(d) then pcall(on_chunk, nil, d) end
      error(d, 0)
    end
    if d == nil then return x.value.text end
    local okc, r = pcall(on_chunk, d)
    if okc and type(r) == "table" and getmetatable(r) == Promise then okc, r = pcall(await, r) end
    if not okc then
      s:close()
      error(r, 0)
    end
    if r == false then
      local text = x.st and x.P.text(x.st) or ""
      s:close()
      return text
    end
  end
end

function M.stream_generate(client, req, body, on_chunk)
  local s = M.open_stream(client, req, body)
  return spawn(stream_generate_task, s, on_chunk)
end

return M
