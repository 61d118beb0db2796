-- luasync.stream: pull-based asynchronous sequences (API.md section 5).
--
-- The protocol every source and transform speaks (I/O modules build on it):
--
--   Stream.new(pull, close?) -> Stream
--     pull() returns the next value, or nil at the end. It is always called
--       from inside a task, may suspend that task (waiting for I/O), and
--       raises on error. Once it has returned nil or raised, it is not called
--       again. It should return buffered data without suspending: that is the
--       fast path every transform and `iter()` keeps.
--     close() releases the source (closes the file, aborts the transfer, closes
--       the pipe). It is idempotent-safe (called at most once by Stream, but a
--       source should tolerate more) and is called on natural end too, and on
--       early end: take(n), an error in a stage, a cancelled consumer.
--       A pull that is suspended while close() runs should return nil or raise.
--
--   A writable (a pipeTo sink) is any object with
--     w:write(data) -> Promise (resolved when the data is accepted) and
--     w:close() -> Promise.
--
-- Transforms call their upstream's pull directly: a value travels from the
-- source to the consumer through plain function calls, with no task switch or
-- promise per value. Only mapAsync and merge use extra tasks (stream/concurrent.lua).
-- Also here: stream/lines.lua (lines), stream/consumers.lua (forEach, reduce,
-- collect, count, pipeTo), stream/progress.lua.
-- Stream fields: _pull (current pull; swapped for `ended` once the stream has
-- ended or is closed, so later reads return nil), _close, _closed.
local Promise = require("luasync.promise")

local await = Promise.await
local setmetatable, getmetatable, type, error, tonumber = setmetatable, getmetatable, type, error, tonumber

local Stream = {}
Stream.__index = Stream
Stream.__name = "luasync.Stream"
Stream.__tostring = function() return "luasync.Stream" end

local M = { Stream = Stream }

local function ended() return nil end

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = type(f) == "table" and getmetatable(f)
  return mt and mt.__call ~= nil or false
end

-- A value returned by a user function: promises are awaited.
local function settled(r)
  if type(r) == "table" and getmetatable(r) == Promise then return await(r) end
  return r
end
M._is_callable, M._settled = is_callable, settled

--- Stream.new(pull, close?) -> Stream
local function new(pull, close)
  if not is_callable(pull) then error("Stream.new: expected a pull function", 2) end
  if close ~= nil and not is_callable(close) then error("Stream.new: close must be a function", 2) end
  return setmetatable({ _pull = pull, _close = close or false, _closed = false }, Stream)
end
M.new = new

function M.is(v) return getmetatable(v) == Stream end

--- s:close(): end the stream now and release its source (idempotent)
function Stream:close()
  if self._closed then return end
  self._closed = true
  self._pull = ended
  local c = self._close
  if c then
    self._close = false
    c()
  end
end

-- A transform: a new Stream whose close closes `up`.
local function derive(up, pull, extra_close)
  local s = setmetatable({ _pull = pull, _close = false, _closed = false }, Stream)
  s._close = function()
    if extra_close then extra_close() end
    up:close()
  end
  return s
end
M._derive = derive

---------------------------------------------------------------------------
-- Sources

local function from_table(t)
  local n = t.n or #t
  local i = 0
  return new(function()
    if i >= n then return nil end
    i = i + 1
    return t[i]
  end)
end

local function from_channel(ch)
  return new(function()
    local v = ch:receive()
    return v
  end)
end

local function from_function(f)
  return new(function()
    local v = f()
    if type(v) == "table" and getmetatable(v) == Promise then return await(v) end
    return v
  end)
end

--- Stream.from(table | iterator function | Channel | Stream) -> Stream
function M.from(src)
  local t = type(src)
  if t == "function" then return from_function(src) end
  if t == "table" then
    local mt = getmetatable(src)
    if mt == Stream then return src end
    if type(src.receive) == "function" then return from_channel(src) end
    if mt and mt.__call then return from_function(src) end
    return from_table(src)
  end
  error("Stream.from: expected a table, an iterator function or a Channel, got " .. t, 2)
end

---------------------------------------------------------------------------
-- Reading

--- s:read() -> next value, or nil at the end (suspends the task when it must wait)
function Stream:read()
  local v = self._pull()
  if v == nil then self:close() end
  return v
end

--- for v in s:iter() do ... end
-- Stopping early (break, an error in the loop body): call s:close().
function Stream:iter()
  local s = self
  return function()
    local v = s._pull()
    if v == nil then s:close() end
    return v
  end
end

--- for v in s do ... end: a stream is its own iterator, as io.lines() is (so `for l in stdin:lines() do`
-- works); the same as s:iter().
Stream.__call = Stream.read

--- s:readLine() -> next line of a stream of text chunks, or nil at the end.
-- Reads through a lines() view kept on the stream: once you read lines, keep
-- reading lines (read() would skip what the view has buffered).
function Stream:readLine()
  if self._lines then return self:read() end
  local view = self._line_view
  if not view then
    view = self:lines()
    self._line_view = view
  end
  return view:read()
end

---------------------------------------------------------------------------
-- Transforms. A function returning nil drops the value (nil marks the end of
-- a stream, so it cannot be a value).

local function check_fn(fn, name)
  if not is_callable(fn) then error("Stream." .. name .. ": expected a function", 3) end
end
M._check_fn = check_fn

local function check_count(n, name, min)
  n = tonumber(n)
  if n == math.huge then return n end
  if n == nil or n ~= n or n < min or n % 1 ~= 0 then
    error("Stream." .. name .. ": expected an integer >= " .. min, 3)
  end
  return n
end

function Stream:map(fn)
  check_fn(fn, "map")
  local up = self
  return derive(up, function()
    while true do
      local v = up._pull()
      if v == nil then return nil end
      local r = fn(v)
      if type(r) == "table" and getmetatable(r) == Promise then r = await(r) end
      if r ~= nil then return r end
    end
  end)
end

function Stream:filter(fn)
  check_fn(fn, "filter")
  local up = self
  return derive(up, function()
    while true do
      local v = up._pull()
      if v == nil then return nil end
      local keep = fn(v)
      if type(keep) == "table" and getmetatable(keep) == Promise then keep = await(keep) end
      if keep then return v end
    end
  end)
end

function Stream:tap(fn)
  check_fn(fn, "tap")
  local up = self
  return derive(up, function()
    local v = up._pull()
    if v == nil then return nil end
    local r = fn(v)
    if type(r) == "table" and getmetatable(r) == Promise then await(r) end
    return v
  end)
end

--- s:flatMap(fn): fn(v) returns an array table or a Stream; their values are emitted in turn
function Stream:flatMap(fn)
  check_fn(fn, "flatMap")
  local up = self
  local inner, arr, ai, an = nil, nil, 0, 0
  local done = false
  return derive(up, function()
    while true do
      if arr then
        if ai < an then
          ai = ai + 1
          local v = arr[ai]
          if v ~= nil then return v end
        else
          arr = nil
        end
      elseif inner then
        local v = inner._pull()
        if v ~= nil then return v end
        inner:close()
        inner = nil
      else
        if done then return nil end
        local v = up._pull()
        if v == nil then done = true; return nil end
        local r = settled(fn(v))
        if getmetatable(r) == Stream then
          inner = r
        elseif type(r) == "table" then
          arr, ai, an = r, 0, r.n or #r
        elseif r ~= nil then
          error("Stream.flatMap: the function must return an array table or a Stream, got " .. type(r), 0)
        end
      end
    end
  end, function()
    if inner then inner:close() end
  end)
end

--- s:take(n): the first n values; pulls exactly n, then closes the source
function Stream:take(n)
  n = check_count(n, "take", 0)
  local up = self
  local k = 0
  return derive(up, function()
    if k >= n then
      up:close()
      return nil
    end
    local v = up._pull()
    if v == nil then k = n; return nil end
    k = k + 1
    if k == n then up:close() end
    return v
  end)
end

function Stream:skip(n)
  n = check_count(n, "skip", 0)
  local up = self
  return derive(up, function()
    while n > 0 do
      local v = up._pull()
      if v == nil then n = 0; return nil end
      n = n - 1
    end
    return up._pull()
  end)
end

--- s:batch(n): arrays of up to n values (the last may be shorter)
function Stream:batch(n)
  n = check_count(n, "batch", 1)
  local up = self
  local done = false
  return derive(up, function()
    if done then return nil end
    local b, k = {}, 0
    while k < n do
      local v = up._pull()
      if v == nil then done = true; break end
      k = k + 1
      b[k] = v
    end
    if k == 0 then return nil end
    return b
  end)
end

--- s:progress{label=, total=}: draws a progress bar on stderr when it is a TTY
function Stream:progress(opts)
  return require("luasync.stream.progress")(self, opts or {})
end

require("luasync.stream.lines")(M, Stream)
require("luasync.stream.consumers")(M, Stream)
require("luasync.stream.concurrent")(M, Stream)

return M
