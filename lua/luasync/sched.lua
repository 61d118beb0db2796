-- luasync.sched: tasks, the ready queue and the timer heap.
--
-- All user Lua runs in coroutines ("fibers") that this module resumes; it is the
-- only place that resumes them from the top. The ready queue holds two kinds of
-- jobs, in FIFO order: microtasks (a function and up to three arguments, run in
-- a worker fiber so that they may await) and task resumes. `run()` drains it
-- completely before control goes back to the loop.
--
-- A fiber suspends by yielding PARK after recording what it waits on in
-- `waiting[co]`; that entry is the wake token, so a stale wake-up (a promise
-- settling after the task was cancelled) is ignored.
local core = require("luasync.core")

local co_create, co_resume, co_yield, co_status = coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local type, error, select = type, error, select

local M = {}

local PARK = setmetatable({}, { __tostring = function() return "luasync.PARK" end })
local DONE = setmetatable({}, { __tostring = function() return "luasync.DONE" end })
M.PARK, M.DONE = PARK, DONE

local function RESUME() end  -- marker in the queue for "resume a parked fiber"

-- Ready queue, as parallel arrays (no table per job).
local qf, qa, qb, qc = {}, {}, {}, {}
local head, tail = 1, 0

local current = nil          -- fiber being run by the scheduler, or nil outside any task
local waiting = {}           -- fiber -> what it is parked on (wake token)
local park_seq, seq = {}, 0  -- fiber -> order of parking (for reports)
local task_of = {}           -- fiber -> task record (spawned tasks only)
local pool, npool = {}, 0    -- finished fibers ready for reuse
local POOL_MAX = 512

M.waiting = waiting
M.task_of = task_of

--- sched.defer(f, a, b, c): queue a microtask
local function defer(f, a, b, c)
  local t = tail + 1
  tail = t
  qf[t], qa[t], qb[t], qc[t] = f, a, b, c
end
M.defer = defer

--- sched.current() -> the running task's fiber, or nil outside any task
function M.current() return current end

--- sched.park(op) -> the values passed to wake. Suspends the running task.
-- op identifies the wait (also the wake token); op.what describes it for reports.
function M.park(op)
  local co = current
  if co == nil then error("await called outside an async task", 2) end
  local t = task_of[co]
  if t and t.cancel_err ~= nil then
    local e = t.cancel_err
    t.cancel_err = nil
    error(e, 0)
  end
  waiting[co] = op
  seq = seq + 1
  park_seq[co] = seq
  return co_yield(PARK)
end

--- sched.wake(co, op, ok, v) -> bool: queue the resume of co if it still waits on op
local function wake(co, op, a, b)
  if waiting[co] ~= op then return false end
  waiting[co] = nil
  park_seq[co] = nil
  local t = tail + 1
  tail = t
  qf[t], qa[t], qb[t], qc[t] = RESUME, co, a, b
  return true
end
M.wake = wake

--- sched.is_waiting(co, op) -> bool
function M.is_waiting(co, op) return waiting[co] == op end

--- sched.cancel(co, err): cancel the fiber at its current suspension: undo its
-- wait (op:cancel()) and resume it with (false, err), so await raises err.
function M.cancel(co, err)
  local op = waiting[co]
  if op == nil then
    local t = task_of[co]
    if t then t.cancel_err = err end  -- raised at its next suspension
    return false
  end
  waiting[co] = nil
  park_seq[co] = nil
  if type(op) == "table" and op.cancel then op:cancel(co) end
  local t = tail + 1
  tail = t
  qf[t], qa[t], qb[t], qc[t] = RESUME, co, false, err
  return true
end

-- Fibers: pooled coroutines that run one job after another.
local function fiber_main(f, ...)
  f(...)
  return fiber_main(co_yield(DONE))
end

local function get_fiber()
  if npool > 0 then
    local co = pool[npool]
    pool[npool] = nil
    npool = npool - 1
    return co
  end
  return co_create(fiber_main)
end

local on_fiber_error  -- set by the runtime: internal failure escaping a fiber
local requeue_yield   -- plain coroutine.yield at task level: resume next loop turn

local function after_resume(co, ok, r)
  if r == PARK then return end
  if r == DONE then
    if npool < POOL_MAX then
      npool = npool + 1
      pool[npool] = co
    end
    return
  end
  if not ok then return on_fiber_error(co, r) end
  -- coroutine.yield() straight from a task body: it yields to the loop once.
  return requeue_yield(co)
end

--- sched.start(f, ...): run f(...) in a fresh fiber now, until it first suspends.
function M.start(f, ...)
  local co = get_fiber()
  local prev = current
  current = co
  local ok, r = co_resume(co, f, ...)
  current = prev
  return after_resume(co, ok, r)
end

local function drain_microtasks()
  while head <= tail do
    local f = qf[head]
    if f == RESUME then return end
    local a, b, c = qa[head], qb[head], qc[head]
    qf[head], qa[head], qb[head], qc[head] = nil, nil, nil, nil
    head = head + 1
    f(a, b, c)
  end
end

--- sched.run(): drain the ready queue. Called only from the top (no fiber running).
function M.run()
  while head <= tail do
    local f = qf[head]
    if f == RESUME then
      local co, a, b = qa[head], qb[head], qc[head]
      qf[head], qa[head], qb[head], qc[head] = nil, nil, nil, nil
      head = head + 1
      current = co
      local ok, r = co_resume(co, a, b)
      current = nil
      after_resume(co, ok, r)
    else
      local co = get_fiber()
      current = co
      local ok, r = co_resume(co, drain_microtasks)
      current = nil
      after_resume(co, ok, r)
    end
  end
  head, tail = 1, 0
end

function M.pending() return tail - head + 1 end

---------------------------------------------------------------------------
-- Timer heap: one libuv timer armed for the earliest deadline.
-- Entries: {t = deadline_ms, s = seq, co = fiber} or {t=, s=, fn=, arg=}
local heap, nheap = {}, 0
local tseq = 0
local live = 0           -- entries not cancelled
local armed = nil        -- deadline the libuv timer is armed for
local now = core.now

local function less(a, b)
  local at, bt = a.t, b.t
  return at < bt or (at == bt and a.s < b.s)
end

local function heap_push(e)
  nheap = nheap + 1
  local i = nheap
  heap[i] = e
  while i > 1 do
    local p = (i - i % 2) / 2
    local pe = heap[p]
    if not less(e, pe) then break end
    heap[i] = pe
    i = p
  end
  heap[i] = e
end

local function heap_pop()
  local top = heap[1]
  local last = heap[nheap]
  heap[nheap] = nil
  nheap = nheap - 1
  if nheap > 0 then
    local i = 1
    while true do
      local l = i * 2
      if l > nheap then break end
      local r = l + 1
      local c = l
      if r <= nheap and less(heap[r], heap[l]) then c = r end
      if not less(heap[c], last) then break end
      heap[i] = heap[c]
      i = c
    end
    heap[i] = last
  end
  return top
end

local function arm()
  if live == 0 then
    if armed then core.timer_stop(); armed = nil end
    -- drop cancelled entries so they do not pile up
    for i = nheap, 1, -1 do heap[i] = nil end
    nheap = 0
    return
  end
  local top = heap[1]
  if armed ~= top.t then
    armed = top.t
    local d = top.t - now()
    core.timer_start(d > 0 and d or 0)
  end
end

local function ms_of(seconds)
  if seconds ~= seconds or seconds < 0 then seconds = 0 end
  -- libuv timers have millisecond resolution; never round a positive delay to 0
  local ms = seconds * 1000
  local whole = ms - ms % 1
  if whole < ms then whole = whole + 1 end
  return whole
end
M.ms_of = ms_of

--- sched.add_timer(seconds, fn, arg) -> entry (entry.dead = true cancels; use cancel_timer)
function M.add_timer(seconds, fn, arg)
  tseq = tseq + 1
  local e = { t = now() + ms_of(seconds), s = tseq, fn = fn, arg = arg }
  live = live + 1
  heap_push(e)
  if heap[1] == e then arm() end
  return e
end

function M.cancel_timer(e)
  if not e.dead then
    e.dead = true
    live = live - 1
    if live == 0 then arm() end
  end
end

-- A sleeping fiber's wait op is its timer entry.
local TimerOp = { what = "sleep" }
TimerOp.__index = TimerOp
function TimerOp:cancel() M.cancel_timer(self) end

--- sched.sleep(seconds): suspend the running task (sleep(0) yields once to the loop)
function M.sleep(seconds)
  local co = current
  if co == nil then error("await called outside an async task", 2) end
  tseq = tseq + 1
  local e = setmetatable({ t = now() + ms_of(seconds), s = tseq, co = co }, TimerOp)
  live = live + 1
  heap_push(e)
  if heap[1] == e then arm() end
  return M.park(e)
end

requeue_yield = function(co)
  tseq = tseq + 1
  local e = setmetatable({ t = now(), s = tseq, co = co }, TimerOp)
  live = live + 1
  heap_push(e)
  if heap[1] == e then arm() end
  waiting[co] = e
end

--- Called by the runtime when the libuv timer fires.
function M.on_timer()
  armed = nil
  local t = now()
  while nheap > 0 and heap[1].t <= t do
    local e = heap_pop()
    if not e.dead then
      e.dead = true
      live = live - 1
      local co = e.co
      if co then
        wake(co, e, true)
      else
        defer(e.fn, e.arg, e)
      end
    end
  end
  arm()
end

function M.set_hooks(fiber_error)
  on_fiber_error = fiber_error
end

--- sched.parked() -> list of {co=, op=, seq=} for every parked fiber, oldest first
function M.parked()
  local list = {}
  for co, op in pairs(waiting) do
    list[#list + 1] = { co = co, op = op, seq = park_seq[co] or 0, task = task_of[co] }
  end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  return list
end

return M
