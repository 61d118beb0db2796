-- Promise combinators and timing helpers: all, allSettled, any, race, delay,
-- map, p:timeout. Added to the Promise table when luasync.promise loads them.
local Promise = require("luasync.promise")
local sched = require("luasync.sched")
local errors = require("luasync.errors")

local new, settle, add_reaction, resolve = Promise._new, Promise._settle, Promise._add_reaction, Promise._resolve
local FULFILLED, REJECTED, PENDING = Promise.FULFILLED, Promise.REJECTED, Promise.PENDING
local getmetatable = getmetatable

local function count(t, name)
  if type(t) ~= "table" then error("Promise." .. name .. ": expected a table of promises", 3) end
  return t.n or #t
end

-- Each entry as a promise: promises as they are, thenables assimilated, others resolved.
local function as_promise(v)
  if getmetatable(v) == Promise then return v end
  local p = new()
  resolve(p, v)
  return p
end

local function each(t, n, fn)
  for i = 1, n do
    local p = as_promise(t[i])
    add_reaction(p, fn, i)
  end
end

function Promise.all(t)
  local n = count(t, "all")
  local out = new()
  local results, left = {}, n
  if n == 0 then settle(out, FULFILLED, results); return out end
  each(t, n, function(i, st, v)
    if out[1] ~= PENDING then return end
    if st == REJECTED then return settle(out, REJECTED, v) end
    results[i] = v
    left = left - 1
    if left == 0 then settle(out, FULFILLED, results) end
  end)
  return out
end

function Promise.allSettled(t)
  local n = count(t, "allSettled")
  local out = new()
  local results, left = {}, n
  if n == 0 then settle(out, FULFILLED, results); return out end
  each(t, n, function(i, st, v)
    if st == FULFILLED then
      results[i] = { status = "fulfilled", value = v }
    else
      results[i] = { status = "rejected", reason = v }
    end
    left = left - 1
    if left == 0 then settle(out, FULFILLED, results) end
  end)
  return out
end

local function aggregate(errs)
  return errors.new("aggregate", "all promises were rejected", { errors = errs })
end

function Promise.any(t)
  local n = count(t, "any")
  local out = new()
  local errs, left = {}, n
  if n == 0 then settle(out, REJECTED, aggregate(errs)); return out end
  each(t, n, function(i, st, v)
    if out[1] ~= PENDING then return end
    if st == FULFILLED then return settle(out, FULFILLED, v) end
    errs[i] = v
    left = left - 1
    if left == 0 then settle(out, REJECTED, aggregate(errs)) end
  end)
  return out
end

function Promise.race(t)
  local n = count(t, "race")
  local out = new()
  each(t, n, function(_, st, v)
    settle(out, st, v)
  end)
  return out
end

--- Promise.delay(seconds, value?) -> Promise fulfilled with value after the delay
function Promise.delay(seconds, value)
  local p = new()
  local e = sched.add_timer(tonumber(seconds) or 0, function() settle(p, FULFILLED, value) end)
  p:_onCancel(function() sched.cancel_timer(e) end)
  return p
end

--- p:timeout(seconds) -> Promise that rejects with {kind="timeout"} (and cancels p) if p is late
function Promise:timeout(seconds)
  local src = self
  local out = new()
  local e = sched.add_timer(tonumber(seconds) or 0, function()
    if out[1] ~= PENDING then return end
    settle(out, REJECTED, errors.timeout(string.format("timed out after %gs", seconds)))
    src:cancel("timed out")
  end)
  add_reaction(src, function(_, st, v)
    sched.cancel_timer(e)
    settle(out, st, v, src._trace)
  end, nil)
  out:_onCancel(function(err)
    sched.cancel_timer(e)
    src:cancel(err.message)
  end)
  return out
end

--- Promise.map(items, fn, {concurrency=n}) -> Promise of the results, in order
function Promise.map(items, fn, opts)
  if type(items) ~= "table" then error("Promise.map: expected a table of items", 2) end
  local spawn = require("luasync.async").spawn
  local n = items.n or #items
  local limit = (opts and opts.concurrency) or 8
  if limit < 1 then limit = 1 end
  local out = new()
  local results = {}
  local inflight = {}
  local next_i, done = 1, 0
  if n == 0 then settle(out, FULFILLED, results); return out end
  local launch
  local function on_done(i, st, v)
    inflight[i] = nil
    if out[1] ~= PENDING then return end
    if st == REJECTED then
      settle(out, REJECTED, v)
      for _, p in pairs(inflight) do p:cancel("Promise.map: another item failed") end
      return
    end
    results[i] = v
    done = done + 1
    if done == n then return settle(out, FULFILLED, results) end
    launch()
  end
  launch = function()
    while next_i <= n and out[1] == PENDING do
      local count_inflight = 0
      for _ in pairs(inflight) do count_inflight = count_inflight + 1 end
      if count_inflight >= limit then return end
      local i = next_i
      next_i = i + 1
      local p = spawn(fn, items[i], i)
      inflight[i] = p
      add_reaction(p, on_done, i)
    end
  end
  out:_onCancel(function(err)
    for _, p in pairs(inflight) do p:cancel(err.message) end
  end)
  launch()
  return out
end

return Promise
