-- Stream (API.md section 5): sources, transforms, consumers, early end,
-- errors, concurrency limits and cancellation.

-- A source over a list that counts its pulls and close calls.
local function counted(list)
  local c = { pulls = 0, closes = 0 }
  local i = 0
  c.stream = Stream.new(function()
    c.pulls = c.pulls + 1
    i = i + 1
    return list[i]
  end, function()
    c.closes = c.closes + 1
  end)
  return c
end

-- 1..n
local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

local function lines_of(chunks)
  return await(Stream.from(chunks):lines():collect())
end

describe("Stream sources", function()
  it("from a table", function()
    assert.same({ 1, 2, 3 }, await(Stream.from({ 1, 2, 3 }):collect()))
    assert.same({}, await(Stream.from({}):collect()))
  end)

  it("from a table honours t.n", function()
    assert.same({ "a", "b" }, await(Stream.from({ "a", "b", "c", n = 2 }):collect()))
  end)

  it("from an iterator function, awaiting the promises it returns", function()
    local i = 0
    local s = Stream.from(function()
      i = i + 1
      if i > 3 then return nil end
      if i == 2 then return Promise.delay(0.001, "two") end
      return i
    end)
    assert.same({ 1, "two", 3 }, await(s:collect()))
  end)

  it("from string.gmatch", function()
    assert.same({ "a", "bb", "c" }, await(Stream.from(("a bb c"):gmatch("%S+")):collect()))
  end)

  it("from a Channel: ends when the channel is closed", function()
    local ch = Channel.new(0)
    spawn(function()
      for i = 1, 3 do ch:send(i * 10) end
      ch:close()
    end)
    assert.same({ 10, 20, 30 }, await(Stream.from(ch):collect()))
  end)

  it("from a Channel: ends at a nil value", function()
    local ch = Channel.new(4)
    ch:send("x")
    ch:send(nil)
    ch:send("y")
    assert.same({ "x" }, await(Stream.from(ch):collect()))
    assert.same({ "y", true }, { ch:receive() })
  end)

  it("from a Stream returns it", function()
    local s = Stream.from({ 1 })
    assert.equals(s, Stream.from(s))
    assert.truthy(Stream.is(s))
    assert.falsy(Stream.is({}))
  end)

  it("rejects other arguments", function()
    assert.has_error(function() Stream.from(42) end,
      "Stream.from: expected a table, an iterator function or a Channel, got number")
    assert.has_error(function() Stream.new(nil) end, "Stream.new: expected a pull function")
  end)
end)

describe("Stream reading", function()
  it("read returns values then nil, and keeps returning nil", function()
    local c = counted({ "a", "b" })
    local s = c.stream
    assert.equals("a", s:read())
    assert.equals("b", s:read())
    assert.is_nil(s:read())
    assert.is_nil(s:read())
    assert.equals(3, c.pulls)
    assert.equals(1, c.closes)
  end)

  it("iter walks the values and closes the source at the end", function()
    local c = counted({ 1, 2, 3 })
    local seen = {}
    for v in c.stream:iter() do seen[#seen + 1] = v end
    assert.same({ 1, 2, 3 }, seen)
    assert.equals(1, c.closes)
  end)

  it("a stream is its own iterator in a generic for, as io.lines() is", function()
    local c = counted({ 1, 2, 3 })
    local seen = {}
    for v in c.stream do seen[#seen + 1] = v end
    assert.same({ 1, 2, 3 }, seen)
    assert.equals(1, c.closes)
    local lines = {}
    for l in Stream.from({ "a\nb", "\r\nc" }):lines() do lines[#lines + 1] = l end
    assert.same({ "a", "b", "c" }, lines)
  end)

  it("iter suspends while the source waits", function()
    local i = 0
    local s = Stream.new(function()
      i = i + 1
      if i > 3 then return nil end
      sleep(0.001)
      return i
    end)
    local seen = {}
    for v in s:iter() do seen[#seen + 1] = v end
    assert.same({ 1, 2, 3 }, seen)
  end)

  it("readLine reads lines out of chunks", function()
    local s = Stream.from({ "one\ntw", "o\r\nthree" })
    assert.equals("one", s:readLine())
    assert.equals("two", s:readLine())
    assert.equals("three", s:readLine())
    assert.is_nil(s:readLine())
  end)

  it("readLine on a lines() stream is read", function()
    local s = Stream.from({ "a\nb\n" }):lines()
    assert.equals("a", s:readLine())
    assert.equals("b", s:read())
    assert.is_nil(s:readLine())
  end)

  it("close ends the stream and calls the source's close once", function()
    local c = counted({ 1, 2, 3 })
    assert.equals(1, c.stream:read())
    c.stream:close()
    c.stream:close()
    assert.is_nil(c.stream:read())
    assert.equals(1, c.pulls)
    assert.equals(1, c.closes)
  end)
end)

describe("Stream transforms", function()
  it("map", function()
    assert.same({ 2, 4, 6 }, await(Stream.from({ 1, 2, 3 }):map(function(x) return x * 2 end):collect()))
  end)

  it("map awaits promises and drops nil results", function()
    local s = Stream.from({ 1, 2, 3, 4 }):map(function(x)
      if x == 2 then return nil end
      return Promise.delay(0.001, x * 10)
    end)
    assert.same({ 10, 30, 40 }, await(s:collect()))
  end)

  it("map keeps false", function()
    assert.same({ false, true }, await(Stream.from({ 1, 2 }):map(function(x) return x == 2 end):collect()))
  end)

  it("filter, with a promise-returning predicate", function()
    local s = Stream.from(range(6)):filter(function(x) return Promise.resolve(x % 2 == 0) end)
    assert.same({ 2, 4, 6 }, await(s:collect()))
  end)

  it("flatMap over arrays and streams", function()
    local s = Stream.from({ 1, 2, 3 }):flatMap(function(x)
      if x == 1 then return { "a", "b" } end
      if x == 2 then return {} end
      return Stream.from({ "c", "d" })
    end)
    assert.same({ "a", "b", "c", "d" }, await(s:collect()))
  end)

  it("flatMap closes an inner stream when the consumer stops early", function()
    local inner = counted({ "x", "y", "z" })
    local s = Stream.from({ 1 }):flatMap(function() return inner.stream end):take(1)
    assert.same({ "x" }, await(s:collect()))
    assert.equals(1, inner.closes)
    assert.equals(1, inner.pulls)
  end)

  it("flatMap rejects other results", function()
    assert.rejects(Stream.from({ 1 }):flatMap(function() return 5 end):collect(),
      "Stream.flatMap: the function must return an array table or a Stream, got number")
  end)

  it("take pulls exactly n values, then closes the source", function()
    local c = counted(range(10))
    assert.same({ 1, 2, 3 }, await(c.stream:take(3):collect()))
    assert.equals(3, c.pulls)
    assert.equals(1, c.closes)
  end)

  it("take(0) pulls nothing", function()
    local c = counted(range(3))
    assert.same({}, await(c.stream:take(0):collect()))
    assert.equals(0, c.pulls)
    assert.equals(1, c.closes)
  end)

  it("take more than there is", function()
    local c = counted({ 1, 2 })
    assert.same({ 1, 2 }, await(c.stream:take(5):collect()))
    assert.equals(3, c.pulls)
    assert.equals(1, c.closes)
  end)

  it("map before take runs exactly n times", function()
    local calls = 0
    local s = Stream.from(range(100)):map(function(x) calls = calls + 1; return x end):take(4)
    assert.same({ 1, 2, 3, 4 }, await(s:collect()))
    assert.equals(4, calls)
  end)

  it("take(math.huge) takes everything", function()
    assert.same({ 1, 2 }, await(Stream.from({ 1, 2 }):take(math.huge):collect()))
  end)

  it("take rejects bad counts", function()
    assert.has_error(function() Stream.from({}):take(-1) end, "Stream.take: expected an integer >= 0")
    assert.has_error(function() Stream.from({}):batch(0) end, "Stream.batch: expected an integer >= 1")
  end)

  it("skip", function()
    assert.same({ 4, 5 }, await(Stream.from(range(5)):skip(3):collect()))
    assert.same({}, await(Stream.from(range(2)):skip(3):collect()))
    assert.same({ 1, 2 }, await(Stream.from(range(2)):skip(0):collect()))
  end)

  it("batch", function()
    assert.same({ { 1, 2 }, { 3, 4 }, { 5 } }, await(Stream.from(range(5)):batch(2):collect()))
    assert.same({ { 1, 2 } }, await(Stream.from(range(2)):batch(2):collect()))
    assert.same({}, await(Stream.from({}):batch(3):collect()))
  end)

  it("tap sees each value and passes it on", function()
    local seen = {}
    local s = Stream.from({ "a", "b" }):tap(function(v)
      seen[#seen + 1] = v
      return Promise.delay(0.001)
    end)
    assert.same({ "a", "b" }, await(s:collect()))
    assert.same({ "a", "b" }, seen)
  end)
end)

describe("Stream lines", function()
  it("splits chunks into lines", function()
    assert.same({ "a", "b", "c" }, lines_of({ "a\nb\nc\n" }))
  end)

  it("joins lines split across chunks", function()
    assert.same({ "hello", "world" }, lines_of({ "hel", "lo\nwor", "ld\n" }))
  end)

  it("strips CRLF", function()
    assert.same({ "a", "b", "c" }, lines_of({ "a\r\nb\r\nc\r\n" }))
  end)

  it("handles a CRLF split across chunks", function()
    assert.same({ "a", "b" }, lines_of({ "a\r", "\nb\r", "\n" }))
    assert.same({ "a", "b" }, lines_of({ "a\r", "\n", "b" }))
  end)

  it("keeps a last line without newline", function()
    assert.same({ "a", "b" }, lines_of({ "a\nb" }))
    assert.same({ "a", "b" }, lines_of({ "a\r\n", "b" }))
    assert.same({ "only" }, lines_of({ "only" }))
  end)

  it("keeps empty lines, adds none at the end", function()
    assert.same({ "", "a", "", "" }, lines_of({ "\na\n\n", "\n" }))
    assert.same({ "" }, lines_of({ "\n" }))
    assert.same({}, lines_of({}))
    assert.same({}, lines_of({ "", "" }))
  end)

  it("a lone CR inside a line is data", function()
    assert.same({ "a\rb", "c" }, lines_of({ "a\rb\nc" }))
  end)

  it("a line spanning many chunks, with empty chunks between", function()
    local chunks = { "x" }
    for i = 1, 50 do chunks[#chunks + 1] = i % 7 == 0 and "" or "y" end
    chunks[#chunks + 1] = "\r"
    chunks[#chunks + 1] = "\nz"
    local expected = "x" .. ("y"):rep(50 - 7)
    assert.same({ expected, "z" }, lines_of(chunks))
  end)

  it("rejects chunks that are not text", function()
    assert.rejects(Stream.from({ "a\n", {} }):lines():collect(), "Stream.lines: expected text chunks, got table")
  end)

  it("take on lines closes the chunk source", function()
    local c = counted({ "1\n2\n", "3\n4\n", "5\n" })
    assert.same({ "1", "2", "3" }, await(c.stream:lines():take(3):collect()))
    assert.equals(2, c.pulls)
    assert.equals(1, c.closes)
  end)
end)

describe("Stream consumers", function()
  it("forEach runs fn for each value in order, awaiting its promises", function()
    local log = {}
    local r = await(Stream.from({ 1, 2, 3 }):forEach(function(v)
      log[#log + 1] = "start " .. v
      return Promise.delay(0.001):andThen(function() log[#log + 1] = "end " .. v end)
    end))
    assert.is_nil(r)
    assert.same({ "start 1", "end 1", "start 2", "end 2", "start 3", "end 3" }, log)
  end)

  it("reduce with and without init", function()
    local add = function(a, b) return a + b end
    assert.equals(16, await(Stream.from(range(5)):reduce(add, 1)))
    assert.equals(15, await(Stream.from(range(5)):reduce(add)))
    assert.equals(7, await(Stream.from({}):reduce(add, 7)))
    assert.is_nil(await(Stream.from({}):reduce(add)))
    assert.equals(6, await(Stream.from(range(3)):reduce(function(a, b) return Promise.resolve(a + b) end, 0)))
  end)

  it("collect and count", function()
    assert.same({ "x", "y" }, await(Stream.from({ "x", "y" }):collect()))
    assert.equals(4, await(Stream.from(range(4)):count()))
    assert.equals(0, await(Stream.from({}):count()))
  end)

  it("consumers return promises and run the stream in a task", function()
    local p = Stream.from({ 1 }):map(function(x) sleep(0.001); return x end):count()
    assert.truthy(Promise.is(p))
    assert.equals("pending", p:status())
    assert.equals(1, await(p))
  end)

  it("pipeTo a writable waits for each write (backpressure) and leaves it open", function()
    local c = counted({ "a", "b", "c" })
    local written, max_ahead, closed = {}, 0, false
    local w = {
      write = function(_, data)
        written[#written + 1] = data
        local ahead = c.pulls - #written
        if ahead > max_ahead then max_ahead = ahead end
        return Promise.delay(0.002)
      end,
      close = function() closed = true; return Promise.resolve() end,
    }
    await(c.stream:pipeTo(w))
    assert.same({ "a", "b", "c" }, written)
    assert.equals(0, max_ahead)
    assert.falsy(closed)
    assert.equals(1, c.closes)
  end)

  it("pipeTo accepts a writable whose write returns no promise", function()
    local out = {}
    await(Stream.from({ 1, 2 }):pipeTo({ write = function(_, d) out[#out + 1] = d end, close = function() end }))
    assert.same({ 1, 2 }, out)
  end)

  it("pipeTo a path opens the sink with fs.writeStream and closes it", function()
    local saved = package.loaded["luasync.fs"]
    local log = {}
    package.loaded["luasync.fs"] = {
      writeStream = function(path)
        log[#log + 1] = "open " .. path
        return {
          write = function(_, d) log[#log + 1] = "write " .. d; return Promise.resolve() end,
          close = function() log[#log + 1] = "close"; return Promise.delay(0.001) end,
        }
      end,
    }
    local ok, err = pcall(function()
      await(Stream.from({ "x", "y" }):pipeTo("out.txt"))
      local p = Stream.from({ "z", 0 }):map(function(v)
        if v == 0 then error({ code = "boom" }) end
        return v
      end):pipeTo("bad.txt")
      local ok2, e = pcall(await, p)
      assert.equals(false, ok2)
      assert.equals("boom", e.code)
    end)
    package.loaded["luasync.fs"] = saved
    if not ok then error(err, 0) end
    assert.same({ "open out.txt", "write x", "write y", "close", "open bad.txt", "write z", "close" }, log)
  end)

  it("pipeTo rejects a sink that is not writable", function()
    assert.rejects(Stream.from({ 1 }):pipeTo({}), "Stream.pipeTo: expected a file path or a writable")
  end)
end)

describe("Stream errors and early end", function()
  it("an error in a stage rejects the consumer with the original value and closes the source", function()
    local c = counted(range(5))
    local boom = { kind = "boom" }
    local p = c.stream:map(function(x)
      if x == 3 then error(boom) end
      return x
    end):collect()
    local ok, e = pcall(await, p)
    assert.equals(false, ok)
    assert.equals(boom, e)
    assert.equals(1, c.closes)
    assert.equals(3, c.pulls)
  end)

  it("a string error keeps file:line", function()
    local ok, e = pcall(await, Stream.from({ 1 }):filter(function() error("bad filter") end):count())
    assert.equals(false, ok)
    assert.truthy(e:match("stream_spec%.lua:%d+: bad filter$"))
  end)

  it("an error in the source rejects the consumer", function()
    local closes = 0
    local s = Stream.new(function() error("read failed", 0) end, function() closes = closes + 1 end)
    assert.rejects(s:forEach(function() end), "read failed")
    assert.equals(1, closes)
  end)

  it("an error in forEach's function closes the source", function()
    local c = counted(range(5))
    assert.rejects(c.stream:forEach(function(v) if v == 2 then error("stop here") end end), "stop here")
    assert.equals(1, c.closes)
    assert.equals(2, c.pulls)
  end)

  it("cancelling the consumer's promise closes the source", function()
    local closes, pulls = 0, 0
    local s = Stream.new(function()
      pulls = pulls + 1
      sleep(0.01)
      return pulls
    end, function() closes = closes + 1 end)
    local p = s:map(function(x) return x end):forEach(function() end)
    sleep(0.025)
    assert.truthy(p:cancel("enough"))
    local ok, e = pcall(await, p)
    assert.equals(false, ok)
    assert.equals("cancelled", e.kind)
    assert.equals("enough", e.message)
    sleep(0.001)
    assert.equals(1, closes)
    local before = pulls
    sleep(0.02)
    assert.equals(before, pulls)
  end)
end)

describe("Stream mapAsync", function()
  -- fn that records how many calls are in flight
  local function tracker(delay_of)
    local t = { now = 0, max = 0, calls = 0 }
    t.fn = function(x)
      t.calls = t.calls + 1
      t.now = t.now + 1
      if t.now > t.max then t.max = t.now end
      sleep(delay_of(x))
      t.now = t.now - 1
      return x * 10
    end
    return t
  end

  it("ordered: keeps input order and never exceeds the limit", function()
    local t = tracker(function(x) return (x * 7 % 5) * 0.002 end)
    local r = await(Stream.from(range(20)):mapAsync(t.fn, { concurrency = 3 }):collect())
    local expected = {}
    for i = 1, 20 do expected[i] = i * 10 end
    assert.same(expected, r)
    assert.equals(3, t.max)
    assert.equals(20, t.calls)
  end)

  it("defaults to 4 in flight and ordered", function()
    local t = tracker(function(x) return (5 - x % 5) * 0.002 end)
    local r = await(Stream.from(range(10)):mapAsync(t.fn):collect())
    assert.same({ 10, 20, 30, 40, 50, 60, 70, 80, 90, 100 }, r)
    assert.equals(4, t.max)
  end)

  it("unordered: emits in completion order, never exceeding the limit", function()
    local delays = { 0.03, 0.001, 0.015, 0.005 }
    local t = tracker(function(x) return delays[x] end)
    local r = await(Stream.from(range(4)):mapAsync(t.fn, { concurrency = 4, ordered = false }):collect())
    assert.same({ 20, 40, 30, 10 }, r)
    assert.equals(4, t.max)
  end)

  it("unordered with a limit of 2", function()
    local t = tracker(function(x) return (x % 3) * 0.002 end)
    local r = await(Stream.from(range(12)):mapAsync(t.fn, { concurrency = 2, ordered = false }):collect())
    table.sort(r)
    assert.same({ 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120 }, r)
    assert.equals(2, t.max)
  end)

  it("functions that do not suspend", function()
    local r = await(Stream.from(range(5)):mapAsync(function(x) return -x end, { ordered = false }):collect())
    assert.same({ -1, -2, -3, -4, -5 }, r)
    r = await(Stream.from(range(5)):mapAsync(function(x) if x ~= 3 then return -x end end):collect())
    assert.same({ -1, -2, -4, -5 }, r)
  end)

  it("an error rejects with the original value, cancels the rest and closes the source", function()
    for _, ordered in ipairs({ true, false }) do
      local c = counted(range(50))
      local finished = 0
      local boom = { kind = "boom" }
      local p = c.stream:mapAsync(function(x)
        if x == 3 then sleep(0.002); error(boom) end
        sleep(0.5)  -- far longer than any scheduling delay: they must be cancelled
        finished = finished + 1
        return x
      end, { concurrency = 4, ordered = ordered }):collect()
      local ok, e = pcall(await, p)
      assert.equals(false, ok)
      assert.equals(boom, e)
      assert.equals(1, c.closes)
      assert.equals(4, c.pulls)
      sleep(0.01)
      assert.equals(0, finished)
    end
  end)

  it("a function failing without suspending, behind a slow one", function()
    for _, ordered in ipairs({ true, false }) do
      local s = Stream.from(range(4)):mapAsync(function(x)
        if x == 2 then error("sync failure", 0) end
        sleep(0.005)
        return x
      end, { ordered = ordered })
      assert.rejects(s:collect(), "sync failure")
    end
  end)

  it("cancelling the consumer cancels the tasks in flight", function()
    local started, finished = 0, 0
    local c = counted(range(10))
    local p = c.stream:mapAsync(function(x)
      started = started + 1
      sleep(0.5)
      finished = finished + 1
      return x
    end, { concurrency = 2 }):forEach(function() end)
    sleep(0.005)
    p:cancel()
    sleep(0.01)
    assert.equals(2, started)
    assert.equals(0, finished)
    assert.equals(1, c.closes)
  end)

  it("closing it from another task wakes the reader with the end", function()
    for _, ordered in ipairs({ true, false }) do
      local c = counted(range(10))
      local s = c.stream:mapAsync(function(x) sleep(0.05); return x end, { ordered = ordered })
      local reader = spawn(function() return s:read() end)
      sleep(0.005)
      s:close()
      assert.is_nil(await(reader))
      assert.equals(1, c.closes)
    end
  end)

  it("rejects bad options", function()
    assert.has_error(function() Stream.from({}):mapAsync(function() end, { concurrency = 0 }) end,
      "Stream.mapAsync: concurrency must be an integer >= 1")
    assert.has_error(function() Stream.from({}):mapAsync(5) end, "Stream.mapAsync: expected a function")
  end)
end)

describe("Stream.merge and Stream.pipeline", function()
  local function timed(values, delay)
    local i = 0
    return Stream.new(function()
      i = i + 1
      if values[i] == nil then return nil end
      sleep(delay)
      return values[i]
    end)
  end

  it("merge emits values as they come", function()
    local s = Stream.merge(timed({ "s1", "s2", "s3" }, 0.1), timed({ "f1", "f2" }, 0.005))
    assert.same({ "f1", "f2", "s1", "s2", "s3" }, await(s:collect()))
  end)

  it("merge of plain tables and of nothing", function()
    local r = await(Stream.merge({ 1, 2 }, { 3 }):collect())
    table.sort(r)
    assert.same({ 1, 2, 3 }, r)
    assert.same({}, await(Stream.merge():collect()))
  end)

  it("merge pulls each source at most one value ahead", function()
    local a = counted(range(100))
    local b = counted(range(100))
    local s = Stream.merge(a.stream, b.stream)
    assert.same({ 1, 1, 2 }, await(s:take(3):collect()))
    assert.truthy(a.pulls <= 3 and b.pulls <= 3)
    assert.equals(1, a.closes)
    assert.equals(1, b.closes)
  end)

  it("merge: an error in one source rejects and closes the others", function()
    local other = counted(range(100))
    local bad = Stream.new(function() sleep(0.002); error({ kind = "bad source" }) end)
    local ok, e = pcall(await, Stream.merge(other.stream, bad):count())
    assert.equals(false, ok)
    assert.equals("bad source", e.kind)
    assert.equals(1, other.closes)
  end)

  it("merge: closing it from another task wakes the reader with the end", function()
    local a = counted({})
    local slow = Stream.new(function() sleep(0.05); return 1 end)
    local s = Stream.merge(slow, a.stream)
    local reader = spawn(function() return s:read() end)
    sleep(0.005)
    s:close()
    assert.is_nil(await(reader))
    assert.equals(1, a.closes)
  end)

  it("pipeline runs stages in order, keeping input order", function()
    local inflight, max = 0, 0
    local s = Stream.pipeline(range(8), {
      { name = "double", processor = function(x) return x * 2 end },
      { name = "slow", parallel = 3, processor = function(x)
          inflight = inflight + 1
          if inflight > max then max = inflight end
          sleep((x % 3) * 0.002)
          inflight = inflight - 1
          return x + 1
        end },
      { name = "str", processor = function(x) return "v" .. x end },
    })
    assert.same({ "v3", "v5", "v7", "v9", "v11", "v13", "v15", "v17" }, await(s:collect()))
    assert.equals(3, max)
  end)

  it("pipeline: a stage error rejects with it", function()
    local s = Stream.pipeline({ 1, 2 }, { { processor = function(x) if x == 2 then error("stage two", 0) end return x end } })
    assert.rejects(s:collect(), "stage two")
  end)
end)

describe("Stream progress", function()
  it("passes values through unchanged", function()
    assert.same({ 1, 2, 3 }, await(Stream.from({ 1, 2, 3 }):progress({ label = "items", total = 3 }):collect()))
  end)

  it("formats a bar with count, rate and ETA", function()
    local line = require("luasync.stream.progress").line
    assert.equals("load [######------------------]  25% 25/100 12.5/s ETA 6.0s", line("load", 25, 100, 2, false))
    assert.equals("load [########################] 100% 100/100 200/s in 0.5s", line("load", 100, 100, 0.5, true))
    assert.equals("x 13 0.2/s in 1m05s", line("x", 13, nil, 65, true))
    assert.equals("x 13 1.3/s in 10s", line("x", 13, nil, 9.96, true))
    assert.equals("x [############------------]  50% 9000/18000 2.0/s ETA 1h15m", line("x", 9000, 18000, 4500, false))
    assert.equals("rows 1500 750/s", line("rows", 1500, nil, 2, false))
    assert.equals("rows 1500 750/s in 2.0s", line("rows", 1500, nil, 2, true))
  end)
end)
