-- luasync.llm.limiter: at most n holders at once; the others wait in FIFO order.
--
--   local lim = limiter.new(8)
--   lim:acquire()        -- inside a task; suspends while n slots are taken
--   ... (nothing that can yield before the pcall that guarantees the release)
--   lim:release()
--
--   lim:acquire_cb(fn, arg)   -- no task needed: fn(arg) runs once a slot is held
--                             -- (at once if one is free, else as a microtask later)
--
-- A waiter cancelled while queued (its task's promise cancelled) leaves the queue
-- without taking a slot. release() hands the slot straight to the next waiter,
-- so a late arrival cannot jump the queue.
local sched = require("luasync.sched")

local park, wake, running, defer = sched.park, sched.wake, sched.running, sched.defer
local setmetatable, getmetatable, error = setmetatable, getmetatable, error

local Limiter = {}
Limiter.__index = Limiter

local M = {}

-- A queued waiter: the op it parks on (its wake token).
local Wait = {}
Wait.__index = Wait
Wait.what = "an LLM concurrency slot"
function Wait:cancel() self.cancelled = true end

function M.new(n)
  return setmetatable({ max = n, active = 0, head = 1, tail = 0, queue = {} }, Limiter)
end

function Limiter:acquire()
  if self.active < self.max and self.head > self.tail then
    self.active = self.active + 1
    return
  end
  local op = setmetatable({ rec = running(), cancelled = false }, Wait)
  local t = self.tail + 1
  self.tail = t
  self.queue[t] = op
  local ok, err = park(op)
  if not ok then error(err, 0) end
  -- woken by release(): the slot was handed over (active unchanged)
end

-- A queued callback: {fn, arg}
local Callback = {}
Callback.__index = Callback

function Limiter:acquire_cb(fn, arg)
  if self.active < self.max and self.head > self.tail then
    self.active = self.active + 1
    return fn(arg)
  end
  local t = self.tail + 1
  self.tail = t
  self.queue[t] = setmetatable({ fn = fn, arg = arg }, Callback)
end

function Limiter:release()
  local q = self.queue
  while self.head <= self.tail do
    local h = self.head
    local op = q[h]
    q[h] = nil
    self.head = h + 1
    if getmetatable(op) == Callback then
      defer(op.fn, op.arg)   -- never from inside release(): its caller may be anywhere
      return
    end
    if not op.cancelled and wake(op.rec, op, true) then return end
  end
  self.active = self.active - 1
end

--- waiting() -> number of queued waiters (cancelled ones included until skipped)
function Limiter:waiting() return self.tail - self.head + 1 end

return M
