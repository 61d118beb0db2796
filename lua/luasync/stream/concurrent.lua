-- luasync.stream.concurrent: the stream stages that use tasks of their own:
-- s:mapAsync, Stream.merge and Stream.pipeline. Installed into the Stream
-- module by stream.lua (this file returns an installer).
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local async = require("luasync.async")

local spawn, await = async.spawn, Promise.await
local park, wake, current = sched.park, sched.wake, sched.current
local add_reaction, PENDING, REJECTED = Promise._add_reaction, Promise.PENDING, Promise.REJECTED
local type, error, pcall, getmetatable = type, error, pcall, getmetatable

---------------------------------------------------------------------------
-- A wait list: tasks park on it until notify() wakes them all; each waiter
-- re-checks its condition in a loop. Cancelling a waiting task unlinks it.

local function unlink(op)
  local list = op.list
  for i = 1, #list do
    if list[i] == op then
      table.remove(list, i)
      return
    end
  end
end

local function wait(list, what)
  local rec = current()
  if rec == nil then error("await called outside an async task", 3) end
  local op = { what = what, cancel = unlink, list = list, rec = rec }
  list[#list + 1] = op
  local ok, err = park(op)
  if not ok then error(err, 0) end
end

local function notify(list)
  local n = #list
  if n == 0 then return end
  for i = 1, n do
    local op = list[i]
    list[i] = nil
    wake(op.rec, op, true)
  end
end

return function(M, Stream)
  local derive = M._derive

  local function check_opts(opts, name)
    if opts ~= nil and type(opts) ~= "table" then error("Stream." .. name .. ": options must be a table", 3) end
    opts = opts or {}
    local c = opts.concurrency
    if c == nil then c = 4 end
    c = tonumber(c)
    if c == nil or c < 1 or c % 1 ~= 0 then error("Stream." .. name .. ": concurrency must be an integer >= 1", 3) end
    return c, opts.ordered ~= false
  end

  -- Cancel the tasks still running; their failures are already handled.
  local function cancel_all(set)
    for p in pairs(set) do
      set[p] = nil
      p:cancel("stream closed")
    end
  end

  -- Ordered: a window of at most `limit` items, each a task, consumed in input
  -- order. A task counts against the window until its result is taken, so no
  -- more than `limit` calls are ever in flight. A failure of any task in the
  -- window is raised at once (not when its turn comes).
  local function ordered_pull(up, fn, limit, shared)
    local inflight, waiters = shared.inflight, shared.waiters
    local q, head, tail = {}, 1, 0
    local up_done = false
    local failed = nil   -- the first task promise that rejected
    local function on_settle(p, st)
      if not inflight[p] then return end  -- cancelled by close
      inflight[p] = nil
      if st == REJECTED and not failed then failed = p end
      notify(waiters)
    end
    local function fail(p)
      for i = head, tail do q[i] = nil end
      head = tail + 1
      cancel_all(inflight)
      await(p)  -- raises the rejection with the stack where it happened
    end
    return function()
      while true do
        if shared.closed then return nil end
        while not up_done and tail - head + 1 < limit do
          local v = up._pull()
          if v == nil then
            up_done = true
          else
            local p = spawn(fn, v)
            tail = tail + 1
            q[tail] = p
            local st = p[1]
            if st == PENDING then
              inflight[p] = true
              add_reaction(p, on_settle, p)  -- also marks a rejection as handled
            elseif st == REJECTED then
              failed = p  -- raised now, before it could be reported as unhandled
              break
            end
          end
        end
        if failed then fail(failed) end
        if head > tail then return nil end
        local p = q[head]
        local st = p[1]
        if st == PENDING then
          wait(waiters, "stream mapAsync")
        elseif st == REJECTED then
          fail(p)
        else
          q[head] = nil
          head = head + 1
          local r = p[2]
          if r ~= nil then return r end
        end
      end
    end
  end

  -- Unordered: results are emitted as tasks complete; tasks running plus
  -- results not yet taken never exceed `limit`.
  local function unordered_pull(up, fn, limit, shared)
    local inflight, waiters = shared.inflight, shared.waiters
    local results, rhead, rtail = {}, 1, 0
    local running = 0
    local up_done = false
    local failed = nil   -- the first task promise that rejected
    local function on_settle(p, st, v)
      if not inflight[p] then return end  -- cancelled by close
      inflight[p] = nil
      running = running - 1
      if st == REJECTED then
        if not failed then failed = p end
      elseif v ~= nil then
        rtail = rtail + 1
        results[rtail] = v
      end
      notify(waiters)
    end
    return function()
      while true do
        if shared.closed then return nil end
        if failed then
          cancel_all(inflight)
          await(failed)
        end
        while not up_done and running + (rtail - rhead + 1) < limit do
          local v = up._pull()
          if v == nil then
            up_done = true
          else
            local p = spawn(fn, v)
            local st = p[1]
            if st == PENDING then
              running = running + 1
              inflight[p] = true
              add_reaction(p, on_settle, p)
            elseif st == REJECTED then
              failed = failed or p
              break
            elseif p[2] ~= nil then
              rtail = rtail + 1
              results[rtail] = p[2]
            end
          end
        end
        if not failed then
          if rhead <= rtail then
            local r = results[rhead]
            results[rhead] = nil
            rhead = rhead + 1
            return r
          end
          if running == 0 and up_done then return nil end
          wait(waiters, "stream mapAsync")
        end
      end
    end
  end

  --- s:mapAsync(fn, {concurrency=4, ordered=true}) -> Stream: fn runs as a task per value
  function Stream:mapAsync(fn, opts)
    if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call) then
      error("Stream.mapAsync: expected a function", 2)
    end
    local limit, ordered = check_opts(opts, "mapAsync")
    -- Shared with the pull: closing cancels the tasks and wakes a reader
    -- waiting for them (the pull then returns nil).
    local shared = { inflight = {}, waiters = {}, closed = false }
    local pull
    if ordered then pull = ordered_pull(self, fn, limit, shared)
    else pull = unordered_pull(self, fn, limit, shared) end
    return derive(self, pull, function()
      shared.closed = true
      cancel_all(shared.inflight)
      notify(shared.waiters)
    end)
  end

  --- Stream.merge(s1, s2, ...) -> Stream of the values of all, in the order they arrive.
  -- Each source is pulled by a task of its own, one value ahead at most.
  function M.merge(...)
    local n = select("#", ...)
    local sources = {}
    for i = 1, n do sources[i] = M.from((select(i, ...))) end
    local queue, qhead, qtail = {}, 1, 0   -- values that arrived, with their source index
    local from = {}
    local slot_free = {}                   -- per source: its value was taken
    local pumps = {}
    local active = n
    local failed = nil
    local started = false
    local closed = false
    local waiters = {}

    local function pump(i)
      local src = sources[i]
      local free = slot_free[i]
      local ok, err = pcall(function()
        while true do
          local v = src._pull()
          if v == nil then break end
          qtail = qtail + 1
          queue[qtail], from[qtail] = v, i
          free.taken = false
          notify(waiters)
          while not free.taken do wait(free, "stream merge (value not taken yet)") end
        end
      end)
      src:close()
      active = active - 1
      if not ok and not closed and not failed then failed = { err } end
      notify(waiters)
    end

    local function start()
      started = true
      for i = 1, n do
        slot_free[i] = {}
        pumps[i] = spawn(pump, i)
      end
    end

    local function close_all()
      closed = true
      for i = 1, #pumps do
        if pumps[i]:status() == "pending" then pumps[i]:cancel("stream closed") end
      end
      for i = 1, n do sources[i]:close() end
      notify(waiters)
    end

    local s = M.new(function()
      if not started then start() end
      while true do
        if closed then return nil end
        if failed then
          close_all()
          error(failed[1], 0)
        end
        if qhead <= qtail then
          local v, i = queue[qhead], from[qhead]
          queue[qhead], from[qhead] = nil, nil
          qhead = qhead + 1
          local free = slot_free[i]
          free.taken = true
          notify(free)
          return v
        end
        if active == 0 then return nil end
        wait(waiters, "stream merge")
      end
    end, close_all)
    return s
  end

  --- Stream.pipeline(source, { {name=, processor=fn, parallel=n}, ... }) -> Stream
  -- Each stage is a mapAsync with concurrency `parallel` (default 1) that keeps input order.
  function M.pipeline(source, stages)
    if type(stages) ~= "table" then error("Stream.pipeline: expected a list of stages", 2) end
    local s = M.from(source)
    for i = 1, #stages do
      local st = stages[i]
      local fn = type(st) == "table" and st.processor or st
      if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call) then
        error("Stream.pipeline: stage " .. i .. " has no processor function", 2)
      end
      local par = type(st) == "table" and st.parallel or 1
      s = s:mapAsync(fn, { concurrency = par, ordered = true })
      s._name = type(st) == "table" and st.name or nil
    end
    return s
  end
end
