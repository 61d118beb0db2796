-- A tiny scheduler for the bare-LuaJIT orientation programs: coroutines, a
-- ready queue, a minimal promise, a Go-style channel and a timer heap. It is
-- the floor luasync's runtime is compared against, not a runtime itself:
-- no error handling beyond re-raising, no cancellation.
local bench = require("benchlib")

local co_create, co_resume, co_yield, co_running =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running

local M = {}

-- FIFO of (fn_or_coroutine, a, b) triples.
local q_fn, q_a, q_b, q_head, q_tail = {}, {}, {}, 1, 0

local function push(f, a, b)
  q_tail = q_tail + 1
  q_fn[q_tail], q_a[q_tail], q_b[q_tail] = f, a, b
end

local function resume(co, a, b)
  local ok, err = co_resume(co, a, b)
  if not ok then error(err, 0) end
end

-- Make a suspended coroutine runnable with the values it will get back.
function M.ready(co, a, b) push(co, a, b) end

-- Queue a plain function call (a microtask).
function M.micro(f, a, b) push(f, a, b) end

local function drain()
  while q_head <= q_tail do
    local f, a, b = q_fn[q_head], q_a[q_head], q_b[q_head]
    q_fn[q_head], q_a[q_head], q_b[q_head] = nil, nil, nil
    q_head = q_head + 1
    if type(f) == "function" then f(a, b) else resume(f, a, b) end
  end
  q_head, q_tail = 1, 0
end

-- Start fn(...) in a new coroutine at once, until its first suspension.
function M.spawn(fn, ...)
  local co = co_create(fn)
  resume(co, ...)
  return co
end

-- Timer heap: deadlines[i] with coroutines[i], a binary min-heap.
local h_at, h_co, h_n = {}, {}, 0

local function heap_push(at, co)
  h_n = h_n + 1
  local i = h_n
  while i > 1 do
    local p = math.floor(i / 2)
    if h_at[p] <= at then break end
    h_at[i], h_co[i] = h_at[p], h_co[p]
    i = p
  end
  h_at[i], h_co[i] = at, co
end

local function heap_pop()
  local co = h_co[1]
  local at, last = h_at[h_n], h_co[h_n]
  h_at[h_n], h_co[h_n] = nil, nil
  h_n = h_n - 1
  if h_n > 0 then
    local i = 1
    while true do
      local c = i * 2
      if c > h_n then break end
      if c < h_n and h_at[c + 1] < h_at[c] then c = c + 1 end
      if at <= h_at[c] then break end
      h_at[i], h_co[i] = h_at[c], h_co[c]
      i = c
    end
    h_at[i], h_co[i] = at, last
  end
  return co
end

-- Suspend the running coroutine for `seconds`.
function M.sleep(seconds)
  heap_push(bench.now_ms() + seconds * 1e3, co_running())
  co_yield()
end

-- Run until no work and no timers are left.
function M.run()
  while true do
    drain()
    if h_n == 0 then return end
    local now = bench.now_ms()
    if h_at[1] > now then
      bench.block_ms(h_at[1] - now)
      now = bench.now_ms()
    end
    while h_n > 0 and h_at[1] <= now do push(heap_pop()) end
  end
end

-- Run fn as the main coroutine, then the loop until everything is done.
function M.main(fn, ...)
  M.spawn(fn, ...)
  M.run()
end

-- Minimal promise: resolve with a plain value, andThen with FIFO microtasks.
-- A promise made by andThen keeps its own handler (fn); the parent lists its
-- children (first one inline, the rest in a table).
local Promise = {}
Promise.__index = Promise

local settle

local function run_child(child, v)
  if child.co then M.ready(child.co, v) else settle(child, child.fn(v)) end
end

function settle(p, v)
  p.done, p.value = true, v
  local c = p.child
  if c then
    p.child = nil
    M.micro(run_child, c, v)
    local more = p.more
    if more then
      p.more = nil
      for i = 1, #more do M.micro(run_child, more[i], v) end
    end
  end
end

local function attach(p, child)
  if p.done then
    M.micro(run_child, child, p.value)
  elseif not p.child then
    p.child = child
  else
    local more = p.more
    if not more then more = {}; p.more = more end
    more[#more + 1] = child
  end
end

function M.resolved(v)
  return setmetatable({ done = true, value = v }, Promise)
end

function Promise:andThen(f)
  local np = setmetatable({ done = false, fn = f }, Promise)
  attach(self, np)
  return np
end

-- Await inside a coroutine run by this scheduler.
function Promise:await()
  if self.done then return self.value end
  attach(self, { co = co_running() })
  return co_yield()
end

-- Go-style channel; capacity 0 is a rendezvous.
local Deque = {}
Deque.__index = Deque
local function deque() return setmetatable({ h = 1, t = 0 }, Deque) end
function Deque:push(v) local t = self.t + 1; self.t = t; self[t] = v end
function Deque:len() return self.t - self.h + 1 end
function Deque:shift()
  local h = self.h
  if h > self.t then return nil end
  local v = self[h]
  self[h] = nil
  if h == self.t then self.h, self.t = 1, 0 else self.h = h + 1 end
  return v
end

local Chan = {}
Chan.__index = Chan

function M.chan(cap)
  return setmetatable({ cap = cap or 0, buf = deque(), recvq = deque(),
                        sendq = deque(), sendv = deque(), closed = false }, Chan)
end

function Chan:send(v)
  if self.closed then error("send on closed channel", 2) end
  local r = self.recvq:shift()
  if r then M.ready(r, v, true); return end
  if self.buf:len() < self.cap then self.buf:push(v); return end
  self.sendq:push(co_running())
  self.sendv:push(v)
  co_yield()
end

function Chan:receive()
  local buf = self.buf
  if buf:len() > 0 then
    local v = buf:shift()
    local s = self.sendq:shift()
    if s then buf:push(self.sendv:shift()); M.ready(s) end
    return v, true
  end
  local s = self.sendq:shift()
  if s then M.ready(s); return self.sendv:shift(), true end
  if self.closed then return nil, false end
  self.recvq:push(co_running())
  return co_yield()
end

function Chan:close()
  self.closed = true
  while true do
    local r = self.recvq:shift()
    if not r then break end
    M.ready(r, nil, false)
  end
end

return M
