-- luasync.promise: Promises/A+ with cancellation, on the scheduler's microtask queue.
--
-- A promise keeps its reactions as (function, argument) pairs: the first one
-- inline, further ones in _more. Settling queues each reaction as a
-- microtask; a task awaiting the promise is queued for resumption directly.
--
-- Promises are array-shaped: a table with hot fields in its array part costs
-- 120 bytes (136 for a promise made by andThen) where the same fields by name
-- took 256, and memory is most of the cost of a long chain or of many tasks.
--   [1] state  [2] value  [3] first reaction's function  [4] its argument
--   [5] reactions ever added (> 0 = handled)
--   [6] link: the promise this one derives from (andThen), or the record of
--       the task whose result it is (spawn), else false
--   [7]/[8] onFulfilled/onRejected handlers (andThen children only)
-- Rare fields stay named: _more, _trace, _handled, _cancelled, _cancel_hook (the
-- first cancel hook), _cancel_hooks (any further ones).
-- Other modules read only [1] (state) and [2] (value).
local sched = require("luasync.sched")
local errors = require("luasync.errors")

local defer, wake, park = sched.defer, sched.wake, sched.park
-- running(): the task handle without the yieldability check (park makes it).
local running = sched.running
local setmetatable, getmetatable, type, rawequal, error, xpcall, pcall =
  setmetatable, getmetatable, type, rawequal, error, xpcall, pcall

local PENDING, FULFILLED, REJECTED = 0, 1, 2
local STATUS = { [0] = "pending", "fulfilled", "rejected" }

local Promise = {}
Promise.__index = Promise
Promise.__tostring = function(p) return "Promise<" .. STATUS[p[1]] .. ">" end
Promise.__name = "luasync.Promise"

local M = Promise
local WAKE = function() end  -- reaction marker: resume the task in _a
local settle

-- Rejections with no handler when the queue drains are reported (unhandled_hook).
local unhandled, nunhandled = {}, 0

-- Created with every hot slot present (false = empty), so LuaJIT sizes the
-- array once.
local function new()
  return setmetatable({ PENDING, false, false, false, 0, false }, Promise)
end
M._new = new

-- A pending promise whose first cancel hook is fn (p:_onCancel(fn) on a fresh
-- promise). Made with the named slot in place: adding it later gives the
-- array-shaped table a hash part, a resize for every HTTP request.
function M._new_cancellable(fn)
  return setmetatable({ PENDING, false, false, false, 0, false, _cancel_hook = fn }, Promise)
end

local function add_reaction(p, f, a)
  p[5] = p[5] + 1
  local st = p[1]
  if st ~= PENDING then
    if f == WAKE then
      wake(a, p, st == FULFILLED, p[2])
    else
      defer(f, a, st, p[2])
    end
    return
  end
  if not p[3] then
    p[3], p[4] = f, a
  else
    local more = p._more
    if more == nil then more = {}; p._more = more end
    more[#more + 1] = f
    more[#more + 1] = a
  end
end
M._add_reaction = add_reaction

local function fire(f, a, st, v, p)
  if f == WAKE then wake(a, p, st == FULFILLED, v) else defer(f, a, st, v) end
end

settle = function(p, st, v, trace)
  if p[1] ~= PENDING then return false end
  p[1] = st
  p[2] = v
  if trace then p._trace = trace end
  local f = p[3]
  if f then
    p[3] = false
    fire(f, p[4], st, v, p)
    p[4] = false
    local more = p._more
    if more then
      p._more = nil
      for i = 1, #more, 2 do fire(more[i], more[i + 1], st, v, p) end
    end
  elseif st == REJECTED and p[5] == 0 and not p._handled then
    nunhandled = nunhandled + 1
    unhandled[nunhandled] = p
  end
  if p._cancel_hook then  -- (assigning nil to a field that is not there would add it)
    p._cancel_hook = nil
    if p._cancel_hooks then p._cancel_hooks = nil end
  end
  return true
end
M._settle = settle

local function capture_trace()
  return errors.capture(3)
end

--- Internal: fulfil or reject a pending promise (no-ops once settled).
function M._fulfill(p, v) return settle(p, FULFILLED, v) end
function M._reject(p, e, trace) return settle(p, REJECTED, e, trace) end

-- Error handler for user code: keeps the error value, captures the stack.
local function on_error(e)
  return { e, errors.capture(2) }
end
M._on_error = on_error

local resolve

local function adopt(p, st, v)
  settle(p, st, v)
end

local function get_then(x) return x["then"] end

-- callable(f) -> bool: a function, or a table whose metatable has __call
local function callable(f)
  local tf = type(f)
  if tf == "function" then return true end
  if tf ~= "table" then return false end
  local mt = getmetatable(f)
  return mt ~= nil and mt.__call ~= nil
end
M._callable = callable

-- A+ 2.3.3.3: call x.then(x, resolvePromise, rejectPromise); the first call wins.
-- Kept out of resolve(): closures there would stop LuaJIT compiling the hot path.
local function adopt_thenable(p, x, then_)
  local called = false
  local function res(y)
    if called then return end
    called = true
    resolve(p, y)
  end
  local function rej(r)
    if called then return end
    called = true
    settle(p, REJECTED, r)
  end
  -- Like JS, the thenable's then runs in a job of its own.
  defer(function()
    local ok2, err = xpcall(then_, on_error, x, res, rej)
    if not ok2 and not called then
      called = true
      settle(p, REJECTED, err[1], err[2])
    end
  end)
end

-- Promise Resolution Procedure (A+ 2.3)
resolve = function(p, x)
  if p[1] ~= PENDING then return end
  if type(x) == "table" then
    if rawequal(x, p) then
      return settle(p, REJECTED, errors.new("type", "TypeError: a promise cannot be resolved with itself"))
    end
    local mt = getmetatable(x)
    if mt == Promise then
      local st = x[1]
      if st == PENDING then
        add_reaction(x, adopt, p)
        x._handled = true
      else
        x._handled = true
        settle(p, st, x[2], x._trace)
      end
      return
    end
    local ok, then_ = pcall(get_then, x)
    if not ok then return settle(p, REJECTED, then_) end
    if callable(then_) then return adopt_thenable(p, x, then_) end
  end
  settle(p, FULFILLED, x)
end
M._resolve = resolve

-- Reaction of a promise made by andThen/catch: run the handler, resolve the child.
local function react(child, st, v)
  local h
  if st == FULFILLED then h = child[7] else h = child[8] end
  child[7], child[8] = false, false
  if child[1] ~= PENDING then return end
  if not h then
    return settle(child, st, v, nil)
  end
  local ok, r = xpcall(h, on_error, v)
  if ok then
    return resolve(child, r)
  end
  return settle(child, REJECTED, r[1], r[2])
end

--- p:andThen(onFulfilled?, onRejected?) -> Promise
function Promise:andThen(onF, onR)
  if getmetatable(self) ~= Promise then error("andThen: expected a Promise (use p:andThen)", 2) end
  local child = setmetatable({ PENDING, false, false, false, 0, self, false, false }, Promise)
  if type(onF) == "function" or callable(onF) then
    child[7] = onF
  end
  if type(onR) == "function" or callable(onR) then
    child[8] = onR
  end
  add_reaction(self, react, child)
  return child
end
Promise.next = Promise.andThen
Promise["then"] = Promise.andThen

function Promise:catch(onR)
  return self:andThen(nil, onR)
end

--- p:finally(fn) -> Promise: fn() runs either way; the outcome passes through
-- (unless fn raises or returns a promise that rejects).
function Promise:finally(fn)
  return self:andThen(function(v)
    local r = fn()
    if getmetatable(r) == Promise then
      r = M.await(r)
    end
    return v
  end, function(e)
    local r = fn()
    if getmetatable(r) == Promise then
      r = M.await(r)
    end
    error(e, 0)
  end)
end

function Promise:status() return STATUS[self[1]] end

--- p:cancel(reason?) -> bool
function Promise:cancel(reason)
  if self[1] ~= PENDING then return false end
  local err = errors.cancelled(reason)
  self._handled = true
  self._cancelled = true
  local hook, hooks = self._cancel_hook, self._cancel_hooks
  if hook then self._cancel_hook = nil end
  if hooks then self._cancel_hooks = nil end
  settle(self, REJECTED, err)
  local link, parent = self[6], nil
  if link then
    if getmetatable(link) == Promise then
      parent = link
    else  -- the task computing this promise
      self[6] = false
      sched.cancel(link, err)
    end
  end
  if hook then
    hook(err)
    if hooks then
      for i = 1, #hooks do hooks[i](err) end
    end
  end
  if parent and parent[1] == PENDING and parent[5] <= 1 then
    parent:cancel(reason)
  end
  return true
end

--- Internal: p:_onCancel(fn) — fn(err) runs if p is cancelled while pending.
-- The first hook is kept in a field of its own: one hook per promise is the
-- common case (an HTTP transfer, a timer), and a list table per request was
-- about 200 bytes.
function Promise:_onCancel(fn)
  if self._cancel_hook == nil then
    self._cancel_hook = fn
    return self
  end
  local hooks = self._cancel_hooks
  if hooks == nil then hooks = {}; self._cancel_hooks = hooks end
  hooks[#hooks + 1] = fn
  return self
end

---------------------------------------------------------------------------
-- await

-- A task cancelled while awaiting p: if the task was p's only waiter, nothing
-- else wants p any more, so p is cancelled too (an HTTP transfer is aborted,
-- a timer cleared), as a derived promise cancels its parent.
sched.register_unpark(Promise, function(p, _, err)
  if p[1] == PENDING and p[5] <= 1 then
    p:cancel(type(err) == "table" and err.message or err)
  end
end)

-- The stack where an await raised a rejection, for tracebacks that cross awaits.
local last_raise = { co = nil, reason = nil, frames = nil }
M._last_raise = last_raise

local function raise(p, v)
  local frames = p._trace
  last_raise.co = running()
  last_raise.reason = v
  last_raise.frames = frames
  error(v, 0)
end

local function await(p)
  if type(p) ~= "table" then return p end
  local mt = getmetatable(p)
  if mt ~= Promise then
    local ok, t = pcall(get_then, p)
    if not ok or not callable(t) then return p end
    local q = new()
    resolve(q, p)
    p = q
  end
  local st = p[1]
  if st == FULFILLED then return p[2] end
  if st == REJECTED then
    p._handled = true
    return raise(p, p[2])
  end
  local co = running()
  if co == nil then error("await called outside an async task", 2) end
  add_reaction(p, WAKE, co)
  local ok, v = park(p)
  if ok then return v end
  if p[1] == REJECTED and rawequal(p[2], v) then return raise(p, v) end
  error(v, 0)
end
M.await = await
function Promise:await() return await(self) end

---------------------------------------------------------------------------
-- Constructors


--- Promise.new(function(resolve, reject) ... end)
function M.new(executor)
  if not callable(executor) then error("Promise.new: expected a function", 2) end
  local p = new()
  local done = false
  local function res(v)
    if done then return end
    done = true
    resolve(p, v)
  end
  local function rej(e)
    if done then return end
    done = true
    settle(p, REJECTED, e, errors.capture(2))
  end
  local ok, err = xpcall(executor, on_error, res, rej)
  if not ok and not done then
    done = true
    settle(p, REJECTED, err[1], err[2])
  end
  return p
end

function M.resolve(v)
  if getmetatable(v) == Promise then return v end
  local p = new()
  resolve(p, v)
  return p
end

function M.reject(e)
  local p = new()
  settle(p, REJECTED, e, errors.capture(2))
  return p
end

function M.is(v) return getmetatable(v) == Promise end

---------------------------------------------------------------------------
-- Unhandled rejections

--- Internal: the promises rejected with no handler since the last call.
function M._take_unhandled()
  if nunhandled == 0 then return nil end
  local list = {}
  for i = 1, nunhandled do
    local p = unhandled[i]
    unhandled[i] = nil
    if p[5] == 0 and not p._handled then list[#list + 1] = p end
  end
  nunhandled = 0
  if #list == 0 then return nil end
  return list
end

M.PENDING, M.FULFILLED, M.REJECTED = PENDING, FULFILLED, REJECTED

return M
