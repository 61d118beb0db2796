-- The test runner checking itself: hook order, async bodies, the assert functions.
-- (Failure output, timeouts and deadlocks are covered by tests/cli/test_runner.py.)

local log = {}
local function note(s) return function() log[#log + 1] = s end end

describe("hooks", function()
  setup(note("setup"))
  teardown(note("teardown"))
  before_each(note("before outer"))
  after_each(note("after outer"))

  it("first", note("it first"))

  describe("nested", function()
    setup(function()
      sleep(0.001)  -- hooks are tasks too
      log[#log + 1] = "setup nested"
    end)
    before_each(note("before nested"))
    after_each(function()
      await(Promise.delay(0.001))
      log[#log + 1] = "after nested"
    end)
    teardown(note("teardown nested"))

    it("second", note("it second"))
  end)
end)

describe("hook order", function()
  it("was recorded as expected", function()
    assert.same({
      "setup",
      "before outer", "it first", "after outer",
      "setup nested",
      "before outer", "before nested", "it second", "after nested", "after outer",
      "teardown nested",
      "teardown",
    }, log)
  end)
end)

describe("async bodies", function()
  it("can sleep", function()
    local t0 = require("luasync.core").hrtime()
    sleep(0.01)
    assert.truthy(require("luasync.core").hrtime() - t0 >= 0.009)
  end)

  it("can await promises and tasks", function()
    local a = spawn(function() sleep(0.002) return "a" end)
    local b = Promise.delay(0.001, "b")
    assert.same({ "a", "b" }, Promise.all({ a, b }):await())
  end)

  it("may be an async function", async(function()
    assert.equals(3, await(Promise.resolve(3)))
  end))

  it("sees setTimeout callbacks", function()
    local fired = Promise.new(function(resolve) setTimeout(function() resolve("yes") end, 0.001) end)
    assert.equals("yes", await(fired))
  end)
end)

describe("assert", function()
  it("equals compares with ==", function()
    assert.equals(1, 1)
    assert.equals("x", "x")
    local t = {}
    assert.equals(t, t)
    local e = assert.has_error(function() assert.equals({}, {}) end, "expected {}, got {}")
    assert.same({ "the tables are deeply equal but not the same table (use assert.same)" }, e.details)
  end)

  it("same compares deeply and names the first difference", function()
    assert.same({ 1, { name = "a" } }, { 1, { name = "a" } })
    local e = assert.has_error(function()
      assert.same({ { name = "x" }, { name = "a" } }, { { name = "x" }, { name = "b" } })
    end)
    assert.equals('at [2].name: expected "a", got "b"', e.message)
    assert.matches("runner_spec%.lua:%d+$", e.where)
  end)

  it("same handles cycles", function()
    local a, b = { n = 1 }, { n = 1 }
    a.self, b.self = a, b
    assert.same(a, b)
  end)

  it("truthy, falsy, is_nil", function()
    assert.truthy(0)
    assert.truthy("")
    assert.falsy(false)
    assert.falsy(nil)
    assert.is_nil(nil)
    assert.has_error(function() assert.truthy(false) end, "expected a truthy value, got false")
    assert.has_error(function() assert.falsy(0) end, "expected a falsy value, got 0")
    assert.has_error(function() assert.is_nil(false) end, "expected nil, got false")
  end)

  it("has_error checks the message text", function()
    assert.has_error(function() error("disk full") end, "disk full")
    assert.has_error(function() assert.has_error(function() end) end, "expected an error, got none")
    assert.has_error(function() assert.has_error(function() error("a") end, "b") end,
                     'expected an error containing "b"')
  end)

  it("rejects awaits and checks the reason", function()
    local reason = assert.rejects(Promise.reject("gone"), "gone")
    assert.equals("gone", reason)
    assert.rejects(function() sleep(0.001); error("late failure") end, "late failure")
    local e = assert.has_error(function() assert.rejects(Promise.resolve(1)) end)
    assert.equals("expected a rejection, got fulfilled with 1", e.message)
  end)

  it("keeps Lua's assert when called", function()
    assert.equals(5, (assert(5, "unused")))
    local ok, msg = pcall(assert, false, "plain message")
    assert.is_false(ok)
    assert.equals("plain message", msg)
  end)
end)

pending("a pending test is reported as skipped")
