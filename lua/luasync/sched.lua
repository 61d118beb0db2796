-- luasync.sched: tasks, the ready queue and the timer heap.
--
-- All user Lua runs in coroutines ("fibers") that this module resumes; it is the
-- only place that resumes them from the top. The ready queue holds two kinds of
-- jobs, in FIFO order: microtasks (a function and up to three arguments, run in
-- a worker fiber so that they may await) and task resumes. `run()` drains it
-- completely before control goes back to the loop.
--
-- A fiber suspends by yielding PARK after recording what it waits on in its
-- record (`rec[OP]`); that is the wake token, so a stale wake-up (a promise
-- settling after the task was cancelled) is ignored.
local core = require("luasync.core")

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_isyieldable = coroutine.isyieldable
local type, error, select, getmetatable = type, error, select, getmetatable

local M = {}

local PARK = setmetatable({}, { __tostring = function() return "luasync.PARK" end })
local DONE = setmetatable({}, { __tostring = function() return "luasync.DONE" end })
M.PARK, M.DONE = PARK, DONE

local function RESUME() end  -- marker in the queue for "resume a parked fiber"

-- Ready queue, as parallel arrays (no table per job).
local qf, qa, qb, qc = {}, {}, {}, {}
local head, tail = 1, 0

-- Every fiber has a permanent record, reused with the fiber from the pool. It is
-- array-shaped (no hash part: 112 bytes where five named fields took 256):
--   [CO] coroutine, [OP] what it is parked on (false when not parked),
--   [PREV]/[NEXT] links in the list of parked fibers,
--   [PROMISE] the task's Promise while it runs a spawned task, GO for a task
--   started by go() (no promise), false otherwise,
--   [CERR] the error to raise at its next suspension when a running task is
--   cancelled, else false.
-- Other modules read it through task_co/task_op/task_promise.
-- The list of parked fibers is kept in the order they parked.
-- `current` is the record of the fiber being run, or nil outside any task. The
-- record is the handle other modules keep to wake a parked task.
local CO, OP, PREV, NEXT, PROMISE, CERR = 1, 2, 3, 4, 5, 6
local current = nil
local pool, npool = {}, 0    -- records of finished fibers, ready for reuse
local POOL_MAX = 512
local parked_head = { false, false, false, false, false, false }  -- sentinel of the parked list
parked_head[PREV], parked_head[NEXT] = parked_head, parked_head
local nparked = 0

function M.task_co(rec) return rec[CO] end

local fiber_main  -- below

--- sched.task_origin(rec) -> "file:line" where the body of the task running in
-- rec was defined, or nil. For reports when the task's own frame is gone (it
-- waits in a tail call such as `return ch:receive()`). Reads the body from the
-- bottom frame of the fiber (fiber_main's first argument): nothing is stored.
function M.task_origin(rec)
  local co = rec[CO]
  local level = 0
  while debug.getinfo(co, level + 1, "f") do level = level + 1 end
  local bottom = debug.getinfo(co, level, "f")
  if not bottom or bottom.func ~= fiber_main then return nil end
  local _, f = debug.getlocal(co, level, 1)
  if type(f) ~= "function" then return nil end
  local info = debug.getinfo(f, "S")
  if info.what ~= "Lua" or f == M._drain_microtasks then return nil end
  return info.short_src .. ":" .. info.linedefined
end
function M.task_op(rec) return rec[OP] end
function M.task_promise(rec) return rec[PROMISE] end

--- sched.defer(f, a, b, c): queue a microtask
local function defer(f, a, b, c)
  local t = tail + 1
  tail = t
  qf[t], qa[t], qb[t], qc[t] = f, a, b, c
end
M.defer = defer

--- sched.current() -> handle of the running task (its fiber record), or nil outside
-- any task (including code the VM runs on its own, such as __gc, where it cannot yield)
function M.current()
  if current ~= nil and co_isyieldable() then return current end
  return nil
end

--- sched.running() -> handle of the running task, or nil: like current(), but
-- without the (costly) yieldability check. Only for code that parks right after;
-- park raises where the task cannot yield.
function M.running() return current end

local function unlink(rec)
  local p, n = rec[PREV], rec[NEXT]
  p[NEXT], n[PREV] = n, p
  rec[PREV], rec[NEXT] = false, false
  nparked = nparked - 1
end

--- sched.park(op) -> the values passed to wake. Suspends the running task.
-- op identifies the wait (also the wake token); op.what describes it for reports.
function M.park(op)
  local rec = current
  if rec == nil then error("await called outside an async task", 2) end
  local cerr = rec[CERR]
  if cerr then
    rec[CERR] = false
    error(cerr, 0)
  end
  -- The scheduler records the wait (rec[OP], the parked list) once the yield has
  -- happened (after_resume), so a yield that cannot happen changes nothing. That
  -- is code the VM runs on its own, such as a __gc finalizer, or a C function
  -- in between (table.sort's comparator). A protected call keeps the stack of a
  -- parked task small, where a C function would need 20 free slots.
  local ok, a, b = pcall(co_yield, PARK, op)
  if ok then return a, b end
  error("await called outside an async task", 0)
end

local function link(rec, op)
  rec[OP] = op
  local last = parked_head[PREV]
  rec[PREV], rec[NEXT] = last, parked_head
  last[NEXT] = rec
  parked_head[PREV] = rec
  nparked = nparked + 1
end

--- sched.wake(rec, op, a, b) -> bool: queue the resume of rec if it still waits on op
local function wake(rec, op, a, b)
  if rec[OP] ~= op then return false end
  rec[OP] = false
  unlink(rec)
  local t = tail + 1
  tail = t
  qf[t], qa[t], qb[t], qc[t] = RESUME, rec, a, b
  return true
end
M.wake = wake

--- sched.is_waiting(rec, op) -> bool
function M.is_waiting(rec, op) return rec[OP] == op end

-- Ops whose `cancel` method means something else (promises) register how to
-- undo a wait on them: unparkers[metatable] = function(op, rec, err).
local unparkers = {}
function M.register_unpark(mt, fn) unparkers[mt] = fn end

--- sched.cancel(rec, err): cancel the task at its current suspension: undo its
-- wait (op:cancel(rec)) and resume it with (false, err), so await raises err.
function M.cancel(rec, err)
  local op = rec[OP]
  if not op then
    rec[CERR] = err  -- raised at its next suspension
    return false
  end
  rec[OP] = false
  unlink(rec)
  local unpark = unparkers[getmetatable(op)]
  if unpark then
    unpark(op, rec, err)
  elseif type(op) == "table" and op.cancel then
    op:cancel(rec)
  end
  local t = tail + 1
  tail = t
  qf[t], qa[t], qb[t], qc[t] = RESUME, rec, false, err
  return true
end

-- A task's body runs straight in its fiber, with no protected call around it:
-- every frame there would grow each parked coroutine's stack (memory per task).
-- An error kills the fiber instead, and after_resume reports it from the dead
-- coroutine's stack, which Lua keeps intact.
local GO = setmetatable({}, { __tostring = function() return "luasync.GO" end })
M.GO = GO
local task_done, task_failed  -- set by luasync.async

-- Fibers: pooled coroutines that run one job after another.
function fiber_main(f, ...)
  if current[PROMISE] then
    local v = f(...)
    local rec = current
    local p = rec[PROMISE]
    rec[PROMISE] = false
    task_done(p, v)
  else
    f(...)
  end
  return fiber_main(co_yield(DONE))
end

local function get_fiber()
  if npool > 0 then
    local rec = pool[npool]
    pool[npool] = nil
    npool = npool - 1
    return rec
  end
  return { co_create(fiber_main), false, false, false, false, false }
end

local on_fiber_error  -- set by the runtime: internal failure escaping a fiber
local requeue_yield   -- plain coroutine.yield at task level: resume next loop turn

local function after_resume(rec, ok, r, op)
  if r == PARK then return link(rec, op) end
  if r == DONE then
    if npool < POOL_MAX then
      rec[CERR] = false
      npool = npool + 1
      pool[npool] = rec
    end
    return
  end
  if not ok then
    -- The fiber is dead (never pooled again). A task's error fails the task.
    local p = rec[PROMISE]
    if p then
      rec[PROMISE] = false
      return task_failed(p, rec, r)
    end
    return on_fiber_error(rec, r)
  end
  -- coroutine.yield() straight from a task body: it yields to the loop once.
  return requeue_yield(rec)
end

--- sched.start_task(p, fn, ...): run fn(...) as a task now, until it first
-- suspends; p is its Promise (or GO). Its end calls task_done(p, first result)
-- or task_failed(p, rec, err).
function M.start_task(p, f, ...)
  local rec = get_fiber()
  rec[PROMISE] = p
  if p ~= GO then p[6] = rec end  -- the promise's link to its task (see luasync.promise)
  local prev = current
  current = rec
  local ok, r, op = co_resume(rec[CO], f, ...)
  current = prev
  return after_resume(rec, ok, r, op)
end

function M.set_task_hooks(done, failed)
  task_done, task_failed = done, failed
end

--- sched.start(f, ...): run f(...) in a fresh fiber now, until it first suspends.
function M.start(f, ...)
  local rec = get_fiber()
  local prev = current
  current = rec
  local ok, r, op = co_resume(rec[CO], f, ...)
  current = prev
  return after_resume(rec, ok, r, op)
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
M._drain_microtasks = drain_microtasks

-- One job of the ready queue: resume a parked fiber, or run microtasks in a
-- worker fiber until the next resume.
local function run_one()
  local f = qf[head]
  local rec, ok, r, op
  if f == RESUME then
    local a, b
    rec, a, b = qa[head], qb[head], qc[head]
    qf[head], qa[head], qb[head], qc[head] = nil, nil, nil, nil
    if head < tail then
      head = head + 1
    else  -- emptied: start again at slot 1, or the arrays grow without end
      head, tail = 1, 0
    end
    current = rec
    ok, r, op = co_resume(rec[CO], a, b)
  else
    rec = get_fiber()
    current = rec
    ok, r, op = co_resume(rec[CO], drain_microtasks)
  end
  current = nil
  return after_resume(rec, ok, r, op)
end

--- sched.run(): drain the ready queue. Called only from the top (no fiber running).
--
-- LuaJIT does not compile coroutine.resume: a trace reaching it ends in a
-- stitch, and the code after it is recorded as a new trace, which ends where
-- it can link to a compiled loop or function. The only place to link to in
-- this loop is run_one's own trace, and that exists only if run_one got hot
-- while called from interpreted code; once traces run the loop, nothing counts
-- calls any more. Without it, each stitched continuation ran round the loop to
-- the resume again and started one more trace: hundreds per run, each an
-- mprotect of the machine code and a TLB flush. So the first jobs of a process
-- go through an interpreted copy of the loop until run_one has a trace of its
-- own (its header instruction gets patched), and only then through the loop
-- that may be compiled.
--
-- The JIT starts compiling later than LuaJIT's default (a loop after 56
-- iterations, a function after 112 calls): at 1000 iterations / 2000 calls. A
-- script that starts a hundred LLM streams at once otherwise records and
-- compiles dozens of traces, many short-lived, while the first tokens arrive:
-- the median time to first token of 100 concurrent streams was 36 ms against the
-- C floor's 15 ms, and 21 ms with this setting (bench/README-llm.md). Long
-- loops compile as before, a few hundred microseconds later at most. A script
-- may set its own jit.opt.start("hotloop=N").
local HOTLOOP = 1000
if jit then jit.opt.start("hotloop=" .. HOTLOOP) end
-- run_one gets hot after 2 * HOTLOOP calls; the bound is for when the JIT is
-- off (or a script raised hotloop further).
local cold_jobs = 2 * HOTLOOP + 2000
local run_one_hot
do
  local ok, jutil = pcall(require, "jit.util")
  if ok and jit and jit.status() then
    local header = jutil.funcbc(run_one, 0)
    run_one_hot = function() return jutil.funcbc(run_one, 0) ~= header end
  else
    cold_jobs = 0
  end
end
local function run_cold()
  while head <= tail do
    run_one()
    cold_jobs = cold_jobs - 1
    if cold_jobs <= 0 or run_one_hot() then
      cold_jobs = 0
      return
    end
  end
end
if jit then jit.off(run_cold) end

function M.run()
  if cold_jobs > 0 then run_cold() end
  while head <= tail do run_one() end
  head, tail = 1, 0
end

function M.pending() return tail - head + 1 end

---------------------------------------------------------------------------
-- Timer heap: one libuv timer armed for the earliest deadline.
-- Entries: {t = deadline_ms, s = seq, fn =, arg =} for callbacks, or a Bucket
-- of sleeping fibers (below).
local heap, nheap = {}, 0
local tseq = 0
local live = 0           -- entries not cancelled
local weak = 0           -- of those, weak ones (Channel.after): they alone do not keep the process alive
local held = false       -- weak timers keep it alive until the next one fires (see hold_weak_timers)
local reffed = true      -- whether the libuv timer is referenced
local armed = nil        -- deadline the libuv timer is armed for
-- Timers count from the moment they are set: the loop clock is refreshed
-- (uv_update_time) on every read, so work done before a sleep does not shorten
-- it. Read through the FFI, which the JIT compiles into a direct call; a
-- lua_CFunction call inside a hot trace would cost far more than the read.
local now
do
  local ok, ffi = pcall(require, "ffi")
  if ok then
    pcall(ffi.cdef, "typedef struct luasync_uv_loop luasync_uv_loop;")
    local loop_p, update_p, now_p = core.loop_ptr()
    local loop = ffi.cast("luasync_uv_loop*", loop_p)
    local update_time = ffi.cast("void (*)(luasync_uv_loop*)", update_p)
    local uv_now = ffi.cast("uint64_t (*)(const luasync_uv_loop*)", now_p)
    now = function()
      update_time(loop)
      return tonumber(uv_now(loop))
    end
  end
  now = now or core.update_now
end

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
  local ref = held or live > weak
  if ref ~= reffed then
    reffed = ref
    core.timer_ref(ref)
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

--- sched.add_timer(seconds, fn, arg, weak?) -> entry (cancel with cancel_timer)
-- fn(arg, entry) runs as a microtask at the deadline. A weak timer does not by
-- itself keep the process alive once the main task has ended (Go's time.After).
function M.add_timer(seconds, fn, arg, is_weak)
  tseq = tseq + 1
  local e = { t = now() + ms_of(seconds), s = tseq, fn = fn, arg = arg, weak = is_weak or false }
  live = live + 1
  if is_weak then weak = weak + 1 end
  heap_push(e)
  if heap[1] == e or (not is_weak and not reffed) then arm() end
  return e
end

function M.cancel_timer(e)
  if not e.dead then
    e.dead = true
    live = live - 1
    if e.weak then weak = weak - 1 end
    if live == 0 or live == weak then arm() end
  end
end

--- sched.has_weak_timers() -> bool: a weak timer is pending (it may still wake a task)
function M.has_weak_timers() return weak > 0 end

--- sched.hold_weak_timers() -> bool: when the loop has run dry while a task
-- still waits, pending weak timers may yet wake it: keep the process alive
-- until the next timer fires (true), or report that there are none (false).
function M.hold_weak_timers()
  if weak == 0 then return false end
  held = true
  arm()
  return true
end

-- Sleeping fibers share timer entries: a sleep joins the newest entry when it
-- has the same deadline (milliseconds), so many tasks sleeping alike cost one
-- array slot each instead of an entry apiece. Only the newest entry is joined,
-- which keeps timers with equal deadlines firing in the order they were set.
-- A bucket is the wait op (wake token) of every fiber in it:
--   { t = deadline, s = seq, n = fibers added, left = fibers still waiting,
--     [1..n] = fiber records }
local Bucket = { what = "sleep" }
Bucket.__index = Bucket
-- A cancelled sleep stays in the list; wake() skips it by its token.
function Bucket:cancel()
  local left = self.left - 1
  self.left = left
  if left == 0 then M.cancel_timer(self) end
end

local last_bucket = false  -- the newest timer entry, if it is a bucket

local function sleep_on(rec, t)
  local b = last_bucket
  if b and b.t == t and b.s == tseq and not b.dead then
    local n = b.n + 1
    b.n, b.left = n, b.left + 1
    b[n] = rec
    return b
  end
  tseq = tseq + 1
  b = setmetatable({ rec, t = t, s = tseq, n = 1, left = 1, dead = false }, Bucket)
  last_bucket = b
  live = live + 1
  heap_push(b)
  if heap[1] == b or not reffed then arm() end
  return b
end

--- sched.sleep(seconds): suspend the running task (sleep(0) yields once to the loop)
function M.sleep(seconds)
  local rec = current
  -- (park raises where the code cannot yield, e.g. in __gc; the entry then fires for nothing)
  if rec == nil then error("await called outside an async task", 2) end
  local ok, err = M.park(sleep_on(rec, now() + ms_of(seconds)))
  if ok == false then error(err, 0) end  -- cancelled while sleeping
end

requeue_yield = function(rec)
  link(rec, sleep_on(rec, now()))
end

--- Called by the runtime when the libuv timer fires.
function M.on_timer()
  armed = nil
  held = false
  local t = now()
  while nheap > 0 and heap[1].t <= t do
    local e = heap_pop()
    if not e.dead then
      e.dead = true
      live = live - 1
      if e.weak then weak = weak - 1 end
      if e.fn then
        defer(e.fn, e.arg, e)
      else
        if e == last_bucket then last_bucket = false end
        for i = 1, e.n do wake(e[i], e, true) end
      end
    end
  end
  arm()
end

function M.set_hooks(fiber_error)
  on_fiber_error = fiber_error
end

--- sched.parked() -> list of fiber records of every parked task, oldest first
function M.parked()
  local list = {}
  local rec = parked_head[NEXT]
  while rec ~= parked_head do
    list[#list + 1] = rec
    rec = rec[NEXT]
  end
  return list
end

function M.nparked() return nparked end

return M
