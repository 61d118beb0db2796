-- luasync.test.step: runs one hook or test body ("a step") as a task that the
-- runner's driver task awaits, with a timeout and deadlock detection.
--
-- A step ends when its task settles, when it runs past its deadline, or when it
-- is deadlocked. The watchdog timer of a step checks both: when it fires and
-- nothing else could ever make progress (no other referenced libuv handle, no
-- other timer, no request in flight, empty ready queue), the step is
-- deadlocked. The watchdog's own entry is already off the timer heap then, so
-- core.loop_alive() tells exactly whether anything else keeps the loop running.
-- Should the loop still run dry during a step, the runner's on_loop_empty hook
-- calls M.loop_empty(). Steps that never suspend cost no timer at all.
local core = require("luasync.core")
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local async = require("luasync.async")
local errors = require("luasync.errors")

local spawn, await = async.spawn, Promise.await
local PENDING, REJECTED = Promise.PENDING, Promise.REJECTED
local format = string.format

local M = {}

M.timeout = 5          -- seconds, per step
M.driver = nil         -- fiber record of the runner's driver task (never reported)
M.on_unhandled = nil   -- function(p) -> bool: the runner took the rejection
local active = nil     -- the step being awaited

--- Failures made by the runner itself: { kind=, message=, details= }
local Stop = {}
Stop.__index = Stop
Stop.__tostring = function(e) return e.message end
M.Stop = Stop

function M.stop(kind, message, details)
  return setmetatable({ kind = kind, message = message, details = details }, Stop)
end

-- Frames outside luasync's own Lua files (errors.capture drops them when the
-- modules are embedded; LUASYNC_LUA_DIR may load them from any path).
local own_dir = debug.getinfo(1, "S").short_src:match("^(.*/)luasync/test/step%.lua$")
function M.user_frames(trace)
  local out = {}
  for _, fr in ipairs(trace or {}) do
    if not (own_dir and fr.file:sub(1, #own_dir + 8) == own_dir .. "luasync/") then out[#out + 1] = fr end
  end
  return out
end

---------------------------------------------------------------------------
-- Parked tasks

--- baseline() -> set of the fiber records parked now (nil when there are none)
function M.baseline()
  if sched.nparked and sched.nparked() == 0 then return nil end
  local set = {}
  for _, rec in ipairs(sched.parked()) do set[rec] = true end
  return set
end

local function new_since(rec, baseline)
  return rec ~= M.driver and not (baseline and baseline[rec])
end

--- parked_lines(baseline) -> {"file:line: task waits on X", ...} for tasks parked since baseline
function M.parked_lines(baseline)
  local lines = {}
  for _, rec in ipairs(sched.parked()) do
    if new_since(rec, baseline) then
      local fr = M.user_frames(errors.capture(0, sched.task_co(rec)))[1]
      local at, note = fr and (fr.file .. ":" .. fr.line), ""
      if not at then  -- the task's own frame is gone: it waits in a tail call
        at = sched.task_origin(rec)
        note = at and " (in a tail call of the function defined there)" or ""
        at = at or "?"
      end
      local op, what = sched.task_op(rec), "an event"
      if type(op) == "table" then
        if getmetatable(op) == Promise then what = "a promise" elseif op.what then what = op.what end
      end
      lines[#lines + 1] = format("%s: task waits on %s%s", at, what, note)
    end
  end
  return lines
end

--- cancel_parked(baseline, why): cancels the tasks parked since baseline
function M.cancel_parked(baseline, why)
  for _, rec in ipairs(sched.parked()) do
    if new_since(rec, baseline) then
      local rp = sched.task_promise(rec)
      if Promise.is(rp) then rp:cancel(why) else sched.cancel(rec, errors.cancelled(why)) end
    end
  end
end

---------------------------------------------------------------------------
-- Ending a step

local function finish(s, outcome)
  if s.done[1] ~= PENDING then return end
  if s.timer then sched.cancel_timer(s.timer); s.timer = nil end
  if outcome ~= "settled" then
    local lines = M.parked_lines(s.baseline)
    local n = #lines
    if n == 0 then lines = nil end
    if outcome == "timeout" then
      s.failure = M.stop("timeout", format("timed out after %gs", M.timeout), lines)
    else
      s.failure = M.stop("deadlock", format("deadlock: %d task%s blocked forever", n, n == 1 and "" or "s"), lines)
    end
    s.p:cancel(outcome == "timeout" and "test timed out" or "test deadlocked")
    M.cancel_parked(s.baseline, "test ended")
  end
  Promise._fulfill(s.done, true)
end

local loop_alive = core.loop_alive or function() return next(core.handles()) ~= nil end

local watch
local function tick(s)
  s.timer = nil
  if s.done[1] ~= PENDING then return end
  if core.now() >= s.deadline then return finish(s, "timeout") end
  if sched.pending() == 0 and not loop_alive() and not sched.has_weak_timers() then
    return finish(s, "deadlock")
  end
  watch(s)
end

-- Checks after 10 ms, then backs off to every 200 ms.
watch = function(s)
  s.interval = math.min(s.interval * 2, 0.2)
  local left = (s.deadline - core.now()) / 1000
  s.timer = sched.add_timer(math.max(0, math.min(s.interval, left)), tick, s)
end

local function on_settled(s) finish(s, "settled") end

--- loop_empty() -> true when a step was running: it fails as deadlocked
function M.loop_empty()
  if not active then return false end
  if sched.hold_weak_timers() then return true end  -- a Channel.after may still wake it
  finish(active, "deadlock")
  return true
end

---------------------------------------------------------------------------
-- Unhandled rejections

-- Lets the ready queue drain before the driver goes on, so that a rejection
-- counts as unhandled under the same rule as outside tests (still unhandled
-- once the queue is empty) and is charged to the step that caused it.
local function drain()
  repeat
    local q = Promise._new()
    sched.defer(Promise._fulfill, q, true)
    await(q)
  until sched.pending() == 0
end

local function take_unhandled()
  local list = Promise._take_unhandled()
  if not list then return end
  for _, p in ipairs(list) do
    if not p._cancelled and not (M.on_unhandled and M.on_unhandled(p)) then
      io.stderr:write(errors.report("luasync: unhandled rejection: ", p[2], p._trace))
    end
  end
end

---------------------------------------------------------------------------

--- step.run(fn, ...) -> true, or false, err, trace. Call from the driver task.
function M.run(fn, ...)
  local baseline = M.baseline()
  local p = spawn(fn, ...)
  p._handled = true
  local failure
  if p[1] == PENDING then
    local now = core.update_now and core.update_now() or core.now()
    local s = { p = p, done = Promise._new(), deadline = now + M.timeout * 1000,
                interval = 0.005, baseline = baseline }
    active = s
    Promise._add_reaction(p, on_settled, s)
    watch(s)
    await(s.done)
    active = nil
    failure = s.failure
  end
  drain()
  take_unhandled()
  if failure then return false, failure end
  if p[1] == REJECTED then return false, p[2], p._trace end
  return true
end

return M
