-- luasync.channel: Go-style channels and select (API.md section 4).
--
-- A channel is a ring buffer (capacity `size`, `n` values from slot `h`) plus
-- two FIFO queues of parked waiters, receivers (rh..rt) and senders (sh..st),
-- kept as intrusive doubly linked lists of waiter nodes. Invariants:
--   * receivers wait only while the buffer is empty;
--   * senders wait only while the buffer is full (always, when size == 0);
--   * a linked node belongs to a parked task; whoever completes it unlinks it
--     first, then wakes its task (sched.wake only queues the resume).
-- So a send that finds a waiting receiver hands the value over and carries on
-- without parking, and a value is never in two places at once.
--
-- Waiter nodes are small arrays (no hash part: a blocked task costs ~110 bytes
-- here, not ~180):
--   [1] task handle  [2] channel  [3] prev  [4] next  [5] value (senders)
--   select nodes also: [6] select record  [7] case index  [8] true if receive
-- A plain send/receive parks on its node, which is the wake token and gets
-- `what`/`cancel` from its metatable. A select parks on a select record and
-- links one node per case; the first counterpart to reach one of them unlinks
-- all of them, so exactly one case fires.
--
-- A node is stale when sched.park raised instead of parking (a cancel was
-- pending, or a __gc finalizer cannot yield): sched.wake then returns false,
-- and whoever popped the node drops it and tries the next one.
local sched = require("luasync.sched")
local bit = require("bit")

-- running(): the task handle without a yieldability check (park raises in __gc)
local park, wake, current, add_timer = sched.park, sched.wake, sched.running, sched.add_timer
local setmetatable, getmetatable, error, type, tonumber, tostring =
  setmetatable, getmetatable, error, type, tonumber, tostring
local bxor, lshift, rshift = bit.bxor, bit.lshift, bit.rshift

local Channel = {}
Channel.__index = Channel
Channel.__name = "luasync.Channel"

local M = {}

local NIL = setmetatable({}, { __tostring = function() return "luasync.channel.NIL" end })
local CLOSED = setmetatable({}, { __tostring = function() return "luasync.channel.CLOSED" end })
local E_SEND_CLOSED = "send on closed channel"
local E_OUTSIDE = "await called outside an async task"

---------------------------------------------------------------------------
-- Waiter queues

local function unlink_recv(ch, node)
  local p, n = node[3], node[4]
  if p then p[4] = n else ch.rh = n end
  if n then n[3] = p else ch.rt = p end
  node[3], node[4] = false, false
end

local function unlink_send(ch, node)
  local p, n = node[3], node[4]
  if p then p[4] = n else ch.sh = n end
  if n then n[3] = p else ch.st = p end
  node[3], node[4] = false, false
end

local function push_recv(ch, node)
  local t = ch.rt
  node[3] = t
  if t then t[4] = node else ch.rh = node end
  ch.rt = node
end

local function push_send(ch, node)
  local t = ch.st
  node[3] = t
  if t then t[4] = node else ch.sh = node end
  ch.st = node
end

-- Plain waiters are pooled: a node returns to its pool once its task resumed,
-- when it is no longer linked anywhere and no wake can refer to it.
local RecvOp = { what = "channel receive" }
RecvOp.__index = RecvOp
function RecvOp.cancel(node) unlink_recv(node[2], node) end

local SendOp = { what = "channel send" }
SendOp.__index = SendOp
function SendOp.cancel(node) unlink_send(node[2], node) end

local sel_pool, nsel_pool = {}, 0
local recv_pool, nrecv_pool = {}, 0
local send_pool, nsend_pool = {}, 0
local POOL_MAX = 256

-- Select records are the wake token of a parked select: nodes in [1..n] (kept
-- for reuse beyond n), and the result i, v, ok. Pooled like the plain nodes.
local SelectOp = { what = "select" }
SelectOp.__index = SelectOp

local function unlink_select(sel)
  for k = 1, sel.n do
    local node = sel[k]
    local ch = node[2]
    if node[8] then
      if node[3] or ch.rh == node then unlink_recv(ch, node) end
    elseif node[3] or ch.sh == node then
      unlink_send(ch, node)
    end
  end
end
SelectOp.cancel = unlink_select

-- Complete select node `node` (already unlinked from its queue) with a case
-- result; false when its select no longer waited (stale).
local function fire_select(node, v, ok)
  local sel = node[6]
  sel.i, sel.v, sel.ok = node[7], v, ok
  unlink_select(sel)
  return wake(node[1], sel, true)
end

---------------------------------------------------------------------------
-- Non-blocking halves of send and receive, shared by the methods and select.

-- Deliver v to a waiting receiver or into the buffer; false when it would block.
local function offer(ch, v)
  local node = ch.rh
  while node do
    local nx = node[4]
    ch.rh = nx
    if nx then nx[3] = false else ch.rt = false end
    node[4] = false
    if node[6] then
      if fire_select(node, v, true) then return true end
    elseif wake(node[1], node, true, v) then
      return true
    end
    node = ch.rh  -- (not nx: a stale select may have unlinked its other nodes)
  end
  local n, size = ch.n, ch.size
  if n < size then
    local slot = ch.h + n
    if slot > size then slot = slot - size end
    if v == nil then v = NIL end
    ch.buf[slot] = v
    ch.n = n + 1
    return true
  end
  return false
end

-- Take a value from the buffer or a waiting sender: v, true; or nil, false
-- when there is none (closed or not).
local function take(ch)
  local n = ch.n
  if n > 0 then
    local h, size, buf = ch.h, ch.size, ch.buf
    local v = buf[h]
    buf[h] = nil
    h = h + 1
    if h > size then h = 1 end
    ch.h, ch.n = h, n - 1
    -- the first waiting sender's value moves into the freed slot
    local node = ch.sh
    while node do
      local nx = node[4]
      ch.sh = nx
      if nx then nx[3] = false else ch.st = false end
      node[4] = false
      local sv = node[5]
      local woke
      if node[6] then woke = fire_select(node, nil, true) else woke = wake(node[1], node, true) end
      if woke then
        local slot = h + n - 1
        if slot > size then slot = slot - size end
        if sv == nil then sv = NIL end
        buf[slot] = sv
        ch.n = n
        break
      end
      node = ch.sh
    end
    if v == NIL then return nil, true end
    return v, true
  end
  local node = ch.sh
  while node do
    local nx = node[4]
    ch.sh = nx
    if nx then nx[3] = false else ch.st = false end
    node[4] = false
    local sv = node[5]
    if node[6] then
      if fire_select(node, nil, true) then return sv, true end
    elseif wake(node[1], node, true) then
      return sv, true
    end
    node = ch.sh
  end
  return nil, false
end

---------------------------------------------------------------------------
-- Methods

--- Channel.new(capacity?) -> channel (0 = unbuffered)
function M.new(cap)
  local size = 0
  if cap ~= nil then
    size = tonumber(cap)
    if size == nil or size < 0 or size % 1 ~= 0 then
      error("Channel.new: capacity must be a non-negative integer", 2)
    end
  end
  return setmetatable({ buf = {}, h = 1, n = 0, size = size, closed = false,
                        rh = false, rt = false, sh = false, st = false }, Channel)
end

--- ch:send(v): waits until a receiver takes v or the buffer has room
function Channel:send(v)
  if self.closed then error(E_SEND_CLOSED, 2) end
  -- fast path: hand the value to the first waiting receiver, without parking
  local node = self.rh
  if node and not node[6] then
    local nx = node[4]
    self.rh = nx
    if nx then nx[3] = false else self.rt = false end
    node[4] = false
    if wake(node[1], node, true, v) then return end
  end
  if offer(self, v) then return end
  local co = current()
  if co == nil then error(E_OUTSIDE, 2) end
  if nsend_pool > 0 then
    node = send_pool[nsend_pool]
    send_pool[nsend_pool] = nil
    nsend_pool = nsend_pool - 1
  else
    node = setmetatable({ false, false, false, false, false }, SendOp)
  end
  node[1], node[2], node[5] = co, self, v
  push_send(self, node)
  local a, err = park(node)
  node[1], node[2], node[5] = false, false, false
  if nsend_pool < POOL_MAX then
    nsend_pool = nsend_pool + 1
    send_pool[nsend_pool] = node
  end
  if a == true then return end
  if a == CLOSED then error(E_SEND_CLOSED, 2) end
  error(err, 0)
end

--- ch:receive() -> value, true | nil, false once closed and drained
function Channel:receive()
  if self.n > 0 or self.sh then
    local v, ok = take(self)
    if ok then return v, true end
  end
  if self.closed then return nil, false end
  local co = current()
  if co == nil then error(E_OUTSIDE, 2) end
  local node
  if nrecv_pool > 0 then
    node = recv_pool[nrecv_pool]
    recv_pool[nrecv_pool] = nil
    nrecv_pool = nrecv_pool - 1
  else
    node = setmetatable({ false, false, false, false }, RecvOp)
  end
  node[1], node[2] = co, self
  local t = self.rt                    -- push_recv, inlined
  node[3] = t
  if t then t[4] = node else self.rh = node end
  self.rt = node
  local a, b = park(node)
  node[1], node[2] = false, false
  if nrecv_pool < POOL_MAX then
    nrecv_pool = nrecv_pool + 1
    recv_pool[nrecv_pool] = node
  end
  if a == true then return b, true end
  if a == CLOSED then return nil, false end
  error(b, 0)
end

--- ch:trySend(v) -> bool (raises on a closed channel, like send)
function Channel:trySend(v)
  if self.closed then error(E_SEND_CLOSED, 2) end
  return offer(self, v)
end

--- ch:tryReceive() -> value, ok, ready
-- ready is false when receive would have to wait; ok as for receive.
function Channel:tryReceive()
  local v, ok = take(self)
  if ok then return v, true, true end
  if self.closed then return nil, false, true end
  return nil, false, false
end

--- ch:close(): wakes every waiting receiver (nil, false); waiting senders raise
function Channel:close()
  if self.closed then error("close of closed channel", 2) end
  self.closed = true
  -- Pop from the head each time: completing a select unlinks its other nodes,
  -- which may sit further along the same queue.
  local node = self.rh
  while node do
    unlink_recv(self, node)
    if node[6] then fire_select(node, nil, false) else wake(node[1], node, CLOSED) end
    node = self.rh
  end
  node = self.sh
  while node do
    unlink_send(self, node)
    local sel = node[6]
    if sel then
      unlink_select(sel)
      wake(node[1], sel, CLOSED)
    else
      wake(node[1], node, CLOSED)
    end
    node = self.sh
  end
end

function Channel:len() return self.n end
function Channel:cap() return self.size end
function Channel:isClosed() return self.closed end

--- for v in ch:iter() do ... end: receives until closed and drained (or a nil value)
function Channel:iter()
  return function()
    local v = self:receive()
    return v
  end
end

Channel.__tostring = function(ch)
  return string.format("Channel(%d/%d%s)", ch.n, ch.size, ch.closed and ", closed" or "")
end

---------------------------------------------------------------------------
-- select

-- select's own random numbers (xorshift32), seeded per process as Go's select
-- is random per run, and apart from math.random so that selects do not shift
-- the sequence of a script that called math.randomseed.
local rng = bit.tobit(math.floor((require("luasync.core").hrtime() % 1) * 1e9) + os.time())
if rng == 0 then rng = 0x2545F491 end
local function random(n)
  local x = rng
  x = bxor(x, lshift(x, 13))
  x = bxor(x, rshift(x, 17))
  x = bxor(x, lshift(x, 5))
  rng = x
  return x % n + 1
end

local ready_idx = {}  -- scratch list of ready case indices (no yield while in use)

-- -> channel (or nil), true for receive / false for send / nil for default
local function check_case(c, k)
  if type(c) ~= "table" then error("Channel.select: case " .. k .. " is not a table", 3) end
  local ch, op = c[1], c[2]
  if op == "receive" or op == "send" then
    if ch ~= nil and getmetatable(ch) ~= Channel then
      error("Channel.select: case " .. k .. " needs a channel", 3)
    end
    return ch, op == "receive"
  elseif op == "default" then
    return nil, nil
  end
  error("Channel.select: case " .. k .. ": unknown operation " .. tostring(op), 3)
end

--- Channel.select(cases) -> index, value, ok
-- cases: {ch, "receive"}, {ch, "send", v}, {nil, "default"}. A nil channel
-- is never ready (as in Go). One ready case is chosen uniformly at random.
function M.select(cases)
  if type(cases) ~= "table" then error("Channel.select: expected a table of cases", 2) end
  local ncases = cases.n or #cases
  while true do
    local nready, default = 0, nil
    for k = 1, ncases do
      local ch, recv = check_case(cases[k], k)
      if ch then
        local ready
        if recv then
          ready = ch.n > 0 or ch.sh or ch.closed
        else
          ready = ch.closed or ch.rh or ch.n < ch.size
        end
        if ready then
          nready = nready + 1
          ready_idx[nready] = k
        end
      elseif recv == nil then
        default = k
      end
    end
    if nready > 0 then
      local k = ready_idx[nready == 1 and 1 or random(nready)]
      for j = 1, nready do ready_idx[j] = nil end
      local c = cases[k]
      local ch = c[1]
      if c[2] == "receive" then
        local v, ok = take(ch)
        if ok then return k, v, true end
        if ch.closed then return k, nil, false end
      else
        if ch.closed then error(E_SEND_CLOSED, 2) end
        if offer(ch, c[3]) then return k, nil, true end
      end
      -- only stale waiters were there: scan again
    elseif default then
      return default
    else
      break
    end
  end
  -- Nothing ready: park with one node per case.
  local co = current()
  if co == nil then error(E_OUTSIDE, 2) end
  local sel
  if nsel_pool > 0 then
    sel = sel_pool[nsel_pool]
    sel_pool[nsel_pool] = nil
    nsel_pool = nsel_pool - 1
  else
    sel = setmetatable({ n = 0, i = false, v = false, ok = false }, SelectOp)
  end
  local nnodes = 0
  for k = 1, ncases do
    local c = cases[k]
    local ch = c[1]
    if ch then
      local recv = c[2] == "receive"
      nnodes = nnodes + 1
      local node = sel[nnodes]
      if node then
        node[1], node[2], node[5], node[7], node[8] = co, ch, c[3], k, recv
      else
        node = { co, ch, false, false, c[3], sel, k, recv }
        sel[nnodes] = node
      end
      if recv then push_recv(ch, node) else push_send(ch, node) end
    end
  end
  sel.n = nnodes
  local a, err = park(sel)
  -- Resumed: every node is unlinked (fired, closed or cancelled), so the record
  -- and its nodes can serve another select.
  local i, v, ok = sel.i, sel.v, sel.ok
  for k = 1, nnodes do
    local node = sel[k]
    node[1], node[2], node[5] = false, false, false
  end
  sel.v = false
  if nsel_pool < POOL_MAX then
    nsel_pool = nsel_pool + 1
    sel_pool[nsel_pool] = sel
  end
  if a == true then return i, v, ok end
  if a == CLOSED then error(E_SEND_CLOSED, 2) end
  error(err, 0)
end

---------------------------------------------------------------------------
-- Channel.after

local function deliver(ch) ch:trySend(true) end

--- Channel.after(seconds) -> a channel that receives `true` once, after the delay
-- Like Go's time.After, its timer alone does not keep the process alive once the
-- main task has ended; a task waiting for it does (see sched.hold_weak_timers).
function M.after(seconds)
  local s = tonumber(seconds)
  if s == nil then error("Channel.after: expected a number of seconds", 2) end
  local ch = M.new(1)
  add_timer(s, deliver, ch, true)
  return ch
end

M.Channel = Channel
function M.is(v) return getmetatable(v) == Channel end
return M
