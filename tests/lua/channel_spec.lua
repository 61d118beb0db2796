-- Channels (API.md section 4): Go semantics, select, timeouts, cancellation.
-- Run with `luasync test tests/lua/channel_spec.lua`.

-- Spawn fn and let it run until it blocks; returns its promise.
local function bg(fn, ...)
  return spawn(fn, ...)
end

-- Let every queued task run (one loop turn).
local function settle() sleep(0) end

-- All results of a call as a table, nil shown as "nil" (so assert.same sees every position).
local function L(...)
  local t = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if v == nil then v = "nil" end
    t[i] = v
  end
  return t
end

describe("Channel basics", function()
  it("new, len, cap, isClosed", function()
    local ch = Channel.new(3)
    assert.equals(0, ch:len())
    assert.equals(3, ch:cap())
    assert.equals(false, ch:isClosed())
    ch:send("a")
    ch:send("b")
    assert.equals(2, ch:len())
    ch:close()
    assert.equals(true, ch:isClosed())
    assert.equals(2, ch:len())
    assert.equals(0, Channel.new():cap())
    assert.equals(0, Channel.new(0):cap())
  end)

  it("rejects a bad capacity", function()
    assert.has_error(function() Channel.new(-1) end, "capacity must be a non-negative integer")
    assert.has_error(function() Channel.new(1.5) end, "capacity must be a non-negative integer")
    assert.has_error(function() Channel.new("x") end, "capacity must be a non-negative integer")
  end)

  it("unbuffered send waits for a receiver", function()
    local ch = Channel.new()
    local log = {}
    bg(function()
      log[#log + 1] = "send start"
      ch:send(42)
      log[#log + 1] = "send done"
    end)
    settle()
    assert.same({ "send start" }, log)
    assert.equals(0, ch:len())
    local v, ok = ch:receive()
    assert.equals(42, v)
    assert.equals(true, ok)
    settle()
    assert.same({ "send start", "send done" }, log)
  end)

  it("a send to a waiting receiver does not suspend the sender", function()
    local ch = Channel.new()
    local got
    bg(function() got = ch:receive() end)
    local order = {}
    bg(function() sleep(0); order[#order + 1] = "other task" end)
    ch:send("x")                       -- hands over at once
    order[#order + 1] = "sender"
    assert.is_nil(got)                 -- the receiver runs later, from the ready queue
    settle()
    assert.equals("x", got)
    assert.same({ "sender", "other task" }, order)
  end)

  it("buffered send waits only when full", function()
    local ch = Channel.new(2)
    local sent = 0
    bg(function()
      for i = 1, 3 do ch:send(i); sent = i end
    end)
    assert.equals(2, sent)             -- the third send is blocked
    assert.equals(2, ch:len())
    assert.equals(1, ch:receive())     -- frees a slot: the blocked value moves in
    assert.equals(2, ch:len())
    settle()
    assert.equals(3, sent)
    assert.equals(2, ch:receive())
    assert.equals(3, ch:receive())
    assert.equals(0, ch:len())
  end)

  it("keeps FIFO order through the ring buffer", function()
    local ch = Channel.new(4)
    local out = {}
    for round = 1, 5 do
      for i = 1, 3 do ch:send(round * 10 + i) end
      for _ = 1, 3 do out[#out + 1] = ch:receive() end
    end
    assert.same({ 11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43, 51, 52, 53 }, out)
  end)

  it("serves waiting senders in arrival order", function()
    for _, cap in ipairs({ 0, 1 }) do
      local ch = Channel.new(cap)
      if cap == 1 then ch:send("first") end
      for _, name in ipairs({ "a", "b", "c", "d" }) do
        bg(function() ch:send(name) end)
      end
      local got = {}
      for _ = 1, (cap == 1 and 5 or 4) do got[#got + 1] = ch:receive() end
      if cap == 1 then
        assert.same({ "first", "a", "b", "c", "d" }, got)
      else
        assert.same({ "a", "b", "c", "d" }, got)
      end
    end
  end)

  it("serves waiting receivers in arrival order", function()
    local ch = Channel.new()
    local got = {}
    for id = 1, 4 do
      bg(function() got[id] = ch:receive() end)
    end
    for i = 1, 4 do ch:send(i * 100) end
    settle()
    assert.same({ 100, 200, 300, 400 }, got)
  end)

  it("nil can be sent and received", function()
    local ch = Channel.new()
    bg(function() ch:send(nil) end)
    local v, ok = ch:receive()
    assert.is_nil(v)
    assert.equals(true, ok)
    local b = Channel.new(2)
    b:send(nil)
    b:send(false)
    assert.equals(2, b:len())
    assert.same({ "nil", true }, L(b:receive()))
    assert.same({ false, true }, L(b:receive()))
  end)

  it("trySend and tryReceive never wait", function()
    local ch = Channel.new(1)
    assert.equals(true, ch:trySend("x"))
    assert.equals(false, ch:trySend("y"))
    assert.same({ "x", true, true }, L(ch:tryReceive()))
    assert.same({ "nil", false, false }, L(ch:tryReceive()))
    local u = Channel.new()
    assert.equals(false, u:trySend(1))       -- nobody receiving
    bg(function() u:send("from task") end)
    assert.same({ "from task", true, true }, L(u:tryReceive()))
    local got
    bg(function() got = u:receive() end)
    assert.equals(true, u:trySend("to task"))
    settle()
    assert.equals("to task", got)
    u:close()
    assert.same({ "nil", false, true }, L(u:tryReceive()))
    assert.has_error(function() u:trySend(1) end, "send on closed channel")
  end)

  it("works inside a user coroutine inside a task", function()
    local ch = Channel.new()
    bg(function() sleep(0.001); ch:send("deep") end)
    local co = coroutine.wrap(function() return ch:receive() end)
    assert.equals("deep", co())
  end)
end)

describe("Channel close", function()
  it("delivers buffered values first, then nil, false", function()
    local ch = Channel.new(3)
    ch:send(1)
    ch:send(2)
    ch:close()
    assert.same({ 1, true }, L(ch:receive()))
    assert.same({ 2, true }, L(ch:receive()))
    assert.same({ "nil", false }, L(ch:receive()))
    assert.same({ "nil", false }, L(ch:receive()))
  end)

  it("wakes every waiting receiver", function()
    local ch = Channel.new()
    local results = {}
    local ps = {}
    for id = 1, 3 do
      ps[id] = bg(function() results[id] = L(ch:receive()) end)
    end
    ch:close()
    await(Promise.all(ps))
    assert.same({ { "nil", false }, { "nil", false }, { "nil", false } }, results)
  end)

  it("raises in a waiting sender, and in a new send", function()
    local ch = Channel.new()
    local p = bg(function() ch:send("never") end)
    ch:close()
    local ok, err = pcall(await, p)
    assert.equals(false, ok)
    assert.truthy(tostring(err):find("send on closed channel", 1, true))
    assert.truthy(tostring(err):match("channel_spec%.lua:%d+: send on closed channel"))
    assert.has_error(function() ch:send(1) end, "send on closed channel")
    -- the closed channel gives nothing to receivers: the blocked value was not delivered
    assert.same({ "nil", false }, L(ch:receive()))
  end)

  it("closing twice raises", function()
    local ch = Channel.new(1)
    ch:close()
    assert.has_error(function() ch:close() end, "close of closed channel")
  end)

  it("iter ends when closed and drained", function()
    local ch = Channel.new(2)
    bg(function()
      for i = 1, 5 do ch:send(i) end
      ch:close()
    end)
    local got = {}
    for v in ch:iter() do got[#got + 1] = v end
    assert.same({ 1, 2, 3, 4, 5 }, got)
  end)

  it("iter ends at a nil value", function()
    local ch = Channel.new(4)
    ch:send(1)
    ch:send(nil)
    ch:send(3)
    local got = {}
    for v in ch:iter() do got[#got + 1] = v end
    assert.same({ 1 }, got)
    assert.same({ 3, true }, L(ch:receive()))
  end)
end)

describe("Channel outside a task", function()
  it("raises only when it would have to wait", function()
    local ch, u = Channel.new(1), Channel.new()
    local results
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function()
      results = {
        { pcall(ch.send, ch, "fits") },      -- buffered send with room: fine
        { pcall(ch.send, ch, "full") },      -- would wait
        { pcall(ch.receive, ch) },           -- a value is there: fine
        { pcall(ch.receive, ch) },           -- would wait
        { pcall(u.send, u, 1) },             -- unbuffered, nobody receiving
        { pcall(Channel.select, { { u, "receive" } }) },
      }
    end
    proxy = nil
    collectgarbage()
    collectgarbage()
    local E = "await called outside an async task"
    assert.same({ { true }, { false, E }, { true, "fits", true }, { false, E }, { false, E }, { false, E } },
      results)
    -- nothing was left queued on the channels
    assert.equals(false, u:trySend(1))
    assert.equals(true, ch:trySend(2))
  end)
end)

describe("Channel cancellation", function()
  it("a cancelled receive leaves the channel consistent", function()
    local ch = Channel.new()
    local p = bg(function() return ch:receive() end)
    local q = bg(function() return ch:receive() end)
    p:cancel("stop")
    local ok, err = pcall(await, p)
    assert.equals(false, ok)
    assert.equals("cancelled", err.kind)
    ch:send("for q")                   -- goes to the remaining receiver
    assert.equals("for q", await(q))
    assert.equals(false, ch:trySend("nobody"))
  end)

  it("a cancelled send does not deliver its value", function()
    local ch = Channel.new()
    local p = bg(function() ch:send("lost") end)
    local q = bg(function() ch:send("kept") end)
    p:cancel()
    assert.equals(false, (pcall(await, p)))
    assert.same({ "kept", true }, L(ch:receive()))
    assert.same({ "nil", false, false }, L(ch:tryReceive()))
    await(q)
  end)

  it("a cancelled select unlinks all its cases", function()
    local a, b = Channel.new(), Channel.new()
    local p = bg(function() return Channel.select({ { a, "receive" }, { b, "send", "x" } }) end)
    p:cancel()
    assert.equals(false, (pcall(await, p)))
    assert.equals(false, a:trySend(1))
    assert.same({ "nil", false, false }, L(b:tryReceive()))
  end)

  it("a task cancelled while running does not strand a waiter when it blocks", function()
    local ch = Channel.new()
    local p
    p = bg(function()
      sleep(0)
      p:cancel()                        -- the cancel is raised at the next suspension
      return ch:receive()
    end)
    assert.equals(false, (pcall(await, p)))
    settle()
    assert.equals(false, ch:trySend(1))
    assert.equals(false, ch.rh)         -- nothing left in the receive queue
  end)
end)

describe("Channel.select", function()
  it("takes a ready receive case", function()
    local a, b = Channel.new(1), Channel.new(1)
    b:send("bee")
    assert.same({ 2, "bee", true }, L(Channel.select({ { a, "receive" }, { b, "receive" } })))
  end)

  it("takes a ready send case", function()
    local a, b = Channel.new(), Channel.new(1)
    local i, v, ok = Channel.select({ { a, "send", 1 }, { b, "send", 2 } })
    assert.equals(2, i)
    assert.is_nil(v)
    assert.equals(true, ok)
    assert.equals(2, b:receive())
  end)

  it("takes default only when no case is ready", function()
    local a = Channel.new(1)
    assert.equals(2, (Channel.select({ { a, "receive" }, { nil, "default" } })))
    a:send(5)
    assert.same({ 1, 5, true }, L(Channel.select({ { a, "receive" }, { nil, "default" } })))
  end)

  it("reports a closed channel as ok == false", function()
    local a = Channel.new()
    a:close()
    assert.same({ 1, "nil", false }, L(Channel.select({ { a, "receive" } })))
  end)

  it("a send case on a closed channel raises", function()
    local a = Channel.new()
    a:close()
    assert.has_error(function() Channel.select({ { a, "send", 1 } }) end, "send on closed channel")
  end)

  it("suspends until a case is ready", function()
    local a, b = Channel.new(), Channel.new()
    local p = bg(function() return L(Channel.select({ { a, "receive" }, { b, "receive" } })) end)
    settle()
    assert.equals("pending", p:status())
    b:send("late")
    assert.same({ 2, "late", true }, await(p))
    assert.equals(false, a:trySend(1))   -- the other case was unlinked
  end)

  it("a parked send case delivers to a receiver", function()
    local a, b = Channel.new(), Channel.new()
    local p = bg(function() return L(Channel.select({ { a, "receive" }, { b, "send", "out" } })) end)
    assert.same({ "out", true }, L(b:receive()))
    assert.same({ 2, "nil", true }, await(p))
    assert.equals(false, a:trySend(1))
  end)

  it("wakes a parked select when its channel closes", function()
    local a = Channel.new()
    local p = bg(function() return L(Channel.select({ { a, "receive" } })) end)
    a:close()
    assert.same({ 1, "nil", false }, await(p))
    local b = Channel.new()
    local q = bg(function() return Channel.select({ { b, "send", 1 } }) end)
    b:close()
    local ok, err = pcall(await, q)
    assert.equals(false, ok)
    assert.truthy(tostring(err):find("send on closed channel", 1, true))
  end)

  it("a nil channel is never ready", function()
    local a = Channel.new(1)
    a:send(1)
    assert.same({ 2, 1, true }, L(Channel.select({ { nil, "receive" }, { a, "receive" } })))
    assert.equals(2, (Channel.select({ { nil, "send", 1 }, { nil, "default" } })))
  end)

  it("rejects malformed cases", function()
    assert.has_error(function() Channel.select({ { Channel.new(), "peek" } }) end, "unknown operation peek")
    assert.has_error(function() Channel.select({ { {}, "receive" } }) end, "case 1 needs a channel")
    assert.has_error(function() Channel.select(5) end, "expected a table of cases")
  end)

  it("picks uniformly among ready cases", function()
    local chans = { Channel.new(1), Channel.new(1), Channel.new(1) }
    local cases = {}
    for i, ch in ipairs(chans) do cases[i] = { ch, "receive" } end
    local counts = { 0, 0, 0 }
    local n = 6000
    for _ = 1, n do
      for _, ch in ipairs(chans) do
        if ch:len() == 0 then ch:send(true) end
      end
      local i = Channel.select(cases)
      counts[i] = counts[i] + 1
    end
    -- Pearson's chi-square with 2 degrees of freedom; P(X > 60) = e^-30, so a
    -- fair choice essentially never fails, while "always the first case" scores 12000.
    local expected = n / 3
    local chi2 = 0
    for i = 1, 3 do chi2 = chi2 + (counts[i] - expected) ^ 2 / expected end
    assert.truthy(chi2 < 60, "chi-square " .. chi2 .. " for counts " .. table.concat(counts, ","))
    for i = 1, 3 do assert.truthy(counts[i] > 1500, "case " .. i .. " chosen " .. counts[i] .. " times") end
  end)

  it("neither loses nor duplicates values when several selects wait on the same channels", function()
    local a, b = Channel.new(), Channel.new(3)
    local done = Channel.new()
    local seen, total = {}, 0
    local workers = {}
    for w = 1, 6 do
      workers[w] = bg(function()
        while true do
          local i, v, ok = Channel.select({ { a, "receive" }, { b, "receive" }, { done, "receive" } })
          if i == 3 then return end
          assert(ok, "closed unexpectedly")
          assert(not seen[v], "duplicate " .. tostring(v))
          seen[v] = w
          total = total + 1
          if v % 7 == 0 then sleep(0) end
        end
      end)
    end
    local producers = {}
    producers[1] = bg(function() for i = 1, 500 do a:send(i * 2) end end)
    producers[2] = bg(function() for i = 1, 500 do b:send(i * 2 + 1) end end)
    await(Promise.all(producers))
    done:close()
    await(Promise.all(workers))
    assert.equals(1000, total)
    for i = 1, 500 do
      assert.truthy(seen[i * 2], "missing " .. i * 2)
      assert.truthy(seen[i * 2 + 1], "missing " .. (i * 2 + 1))
    end
  end)

  it("a select loop with a timeout leaves no waiters behind", function()
    local quiet = Channel.new()
    local timeouts = 0
    for _ = 1, 50 do
      local i = Channel.select({ { quiet, "receive" }, { Channel.after(0), "receive" } })
      if i == 2 then timeouts = timeouts + 1 end
    end
    assert.equals(50, timeouts)
    assert.equals(false, quiet:trySend(1))   -- no stale receiver took it
    assert.equals(false, quiet.rh)           -- the receive queue is empty
  end)
end)

describe("Channel.after", function()
  it("delivers true once after the delay", function()
    local ch = Channel.after(0.02)
    assert.same({ "nil", false, false }, L(ch:tryReceive()))
    sleep(0.005)
    assert.same({ "nil", false, false }, L(ch:tryReceive()))
    local v, ok = ch:receive()
    assert.equals(true, v)
    assert.equals(true, ok)
    assert.same({ "nil", false, false }, L(ch:tryReceive()))
  end)

  it("times out a select", function()
    local never = Channel.new()
    local i, v = Channel.select({ { never, "receive" }, { Channel.after(0.01), "receive" } })
    assert.equals(2, i)
    assert.equals(true, v)
  end)

  it("loses the race to a value that comes first", function()
    local ch = Channel.new()
    local timer = Channel.after(0.05)
    bg(function() sleep(0.001); ch:send("first") end)
    local i, v = Channel.select({ { ch, "receive" }, { timer, "receive" } })
    assert.equals(1, i)
    assert.equals("first", v)
    timer:receive()                   -- let the timer fire before the test ends
  end)

  it("rejects a non-number", function()
    assert.has_error(function() Channel.after("soon") end, "expected a number of seconds")
  end)
end)

describe("Stream.from(channel)", function()
  it("ends at the close", function()
    if Stream == nil or Stream.from == nil then
      error("Stream is not available")
    end
    local ch = Channel.new(3)
    bg(function()
      for i = 1, 4 do ch:send(i) end
      ch:close()
    end)
    assert.same({ 1, 2, 3, 4 }, await(Stream.from(ch):collect()))
  end)
end)

describe("Channel.select with one channel in several cases", function()
  it("close wakes the select once and the waiters behind it", function()
    local ch = Channel.new()
    local p = bg(function() return L(Channel.select({ { ch, "receive" }, { ch, "receive" } })) end)
    local q = bg(function() return L(ch:receive()) end)
    ch:close()
    local r = await(p)
    assert.truthy(r[1] == 1 or r[1] == 2)
    assert.same({ "nil", false }, { r[2], r[3] })
    assert.same({ "nil", false }, await(q))
  end)

  it("a value reaches the waiter behind a stale select", function()
    local ch = Channel.new()
    local p
    p = bg(function()
      sleep(0)
      p:cancel()                      -- raised when the select parks: its nodes are stale
      return Channel.select({ { ch, "receive" }, { ch, "receive" } })
    end)
    assert.equals(false, (pcall(await, p)))
    local q = bg(function() return L(ch:receive()) end)
    ch:send("for q")
    assert.same({ "for q", true }, await(q))
    assert.equals(false, ch.rh)
  end)

  it("send and receive cases on the same channel", function()
    local ch = Channel.new()
    local p = bg(function() return L(Channel.select({ { ch, "send", "out" }, { ch, "receive" } })) end)
    assert.same({ "out", true }, L(ch:receive()))
    assert.same({ 1, "nil", true }, await(p))
    assert.equals(false, ch.rh)
    assert.equals(false, ch.sh)
  end)
end)

describe("Channel stress", function()
  it("every completed send is received exactly once, nothing else is", function()
    math.randomseed(12345)
    local random = math.random
    local chans = { Channel.new(), Channel.new(), Channel.new(1), Channel.new(3) }
    local function pick() return chans[random(#chans)] end
    local completed, received, raised = {}, {}, {}
    local next_value = 0
    local producers, consumers = {}, {}

    for p = 1, 12 do
      producers[p] = bg(function()
        for _ = 1, 150 do
          next_value = next_value + 1
          local v = next_value
          local how = random(4)
          local ok, err = pcall(function()
            if how == 1 then
              pick():send(v)
              completed[v] = true
            elseif how == 2 then
              if pick():trySend(v) then completed[v] = true end
            elseif how == 3 then
              local a, b = pick(), pick()
              Channel.select({ { a, "send", v }, { b, "send", v } })
              completed[v] = true
            else
              local i = Channel.select({ { pick(), "send", v }, { nil, "default" } })
              if i == 1 then completed[v] = true end
            end
          end)
          if not ok then raised[v] = err; error(err, 0) end
          if random(5) == 1 then sleep(0) end
        end
      end)
    end

    -- Consumers 1 and 2 only wait in a select over every channel, so a blocked
    -- sender anywhere always has someone to take its value: no deadlock by design.
    local all = {}
    for i, ch in ipairs(chans) do all[i] = { ch, "receive" } end
    for c = 1, 6 do
      consumers[c] = bg(function()
        while true do
          local how = c <= 2 and 0 or random(3)
          local v, ok
          if how == 0 then
            local _
            _, v, ok = Channel.select(all)
          elseif how == 1 then
            v, ok = pick():receive()
          elseif how == 2 then
            local ready
            v, ok, ready = pick():tryReceive()
            if not ready then sleep(0) end
          else
            local _
            _, v, ok = Channel.select({ { pick(), "receive" }, { pick(), "receive" } })
          end
          if ok then received[v] = (received[v] or 0) + 1 end
          if ok == false and chans[1]:isClosed() then
            -- keep draining until every channel is closed and empty
            local any = false
            for _, ch in ipairs(chans) do if ch:len() > 0 then any = true end end
            if not any then return end
          end
        end
      end)
    end

    -- cancel a few producers along the way
    sleep(0)
    for p = 1, 12, 4 do producers[p]:cancel("stop") end
    for p = 1, 12 do pcall(await, producers[p]) end
    for _, ch in ipairs(chans) do ch:close() end
    for c = 1, 6 do await(consumers[c]) end

    local ncompleted = 0
    for v in pairs(completed) do
      ncompleted = ncompleted + 1
      assert.equals(1, received[v], "value " .. v .. " received")
    end
    for v, count in pairs(received) do
      assert.truthy(completed[v], "value " .. v .. " received " .. count .. " times but never sent")
    end
    assert.truthy(ncompleted > 500, "only " .. ncompleted .. " sends completed")
    for _, ch in ipairs(chans) do
      assert.equals(false, ch.rh)
      assert.equals(false, ch.sh)
    end
  end)
end)
