-- luasync.iobase: the Lua half of native readers and sinks (src/io/reader.h,
-- src/io/sink.h), shared by stdio, fs and process.
--
--   iobase.source(reader, what, make_error) -> src
--     src:pull() -> next chunk | nil at the end; parks the task while nothing is
--     buffered; raises make_error(code, message) on failure.
--     src:close() releases the reader (idempotent); tasks parked in pull get nil.
--   iobase.stream(src, close?) -> Stream.new(pull, close) over src
--   iobase.writable(sink, name, make_error) -> writable: w:write(data) -> Promise
--     (resolved once accepted: at most HIGH bytes wait behind the write in
--     flight), w:close() -> Promise (resolved when flushed and closed)
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local errors = require("luasync.errors")

local current, park, wake = sched.current, sched.park, sched.wake
local setmetatable, type, error, next, tostring = setmetatable, type, error, next, tostring

local M = {}

M.HIGH = 64 * 1024

-- One settled promise serves every write accepted at once: a settled promise
-- never changes, and awaiting it does not suspend.
local READY = Promise._new()
Promise._fulfill(READY, true)
M.READY = READY

---------------------------------------------------------------------------
-- Sources

local Source = {}
Source.__index = Source

local function on_ready(src)  -- from the loop: the reader has news
  src.armed = false
  local ws = src.waiters
  for co, op in next, ws do
    ws[co] = nil
    wake(co, op, true)
  end
end

local function cancel_wait(op, co)  -- a parked puller was cancelled
  local src = op.src
  src.waiters[co] = nil
  if src.armed and next(src.waiters) == nil then
    src.armed = false
    src.reader:unwait()
  end
end

function M.source(reader, what, make_error)
  return setmetatable({ reader = reader, what = what, make_error = make_error, waiters = {}, armed = false },
    Source)
end

function Source:pull(max)
  local reader = self.reader
  while true do
    if self.closed then return nil end
    local c, code, msg = reader:read(max)
    if c then return c end
    if c == nil then
      if code then error(self.make_error(code, msg), 0) end
      return nil
    end
    local co = current()
    if co == nil then error("await called outside an async task", 2) end
    local op = { what = self.what, src = self, cancel = cancel_wait }
    self.waiters[co] = op
    if not self.armed then
      self.armed = true
      reader:wait(on_ready, self)
    end
    local ok, e = park(op)
    if not ok then error(e, 0) end
  end
end

function Source:close()
  if self.closed then return end
  self.closed = true
  self.armed = false
  self.reader:close()
  on_ready(self)
end

--- A Stream of the source's chunks. close (default: close the source) runs on early end.
function M.stream(src, close)
  local Stream = require("luasync.stream")
  close = close or function() src:close() end
  return Stream.new(function() return src:pull() end, close)
end

--- Collects a source into one string (inside a task).
function M.read_all(src)
  local parts, n = {}, 0
  while true do
    local c = src:pull()
    if c == nil then break end
    n = n + 1
    parts[n] = c
  end
  return table.concat(parts)
end

---------------------------------------------------------------------------
-- Writables

local Writable = {}
Writable.__index = Writable
Writable.__name = "luasync.Writable"
Writable.__tostring = function(w) return "writable (" .. w._name .. ")" end

-- Settles what waits on the sink, from its status. Returns true if something still waits.
local function check(w)
  local buffered, closed, code, msg = w._sink:status()
  local ws = w._waiters
  if code then
    local err = w._make_error(code, msg)
    w._failed = err
    w._waiters = {}
    for i = 1, #ws do Promise._reject(ws[i], err) end
    if w._close_p then Promise._reject(w._close_p, err) end
    return false
  end
  if #ws > 0 and buffered < M.HIGH then
    w._waiters = {}
    for i = 1, #ws do Promise._fulfill(ws[i], true) end
  end
  if closed and w._close_p then Promise._fulfill(w._close_p, true) end
  return #w._waiters > 0 or (w._close_p ~= nil and not closed)
end

local function on_event(w)
  w._armed = false
  if check(w) then
    w._armed = true
    w._sink:wait(on_event, w)
  end
end

local function watch(w)
  if not w._armed and check(w) then
    w._armed = true
    w._sink:wait(on_event, w)
  end
end

function M.writable(sink, name, make_error)
  return setmetatable({ _sink = sink, _name = name, _make_error = make_error, _waiters = {}, _armed = false },
    Writable)
end

local function rejected(e)
  local p = Promise._new()
  Promise._reject(p, e, errors.capture(2))
  return p
end

--- w:write(data) -> Promise, resolved once the data is accepted
function Writable:write(data)
  local t = type(data)
  if t == "number" then
    data = tostring(data)
  elseif t ~= "string" then
    error(self._name .. ": write expects a string, got " .. t, 2)
  end
  if self._failed then return rejected(self._failed) end
  if self._close_p then return rejected(errors.new("io", self._name .. ": write after close")) end
  local n, code, msg = self._sink:write(data)
  if n == nil then
    self._failed = self._make_error(code, msg)
    return rejected(self._failed)
  end
  if n < M.HIGH then return READY end
  local p = Promise._new()
  self._waiters[#self._waiters + 1] = p
  watch(self)
  return p
end

--- w:close() -> Promise, resolved once everything is written and the sink closed
function Writable:close()
  local p = self._close_p
  if p then return p end
  p = Promise._new()
  self._close_p = p
  if self._failed then
    Promise._reject(p, self._failed)
    return p
  end
  self._sink:finish()
  watch(self)
  return p
end

return M
