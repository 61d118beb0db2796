-- luasync.stream.consumers: forEach, reduce, collect, count and pipeTo.
-- Installed by stream.lua (returns an installer).
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local async = require("luasync.async")

local spawn, await = async.spawn, Promise.await
local current = sched.current
local last_raise = Promise._last_raise
local on_error = Promise._on_error
local getmetatable, type, error, xpcall, pcall, rawequal = getmetatable, type, error, xpcall, pcall, rawequal

return function(M, Stream)
  local is_callable, settled, check_fn = M._is_callable, M._settled, M._check_fn

  ---------------------------------------------------------------------------
  -- Consumers: each runs in a task of its own and returns that task's Promise.
  -- When the body fails (an error in any stage, or the promise is cancelled)
  -- the stream is closed, which closes every stage back to the source, and the
  -- original error value is re-raised with its original stack.

  -- Re-raise a failure caught by xpcall(f, on_error): r = {error, frames}. The
  -- task's report then shows the frames where the error happened (an await that
  -- raised a rejection has already recorded its own).
  local function rethrow(r)
    local e = r[1]
    if not (last_raise.co == current() and rawequal(last_raise.reason, e)) then
      last_raise.co, last_raise.reason, last_raise.frames = current(), e, r[2]
    end
    error(e, 0)
  end
  M._rethrow = rethrow

  local function consume(s, body, a, b)
    return spawn(function()
      local ok, r = xpcall(body, on_error, s, a, b)
      s:close()
      if ok then return r end
      return rethrow(r)
    end)
  end

  local function for_each(s, fn)
    while true do
      local v = s._pull()
      if v == nil then return nil end
      local r = fn(v)
      if type(r) == "table" and getmetatable(r) == Promise then await(r) end
    end
  end

  --- s:forEach(fn) -> Promise (resolves with nil once every value went through fn)
  function Stream:forEach(fn)
    check_fn(fn, "forEach")
    return consume(self, for_each, fn)
  end

  local function reduce(s, fn, acc)
    if acc == nil then
      acc = s._pull()
      if acc == nil then return nil end
    end
    while true do
      local v = s._pull()
      if v == nil then return acc end
      acc = fn(acc, v)
      if type(acc) == "table" and getmetatable(acc) == Promise then acc = await(acc) end
    end
  end

  --- s:reduce(fn, init?) -> Promise of the accumulated value (without init, the first value starts it)
  function Stream:reduce(fn, init)
    check_fn(fn, "reduce")
    return consume(self, reduce, fn, init)
  end

  local function collect(s)
    local out, n = {}, 0
    while true do
      local v = s._pull()
      if v == nil then return out end
      n = n + 1
      out[n] = v
    end
  end

  --- s:collect() -> Promise of an array of every value
  function Stream:collect() return consume(self, collect) end

  local function count(s)
    local n = 0
    while s._pull() ~= nil do n = n + 1 end
    return n
  end

  --- s:count() -> Promise of the number of values
  function Stream:count() return consume(self, count) end

  -- pipeTo: a sink given as a path is opened here (fs.writeStream) and closed at
  -- the end, also after an error; a writable passed in (stdout and stderr
  -- included) is never closed by pipeTo.
  local function open_sink(sink)
    if type(sink) == "string" then
      local w = settled(require("luasync.fs").writeStream(sink))
      return w, true
    end
    if type(sink) ~= "table" or not is_callable(sink.write) then
      error("Stream.pipeTo: expected a file path or a writable (an object with write and close)", 0)
    end
    return sink, false
  end

  local function close_quietly(w)
    local ok, p = pcall(w.close, w)
    if ok and getmetatable(p) == Promise then p:catch(function() end) end
  end

  local function write_all(s, w)
    while true do
      local v = s._pull()
      if v == nil then return end
      local r = w:write(v)
      if type(r) == "table" and getmetatable(r) == Promise then await(r) end
    end
  end

  local function pipe_to(s, sink)
    local w, opened = open_sink(sink)
    if not opened then return write_all(s, w) end
    local ok, r = xpcall(write_all, on_error, s, w)
    if not ok then
      close_quietly(w)
      return rethrow(r)
    end
    settled(w:close())
    return nil
  end

  --- s:pipeTo(sink) -> Promise: writes every value to sink, waiting for each write (backpressure)
  function Stream:pipeTo(sink)
    if sink == nil then error("Stream.pipeTo: expected a sink", 2) end
    return consume(self, pipe_to, sink)
  end
end
