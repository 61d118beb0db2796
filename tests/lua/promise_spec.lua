-- Promises/A+ (2.1, 2.2, 2.3), combinators, cancellation and ordering.
local function tick(n) for _ = 1, (n or 1) do sleep(0) end end

local function deferred()
  local d = {}
  d.promise = Promise.new(function(res, rej) d.resolve, d.reject = res, rej end)
  return d
end

describe("Promises/A+ 2.1 states", function()
  it("2.1.1 a pending promise may become fulfilled or rejected", function()
    local d = deferred()
    assert.equals("pending", d.promise:status())
    d.resolve(1)
    assert.equals("fulfilled", d.promise:status())
    local e = deferred()
    e.reject("x")
    e.promise:catch(function() end)
    assert.equals("rejected", e.promise:status())
  end)

  it("2.1.2 a fulfilled promise never changes state or value", function()
    local d = deferred()
    d.resolve("first")
    d.reject("nope")
    d.resolve("second")
    assert.equals("fulfilled", d.promise:status())
    assert.equals("first", await(d.promise))
  end)

  it("2.1.3 a rejected promise never changes state or reason", function()
    local d = deferred()
    d.reject("first")
    d.resolve("nope")
    d.reject("second")
    local ok, e = pcall(await, d.promise)
    assert.equals(false, ok)
    assert.equals("first", e)
  end)
end)

describe("Promises/A+ 2.2 then", function()
  it("2.2.1 non-function arguments are ignored", function()
    local v = await(Promise.resolve(5):andThen(nil, 42):andThen("x", {}))
    assert.equals(5, v)
    local ok, e = pcall(await, Promise.reject("r"):andThen(7, nil))
    assert.same({ false, "r" }, { ok, e })
  end)

  it("2.2.2 onFulfilled is called once, after fulfilment, with the value", function()
    local d = deferred()
    local calls = {}
    d.promise:andThen(function(v) calls[#calls + 1] = v end)
    tick()
    assert.equals(0, #calls)
    d.resolve("v")
    d.resolve("w")
    tick(2)
    assert.same({ "v" }, calls)
  end)

  it("2.2.3 onRejected is called once, after rejection, with the reason", function()
    local d = deferred()
    local calls = {}
    d.promise:andThen(nil, function(r) calls[#calls + 1] = r end)
    tick()
    assert.equals(0, #calls)
    d.reject("why")
    d.reject("again")
    tick(2)
    assert.same({ "why" }, calls)
  end)

  it("2.2.4 handlers are not called before the current code finishes", function()
    local log = {}
    Promise.resolve(1):andThen(function() log[#log + 1] = "handler" end)
    log[#log + 1] = "sync"
    tick()
    assert.same({ "sync", "handler" }, log)
    local log2 = {}
    local d = deferred()
    d.promise:andThen(function() log2[#log2 + 1] = "handler" end)
    d.resolve()
    log2[#log2 + 1] = "after resolve"
    tick()
    assert.same({ "after resolve", "handler" }, log2)
  end)

  it("2.2.5 handlers are called as plain functions (one argument)", function()
    local n
    await(Promise.resolve("a"):andThen(function(...) n = select("#", ...) end))
    assert.equals(1, n)
  end)

  it("2.2.6 multiple handlers run in the order they were attached", function()
    local p = Promise.resolve(0)
    local log = {}
    for i = 1, 5 do p:andThen(function() log[#log + 1] = i end) end
    local r = Promise.reject("e")
    for i = 1, 3 do r:andThen(nil, function() log[#log + 1] = "r" .. i end) end
    tick(2)
    assert.same({ 1, 2, 3, 4, 5, "r1", "r2", "r3" }, log)
  end)

  it("2.2.7 then returns a promise resolved by the handler's outcome", function()
    assert.equals(3, await(Promise.resolve(1):andThen(function(v) return v + 2 end)))
    local ok, e = pcall(await, Promise.resolve(1):andThen(function() error("thrown", 0) end))
    assert.same({ false, "thrown" }, { ok, e })
    assert.equals("recovered", await(Promise.reject("x"):andThen(nil, function() return "recovered" end)))
    -- 2.2.7.3/4: missing handlers pass the outcome through
    assert.equals("same", await(Promise.resolve("same"):andThen(nil, function() end)))
    local ok2, e2 = pcall(await, Promise.reject("same"):andThen(function() end))
    assert.same({ false, "same" }, { ok2, e2 })
  end)

  it("next and [\"then\"] are aliases of andThen", function()
    assert.equals(2, await(Promise.resolve(1):next(function(v) return v + 1 end)))
    local p = Promise.resolve(1)
    assert.equals(4, await(p["then"](p, function(v) return v + 3 end)))
  end)
end)

describe("Promises/A+ 2.3 resolution procedure", function()
  it("2.3.1 resolving a promise with itself rejects with a TypeError", function()
    local d = deferred()
    d.resolve(d.promise)
    local ok, e = pcall(await, d.promise)
    assert.equals(false, ok)
    assert.truthy(tostring(e):find("TypeError", 1, true))
    local p
    p = Promise.resolve(1):andThen(function() return p end)
    local ok2, e2 = pcall(await, p)
    assert.equals(false, ok2)
    assert.truthy(tostring(e2):find("itself", 1, true))
  end)

  it("2.3.2 a promise returned by a handler is adopted", function()
    local inner = deferred()
    local outer = Promise.resolve():andThen(function() return inner.promise end)
    tick(2)
    assert.equals("pending", outer:status())
    inner.resolve("late")
    assert.equals("late", await(outer))
    local rej = Promise.resolve():andThen(function() return Promise.reject("inner no") end)
    local ok, e = pcall(await, rej)
    assert.same({ false, "inner no" }, { ok, e })
  end)

  it("2.3.3 thenables are assimilated", function()
    local thenable = { ["then"] = function(self, res) res("from thenable") end }
    assert.equals("from thenable", await(Promise.resolve(thenable)))
    assert.equals("direct", await({ ["then"] = function(_, res) res("direct") end }))
    local rejecting = { ["then"] = function(_, _, rej) rej("thenable no") end }
    local ok, e = pcall(await, Promise.resolve(rejecting))
    assert.same({ false, "thenable no" }, { ok, e })
  end)

  it("2.3.3.1 then is retrieved once; an error retrieving it rejects", function()
    local gets = 0
    local x = setmetatable({}, { __index = function(_, k)
      if k == "then" then
        gets = gets + 1
        return function(_, res) res("once") end
      end
    end })
    assert.equals("once", await(Promise.resolve(x)))
    assert.equals(1, gets)
    local bad = setmetatable({}, { __index = function() error("no then for you", 0) end })
    local ok, e = pcall(await, Promise.resolve():andThen(function() return bad end))
    assert.same({ false, "no then for you" }, { ok, e })
  end)

  it("2.3.3.3 the first call of resolvePromise/rejectPromise wins", function()
    local x = { ["then"] = function(_, res, rej)
      res("first")
      rej("second")
      res("third")
    end }
    assert.equals("first", await(Promise.resolve(x)))
    local y = { ["then"] = function(_, res, rej)
      rej("r1")
      res("no")
    end }
    local ok, e = pcall(await, Promise.resolve(y))
    assert.same({ false, "r1" }, { ok, e })
  end)

  it("2.3.3.3.4 an error after resolvePromise was called is ignored", function()
    local x = { ["then"] = function(_, res) res("kept"); error("ignored") end }
    assert.equals("kept", await(Promise.resolve(x)))
    local y = { ["then"] = function() error("then threw", 0) end }
    local ok, e = pcall(await, Promise.resolve(y))
    assert.same({ false, "then threw" }, { ok, e })
  end)

  it("2.3.3.3.1 thenables resolve recursively", function()
    local inner = { ["then"] = function(_, res) res("deep") end }
    local outer = { ["then"] = function(_, res) res(inner) end }
    assert.equals("deep", await(Promise.resolve(outer)))
  end)

  it("2.3.3.4 / 2.3.4 a table whose then is not a function is a plain value", function()
    local t = { ["then"] = 5, v = 1 }
    assert.equals(t, await(Promise.resolve(t)))
    assert.equals(7, await(Promise.resolve(7)))
    assert.equals(nil, await(Promise.resolve(nil)))
  end)
end)

describe("combinators", function()
  it("all keeps order and values; non-promises count as values", function()
    local r = await(Promise.all({ Promise.delay(0.02, "a"), "b", Promise.resolve("c"), n = 4 }))
    assert.same({ "a", "b", "c" }, r)
    assert.same({}, await(Promise.all({})))
  end)

  it("all rejects with the first rejection", function()
    local ok, e = pcall(await, Promise.all({ Promise.delay(0.05, 1), Promise.reject("boom") }))
    assert.same({ false, "boom" }, { ok, e })
  end)

  it("allSettled reports each outcome", function()
    local r = await(Promise.allSettled({ Promise.resolve(1), Promise.reject("no"), 3 }))
    assert.same({
      { status = "fulfilled", value = 1 },
      { status = "rejected", reason = "no" },
      { status = "fulfilled", value = 3 },
    }, r)
  end)

  it("any takes the first fulfilment, or rejects with an aggregate", function()
    assert.equals("y", await(Promise.any({ Promise.reject("x"), Promise.delay(0.01, "y"), Promise.delay(0.05, "z") })))
    local ok, e = pcall(await, Promise.any({ Promise.reject("a"), Promise.reject("b") }))
    assert.equals(false, ok)
    assert.equals("aggregate", e.kind)
    assert.same({ "a", "b" }, e.errors)
  end)

  it("race settles like the first to settle", function()
    assert.equals("fast", await(Promise.race({ Promise.delay(0.05, "slow"), Promise.delay(0.01, "fast") })))
    local ok, e = pcall(await, Promise.race({ Promise.delay(0.05, "slow"), Promise.reject("quick no") }))
    assert.same({ false, "quick no" }, { ok, e })
  end)

  it("delay resolves after the delay with the value", function()
    local t0 = os.time()
    local p = Promise.delay(0.03, "later")
    assert.equals("pending", p:status())
    assert.equals("later", await(p))
    assert.truthy(os.time() - t0 < 5)
  end)

  it("map keeps order and never exceeds the concurrency", function()
    local inflight, peak = 0, 0
    local r = await(Promise.map({ 5, 1, 4, 2, 3, 6, 7, 8 }, function(x, i)
      inflight = inflight + 1
      if inflight > peak then peak = inflight end
      sleep(x / 1000)
      inflight = inflight - 1
      return x * 10 + i
    end, { concurrency = 3 }))
    assert.same({ 51, 12, 43, 24, 35, 66, 77, 88 }, r)
    assert.equals(3, peak)
  end)

  it("map: the first error rejects, cancels those in flight and starts no more", function()
    local started, finished = {}, {}
    local ok, e = pcall(await, Promise.map({ 1, 2, 3, 4, 5, 6 }, function(x)
      started[#started + 1] = x
      if x == 2 then error("item 2 failed", 0) end
      sleep(0.05)
      finished[#finished + 1] = x
      return x
    end, { concurrency = 2 }))
    assert.same({ false, "item 2 failed" }, { ok, e })
    sleep(0.1)
    assert.same({}, finished)
    assert.same({ 1, 2 }, started)
  end)

  it("timeout rejects late promises with kind timeout and cancels them", function()
    local slow = Promise.delay(5, "never")
    local ok, e = pcall(await, slow:timeout(0.02))
    assert.equals(false, ok)
    assert.equals("timeout", e.kind)
    assert.equals("rejected", slow:status())
    assert.equals(7, await(Promise.delay(0.001, 7):timeout(1)))
  end)
end)

describe("cancellation", function()
  it("cancel rejects a pending promise with a cancelled error", function()
    local d = deferred()
    assert.equals(true, d.promise:cancel("stop it"))
    local ok, e = pcall(await, d.promise)
    assert.equals(false, ok)
    assert.equals("cancelled", e.kind)
    assert.equals(true, e.cancelled)
    assert.equals("stop it", e.message)
    assert.equals(false, d.promise:cancel())
    assert.equals(false, Promise.resolve(1):cancel())
  end)

  it("default reason is 'cancelled'", function()
    local p = Promise.delay(1)
    p:cancel()
    local _, e = pcall(await, p)
    assert.equals("cancelled", e.message)
  end)

  it("reaches a sleeping task, whose pcall sees the error", function()
    local log = {}
    local t = spawn(function()
      local ok, e = pcall(sleep, 10)
      log[#log + 1] = ok
      log[#log + 1] = e.kind
      return "cleaned"
    end)
    sleep(0.01)
    t:cancel()
    sleep(0.01)
    assert.same({ false, "cancelled" }, log)
  end)

  it("reaches a task awaiting a promise that others also wait on; the promise is not affected", function()
    local d = deferred()
    local t = spawn(function() return await(d.promise) end)
    local other = d.promise:andThen(function(v) return v end)
    t:cancel("bye")
    sleep(0)
    assert.equals("pending", d.promise:status())
    d.resolve(1)
    assert.equals(1, await(other))
    local _, e = pcall(await, t)
    assert.equals("bye", e.message)
  end)

  it("cancels the awaited promise when the task was its only waiter", function()
    local inner = Promise.delay(10, "never")
    local t = spawn(function() return await(inner) end)
    t:cancel("stop")
    assert.equals("rejected", inner:status())
    local _, e = pcall(await, inner)
    assert.equals("stop", e.message)
  end)

  it("clears a delay's timer so the process can exit at once", function()
    local p = Promise.delay(30)
    p:cancel()
    assert.equals("rejected", p:status())
  end)

  it("a derived promise cancels its parent when it is the only handler", function()
    local parent = Promise.delay(10)
    local child = parent:andThen(function() end)
    child:cancel()
    assert.equals("rejected", parent:status())
    local shared = Promise.delay(0.01, "v")
    local a = shared:andThen(function(v) return v end)
    local b = shared:andThen(function(v) return v .. "!" end)
    a:cancel()
    assert.equals("pending", shared:status())
    assert.equals("v!", await(b))
  end)

  it("a task cancelled while running sees the error at its next suspension", function()
    local seen, t
    t = spawn(function()
      sleep(0)
      t:cancel("self")
      local ok, e = pcall(sleep, 0)
      seen = ok == false and e.message
    end)
    sleep(0.01)
    assert.equals("self", seen)
  end)
end)

describe("ordering", function()
  it("microtasks run FIFO before timers", function()
    local log = {}
    setTimeout(function() log[#log + 1] = "timer" end, 0)
    Promise.resolve():andThen(function() log[#log + 1] = "m1" end)
      :andThen(function() log[#log + 1] = "m3" end)
    Promise.resolve():andThen(function() log[#log + 1] = "m2" end)
    sleep(0.01)
    assert.same({ "m1", "m2", "m3", "timer" }, log)
  end)

  it("sleeps wake in deadline order, equal deadlines in call order", function()
    local log = {}
    local ps = {}
    for i, d in ipairs({ 0.03, 0.01, 0.02, 0.01 }) do
      ps[i] = spawn(function() sleep(d); log[#log + 1] = i end)
    end
    await(Promise.all(ps))
    assert.same({ 2, 4, 3, 1 }, log)
  end)

  it("spawn runs the body at once until its first suspension", function()
    local log = {}
    spawn(function() log[#log + 1] = "a"; sleep(0); log[#log + 1] = "c" end)
    log[#log + 1] = "b"
    sleep(0.005)
    assert.same({ "a", "b", "c" }, log)
  end)

  it("handlers can await", function()
    local v = await(Promise.resolve(2):andThen(function(x)
      sleep(0.001)
      return x + await(Promise.delay(0.001, 3))
    end))
    assert.equals(5, v)
  end)
end)
