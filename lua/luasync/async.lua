-- luasync.async: tasks and the async/await family of globals (API.md section 2),
-- plus setTimeout/setInterval.
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local callable = Promise._callable
require("luasync.combinators")
local errors = require("luasync.errors")

local new, settle, resolve, on_error = Promise._new, Promise._settle, Promise._resolve, Promise._on_error
local REJECTED = Promise.REJECTED
local current, running = sched.current, sched.running
local last_raise = Promise._last_raise
local xpcall, pcall, error, select, type, rawequal = xpcall, pcall, error, select, type, rawequal
local unpack = unpack or table.unpack

local M = {}


-- The frames to report for an error e that escaped fiber co with stack frames:
-- when e is a rejection that an await re-raised, the failing task's frames come
-- first, then where this task waited (marked async).
local function full_frames(co, e, frames)
  if last_raise.co == co and rawequal(last_raise.reason, e) and last_raise.frames then
    local out = {}
    for i, f in ipairs(last_raise.frames) do out[i] = f end
    for _, f in ipairs(frames) do
      out[#out + 1] = { func = f.func, file = f.file, line = f.line, async = true }
    end
    last_raise.co, last_raise.reason, last_raise.frames = nil, nil, nil
    return out
  end
  return frames
end
M.full_frames = full_frames

-- A task's end (see sched.fiber_main): p is its Promise, or sched.GO.
local GO = sched.GO
sched.set_task_hooks(function(p, v)
  if p == GO then return end
  p[6] = false  -- the record goes back to the pool: cancel no longer reaches it
  return resolve(p, v)
end, function(p, rec, e)
  local frames = full_frames(rec, e, errors.capture(0, sched.task_co(rec)))
  if p == GO then
    -- cancelled go() tasks are not reported, as cancelled promises are not
    if type(e) == "table" and rawget(e, "cancelled") == true and rawget(e, "kind") == "cancelled" then return end
    p = new()
  else
    p[6] = false
  end
  -- a go() task has no promise: its error is reported as an unhandled rejection
  return settle(p, REJECTED, e, frames)
end)

--- spawn(fn, ...) -> Promise of fn's first result; fn runs now until it first suspends
local function spawn(fn, ...)
  if not callable(fn) then
    error("spawn: expected a function, got " .. type(fn), 2)
  end
  local p = new()
  sched.start_task(p, fn, ...)
  return p
end
M.spawn = spawn

--- go(fn, ...): spawn without a promise; an error is reported as an unhandled rejection
function M.go(fn, ...)
  if not callable(fn) then
    error("go: expected a function, got " .. type(fn), 2)
  end
  sched.start_task(GO, fn, ...)
end

--- async(fn) -> function(...) that starts fn(...) as a task and returns its Promise
function M.async(fn)
  if not callable(fn) then
    error("async: expected a function, got " .. type(fn), 2)
  end
  return function(...) return spawn(fn, ...) end
end

M.await = Promise.await

--- sleep(seconds)
function M.sleep(seconds)
  seconds = tonumber(seconds)
  if seconds == nil then error("sleep: expected a number of seconds", 2) end
  sched.sleep(seconds)
end

local function error_table(co, e, frames)
  local msg
  if type(e) == "string" then msg = e
  else
    local ok, m = false, nil
    if type(e) == "table" then ok, m = pcall(function() return e.message end) end  -- __index may raise
    if ok and m ~= nil then msg = tostring(m) else msg = errors.describe(e) end
  end
  return { message = msg, stack = full_frames(co, e, frames), timestamp = os.time(), error = e }
end

--- asyncTry(tryFn, catchFn?, finallyFn?) -> Promise
function M.asyncTry(tryFn, catchFn, finallyFn)
  return spawn(function()
    local co = running()
    local ok, r = xpcall(tryFn, on_error)
    local failed, ferr
    if not ok then
      local err = error_table(co, r[1], r[2])
      if catchFn then
        local ok2, r2 = xpcall(catchFn, on_error, err)
        if ok2 then r = r2 else failed, ferr = true, r2[1] end
      else
        failed, ferr = true, err
      end
    end
    if finallyFn then finallyFn() end
    if failed then error(ferr, 0) end
    return r
  end)
end

local function pack(...) return { n = select("#", ...), ... } end

--- try(tryFn, catchFn, finallyFn?) -> what tryFn (or catchFn) returned; runs in the current task
function M.try(tryFn, catchFn, finallyFn)
  local r = pack(pcall(tryFn))
  if not r[1] then
    local e = r[2]
    if catchFn then
      r = pack(pcall(catchFn, errors.describe(e)))
      if not r[1] then
        if finallyFn then finallyFn() end
        error(r[2], 0)
      end
    else
      if finallyFn then finallyFn() end
      error(e, 0)
    end
  end
  if finallyFn then finallyFn() end
  return unpack(r, 2, r.n)
end

--- batch(operations, size) -> results, errors (awaits)
function M.batch(ops, size)
  if type(ops) ~= "table" then error("batch: expected a table of functions", 2) end
  local n = ops.n or #ops
  size = tonumber(size) or n
  if size < 1 then size = 1 end
  local results, errs = {}, {}
  local next_i = 1
  local function worker()
    while next_i <= n do
      local i = next_i
      next_i = i + 1
      local ok, v = pcall(ops[i])
      if ok then results[i] = v else errs[i] = v end
    end
  end
  local workers = {}
  for w = 1, math.min(size, n) do workers[w] = spawn(worker) end
  for w = 1, #workers do Promise.await(workers[w]) end
  return results, errs
end

---------------------------------------------------------------------------
-- Timers with user callbacks. Callbacks run as tasks; an error in one is
-- reported like an unhandled rejection.

local Timer = {}
Timer.__index = Timer
Timer.__name = "luasync.Timer"

local function fire(timer)
  if timer.stopped then return end
  if timer.interval then
    timer.entry = sched.add_timer(timer.interval, fire, timer)
  else
    timer.stopped = true
  end
  local args = timer.args
  spawn(timer.fn, unpack(args, 1, args.n))
end

function Timer:stop()
  if not self.stopped then
    self.stopped = true
    sched.cancel_timer(self.entry)
  end
end
Timer.clear = Timer.stop
Timer.cancel = Timer.stop

local function make_timer(name, fn, seconds, interval, ...)
  if not callable(fn) then
    error(name .. ": expected a function", 3)
  end
  seconds = tonumber(seconds) or 0
  local t = setmetatable({ fn = fn, args = pack(...) }, Timer)
  if interval then t.interval = seconds > 0.001 and seconds or 0.001 end
  t.entry = sched.add_timer(seconds, fire, t)
  return t
end

function M.setTimeout(fn, seconds, ...) return make_timer("setTimeout", fn, seconds, false, ...) end
function M.setInterval(fn, seconds, ...) return make_timer("setInterval", fn, seconds, true, ...) end
function M.clearTimeout(t) if getmetatable(t) == Timer then t:stop() end end
M.clearInterval = M.clearTimeout

return M
