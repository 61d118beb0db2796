-- async/await, spawn/go, asyncTry/try/batch, timers, user coroutines.
describe("async and await", function()
  it("async returns a function that returns a promise", function()
    local f = async(function(a, b) sleep(0.001); return a + b end)
    local p = f(2, 3)
    assert.truthy(Promise.is(p))
    assert.equals(5, await(p))
  end)

  it("await of an already-settled promise does not suspend", function()
    local log = {}
    spawn(function() sleep(0); log[#log + 1] = "other" end)
    local v = await(Promise.resolve("now"))
    log[#log + 1] = v
    sleep(0.005)
    assert.same({ "now", "other" }, log)
  end)

  it("await raises the rejection reason (pcall works)", function()
    local ok, e = pcall(await, spawn(function() error({ code = 7 }) end))
    assert.equals(false, ok)
    assert.equals(7, e.code)
  end)

  it("errors keep file:line", function()
    local ok, e = pcall(await, spawn(function() error("where") end))
    assert.equals(false, ok)
    assert.truthy(e:match("async_spec%.lua:%d+: where"))
  end)

  it("await outside a task raises (a __gc finalizer)", function()
    local result
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function()
      result = { pcall(await, Promise.delay(0)) }
    end
    proxy = nil
    collectgarbage()
    collectgarbage()
    assert.same({ false, "await called outside an async task" }, result)
    -- the task that ran the collection is unharmed
    assert.equals("fine", await(Promise.delay(0.001, "fine")))
  end)

  it("returns only the first value", function()
    local a, b = await(spawn(function() return 1, 2 end))
    assert.equals(1, a)
    assert.is_nil(b)
  end)

  it("go reports nothing on success and runs concurrently", function()
    local done = false
    go(function() sleep(0.001); done = true end)
    sleep(0.01)
    assert.truthy(done)
  end)

  it("a task can return a promise, which is adopted", function()
    assert.equals("adopted", await(spawn(function() return Promise.delay(0.001, "adopted") end)))
  end)
end)

describe("asyncTry", function()
  it("passes the try result through", function()
    assert.equals(9, await(asyncTry(function() sleep(0); return 9 end)))
  end)

  it("calls catch with an error table and finally in every case", function()
    local log = {}
    local r = await(asyncTry(function()
      sleep(0)
      error("bad thing")
    end, function(err)
      log[#log + 1] = type(err.message) == "string" and err.message:match("bad thing") or "?"
      log[#log + 1] = type(err.stack) == "table" and #err.stack > 0
      log[#log + 1] = type(err.timestamp) == "number"
      log[#log + 1] = err.stack[1].file:match("async_spec%.lua$") ~= nil and type(err.stack[1].line) == "number"
      return "handled"
    end, function() log[#log + 1] = "finally" end))
    assert.equals("handled", r)
    assert.same({ "bad thing", true, true, true, "finally" }, log)
  end)

  it("marks frames of awaiting tasks as async", function()
    local inner = async(function() sleep(0); error("inner failed") end)
    local saw_async
    await(asyncTry(function() await(inner()) end, function(err)
      for _, f in ipairs(err.stack) do if f.async then saw_async = true end end
    end))
    assert.equals(true, saw_async)
  end)

  it("rejects with the error table when there is no catch", function()
    local ok, e = pcall(await, asyncTry(function() error("no catch") end))
    assert.equals(false, ok)
    assert.truthy(e.message:find("no catch", 1, true))
  end)

  it("rejects with what catch raised", function()
    local ok, e = pcall(await, asyncTry(function() error("one") end, function() error("two", 0) end))
    assert.same({ false, "two" }, { ok, e })
  end)
end)

describe("try", function()
  it("returns what tryFn returned", function()
    local a, b = try(function() sleep(0); return 1, 2 end, function() return "caught" end)
    assert.same({ 1, 2 }, { a, b })
  end)

  it("calls catch with the message string, finally last", function()
    local log = {}
    local r = try(function() error("oops", 0) end, function(msg) log[#log + 1] = msg; return "c" end,
      function() log[#log + 1] = "f" end)
    assert.equals("c", r)
    assert.same({ "oops", "f" }, log)
  end)
end)

describe("batch", function()
  it("runs at most size at once and keeps indices", function()
    local inflight, peak = 0, 0
    local ops = {}
    for i = 1, 7 do
      ops[i] = function()
        inflight = inflight + 1
        if inflight > peak then peak = inflight end
        sleep(0.002)
        inflight = inflight - 1
        if i == 4 then error("four", 0) end
        return i * i
      end
    end
    local results, errors = batch(ops, 3)
    assert.equals(3, peak)
    assert.same({ [1] = 1, [2] = 4, [3] = 9, [5] = 25, [6] = 36, [7] = 49 }, results)
    assert.same({ [4] = "four" }, errors)
  end)
end)

describe("timers", function()
  it("setTimeout runs once, with arguments", function()
    local got
    setTimeout(function(a, b) got = a .. b end, 0.005, "x", "y")
    sleep(0.02)
    assert.equals("xy", got)
  end)

  it("stop prevents the callback", function()
    local ran = false
    local t = setTimeout(function() ran = true end, 0.01)
    t:stop()
    sleep(0.02)
    assert.equals(false, ran)
  end)

  it("setInterval repeats until stopped", function()
    local n = 0
    local t
    t = setInterval(function() n = n + 1; if n == 3 then t:stop() end end, 0.002)
    sleep(0.05)
    assert.equals(3, n)
  end)

  it("timer callbacks run as tasks (may await)", function()
    local v
    setTimeout(function() v = await(Promise.delay(0.001, "awaited")) end, 0)
    sleep(0.02)
    assert.equals("awaited", v)
  end)
end)

describe("user coroutines", function()
  it("await inside coroutine.wrap suspends the task", function()
    local gen = coroutine.wrap(function()
      for i = 1, 3 do
        await(Promise.delay(0.001))
        coroutine.yield(i)
      end
    end)
    assert.same({ 1, 2, 3 }, { gen(), gen(), gen() })
  end)

  it("nested user coroutines pass suspensions through", function()
    local outer = coroutine.wrap(function()
      local inner = coroutine.wrap(function()
        sleep(0.001)
        coroutine.yield("inner")
      end)
      coroutine.yield(inner() .. "+outer")
    end)
    assert.equals("inner+outer", outer())
  end)

  it("coroutine.resume/status keep their meaning", function()
    local co = coroutine.create(function(a) local b = coroutine.yield(a * 2); return b + 1 end)
    assert.same({ true, 4 }, { coroutine.resume(co, 2) })
    assert.equals("suspended", coroutine.status(co))
    assert.same({ true, 11 }, { coroutine.resume(co, 10) })
    assert.equals("dead", coroutine.status(co))
    assert.same({ false, "cannot resume dead coroutine" }, { coroutine.resume(co) })
  end)

  it("errors inside user coroutines come back from resume", function()
    local co = coroutine.create(function() sleep(0); error("inside", 0) end)
    assert.same({ false, "inside" }, { coroutine.resume(co) })
  end)
end)
