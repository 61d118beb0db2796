-- luasync.test: the `luasync test` runner (API.md section 9, docs/testing.md).
--
-- The C++ side finds the files and calls start(opts) from the scheduler's
-- dispatch. A driver task then loads each file (describe bodies run at load
-- time and collect a tree of blocks and tests), and runs the tree: every hook
-- and every `it` body is a task of its own ("a step") that the driver awaits.
--
-- A step ends when its task settles, when it runs past --test-timeout, or when
-- it is deadlocked. The watchdog timer of a step checks both: when it fires and
-- nothing else could ever make progress (no other referenced libuv handle, no
-- other timer, no request in flight, empty ready queue), the step is
-- deadlocked. The watchdog's own entry is already off the timer heap then, so
-- core.loop_alive() tells exactly whether anything else keeps the loop running.
local core = require("luasync.core")
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local async = require("luasync.async")
local errors = require("luasync.errors")
local assert_mod = require("luasync.test.assert")
local reporters = require("luasync.test.reporters")

local spawn, await = async.spawn, Promise.await
local PENDING, REJECTED = Promise.PENDING, Promise.REJECTED
local format, concat = string.format, table.concat

local M = {}

local cfg = { reporter = "text", output = "", filter = "", timeout = 5 }
local reporter
local loading = nil        -- block collecting describe/it calls while a file loads
local running = false      -- true while tests run: describe/it/hooks are refused
local current = nil        -- result record that failures (unhandled rejections) go to
local step = nil           -- the step being awaited
local driver = nil         -- the driver task's fiber record
local finished, exit_code = false, 0
local stats = { passed = 0, failed = 0, skipped = 0, time = 0, files = {} }
local check_leaks = os.getenv("LUASYNC_CHECK_LEAKS") == "1"

---------------------------------------------------------------------------
-- Failures

local Stop = {}  -- failures made by the runner itself (timeout, deadlock)
Stop.__index = Stop
Stop.__tostring = function(e) return e.message end

-- "file:12: message" -> "file:12", "message"
local function split_where(msg)
  local w, rest = msg:match("^([^\n]-:%d+): (.*)$")
  if w and not w:find(" ", 1, true) then return w, rest end
  return nil, msg
end

-- Frames outside luasync's own Lua files (they are kept when LUASYNC_LUA_DIR
-- loads the modules from another path).
local own_dir = debug.getinfo(1, "S").short_src:match("^(.*/)luasync/test%.lua$")
local function user_frames(trace)
  local out = {}
  for _, fr in ipairs(trace or {}) do
    if not (own_dir and fr.file:sub(1, #own_dir + 8) == own_dir .. "luasync/") then out[#out + 1] = fr end
  end
  return out
end

--- failure_of(err, trace) -> { message=, where=, details=, kind= }
local function failure_of(err, trace)
  if assert_mod.is_assertion(err) then
    return { message = err.message, where = err.where, details = err.details, kind = "assertion" }
  end
  if getmetatable(err) == Stop then
    return { message = err.message, details = err.details, kind = err.kind }
  end
  local msg = errors.describe(err)
  local w, rest = split_where(msg)
  local f = { message = rest, where = w, kind = "error" }
  if not w and trace and trace[1] then
    f.where = trace[1].file .. ":" .. trace[1].line
  end
  trace = user_frames(trace)
  if #trace > 1 then f.details = { errors.format(trace) } end
  return f
end

-- Records a failure on result r; the first one gives the message.
local function fail(r, prefix, err, trace)
  local f = failure_of(err, trace)
  if prefix then f.message = prefix .. f.message end
  if r.status ~= "fail" then
    r.status = "fail"
    r.message, r.where, r.details, r.kind = f.message, f.where, f.details, f.kind
    if r.details then r.details = { unpack(r.details) } end
  else
    r.details = r.details or {}
    r.details[#r.details + 1] = "also: " .. reporters.headline(f)
    for _, d in ipairs(f.details or {}) do r.details[#r.details + 1] = d end
  end
end

--- Called for an unhandled rejection (from boot's check, or after a step).
-- Returns true when it failed the running test.
function M.on_unhandled(p)
  if not current or finished then return false end
  fail(current, "unhandled rejection: ", p._value, p._trace)
  return true
end

local function take_unhandled()
  local list = Promise._take_unhandled()
  if not list then return end
  for _, p in ipairs(list) do
    if not p._cancelled and not M.on_unhandled(p) then
      io.stderr:write(errors.report("luasync: unhandled rejection: ", p._value, p._trace))
    end
  end
end

---------------------------------------------------------------------------
-- Steps: one hook or test body, run as a task with a timeout

local function parked_lines(baseline)
  local lines = {}
  for _, rec in ipairs(sched.parked()) do
    if rec ~= driver and not (baseline and baseline[rec]) then
      local fr = user_frames(errors.capture(0, rec.co))[1]
      local at = fr and (fr.file .. ":" .. fr.line) or "?"
      local op, what = rec.op, "an event"
      if type(op) == "table" then
        if getmetatable(op) == Promise then what = "a promise" elseif op.what then what = op.what end
      end
      lines[#lines + 1] = format("%s: task waits on %s", at, what)
    end
  end
  return lines
end

local function cancel_parked(baseline, why)
  for _, rec in ipairs(sched.parked()) do
    if rec ~= driver and not (baseline and baseline[rec]) then
      if rec.promise then rec.promise:cancel(why) else sched.cancel(rec, errors.cancelled(why)) end
    end
  end
end

local function end_step(s, outcome)
  if s.done._state ~= PENDING then return end
  if s.timer then sched.cancel_timer(s.timer); s.timer = nil end
  if outcome ~= "settled" then
    local lines = parked_lines(s.baseline)
    local n = #lines
    if outcome == "timeout" then
      s.failure = setmetatable({ kind = "timeout", message = format("timed out after %gs", cfg.timeout),
                                 details = n > 0 and lines or nil }, Stop)
    else
      s.failure = setmetatable({ kind = "deadlock",
                                 message = format("deadlock: %d task%s blocked forever", n, n == 1 and "" or "s"),
                                 details = n > 0 and lines or nil }, Stop)
    end
    s.p:cancel(outcome == "timeout" and "test timed out" or "test deadlocked")
    cancel_parked(s.baseline, "test ended")
  end
  Promise._fulfill(s.done, true)
end

-- Nothing besides the watchdog could wake a task: no referenced handle, no
-- request in flight (fs, dns), nothing queued.
local loop_alive = core.loop_alive or function() return next(core.handles()) ~= nil end
local function quiet()
  return sched.pending() == 0 and not loop_alive()
end

local watch
local function tick(s)
  s.timer = nil
  if s.done._state ~= PENDING then return end
  if core.now() >= s.deadline then return end_step(s, "timeout") end
  if quiet() then return end_step(s, "deadlock") end
  watch(s)
end

watch = function(s)
  s.interval = math.min(s.interval * 2, 0.2)
  local left = (s.deadline - core.now()) / 1000
  s.timer = sched.add_timer(math.max(0, math.min(s.interval, left)), tick, s)
end

local function on_settled(s) end_step(s, "settled") end

local function baseline_parked()
  local set = {}
  for _, rec in ipairs(sched.parked()) do set[rec] = true end
  return set
end

-- Lets the ready queue drain before the driver goes on, so that a rejection
-- counts as unhandled under the same rule as outside tests (still unhandled
-- once the queue is empty) and is charged to the step that caused it.
local function drain()
  repeat
    local q = Promise._new()
    sched.defer(Promise._fulfill, q, true)
    await(q)
  until sched.pending() == 0
end

--- run_step(fn, ...) -> true, or false, err, trace
local function run_step(fn, ...)
  local baseline = baseline_parked()
  local p = spawn(fn, ...)
  p._handled = true
  if p._state == PENDING then
    local s = { p = p, done = Promise._new(), deadline = core.now() + cfg.timeout * 1000,
                interval = 0.005, baseline = baseline }
    step = s
    Promise._add_reaction(p, on_settled, s)
    watch(s)
    await(s.done)
    step = nil
    if s.failure then
      drain()
      take_unhandled()
      return false, s.failure
    end
  end
  drain()
  take_unhandled()
  if p._state == REJECTED then return false, p._value, p._trace end
  return true
end

---------------------------------------------------------------------------
-- Collecting: describe / it / hooks

local function new_block(name, parent, file)
  local full = name
  if parent and parent.full then full = parent.full .. " > " .. name end
  return { name = name, full = full, parent = parent, file = file, children = {},
           before_each = {}, after_each = {}, setup = {}, teardown = {} }
end

local function collecting(what)
  if running then error(what .. "() cannot be called while tests run", 3) end
  if not loading then error(what .. "() must be called from a test file", 3) end
  return loading
end

local function check_fn(what, fn)
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call) then
    error(what .. ": expected a function, got " .. type(fn), 3)
  end
end

function M.describe(name, fn)
  local parent = collecting("describe")
  check_fn("describe", fn)
  local b = new_block(tostring(name), parent, parent.file)
  parent.children[#parent.children + 1] = b
  loading = b
  local ok, err = pcall(fn)
  loading = parent
  if not ok then error(err, 0) end
end

local function add_test(parent, name, fn, is_pending)
  name = tostring(name)
  local full = parent.full and (parent.full .. " > " .. name) or name
  parent.children[#parent.children + 1] = { test = true, name = name, full = full, fn = fn, pending = is_pending }
end

function M.it(name, fn)
  local parent = collecting("it")
  if fn == nil then return add_test(parent, name, nil, true) end
  check_fn("it", fn)
  add_test(parent, name, fn, false)
end

function M.pending(name)
  add_test(collecting("pending"), name, nil, true)
end

local function hook(kind)
  return function(fn)
    local b = collecting(kind)
    check_fn(kind, fn)
    local list = b[kind]
    list[#list + 1] = fn
  end
end
M.before_each, M.after_each = hook("before_each"), hook("after_each")
M.setup, M.teardown = hook("setup"), hook("teardown")

---------------------------------------------------------------------------
-- Running

local function matches(full)
  local f = cfg.filter
  if f == "" then return true end
  if full:find(f, 1, true) then return true end  -- plain text first: "get (all)" works as typed
  local ok, found = pcall(string.find, full, f)  -- then as a Lua pattern
  return ok and found ~= nil
end

-- --filter: the full name contains the text, or matches it as a Lua pattern.
-- Marks which tests run; returns how many in the block (and below) do.
local function select_tests(b)
  local n = 0
  for _, c in ipairs(b.children) do
    if c.test then
      c.selected = matches(c.full)
      if c.selected then n = n + 1 end
    else
      n = n + select_tests(c)
    end
  end
  b.nselected = n
  return n
end

local file_rec  -- { path=, results=, time= } of the file being run

local function report(r)
  r.file = file_rec.path
  file_rec.results[#file_rec.results + 1] = r
  if r.status == "pass" then stats.passed = stats.passed + 1
  elseif r.status == "skip" then stats.skipped = stats.skipped + 1
  else stats.failed = stats.failed + 1 end
  reporter.result(r)
end

local function leak_check(r, baseline, had_timer)
  local lines = parked_lines(baseline)
  if #lines > 0 then
    local e = setmetatable({ kind = "leak", message = format("left %d task%s parked", #lines, #lines == 1 and "" or "s"),
                             details = lines }, Stop)
    fail(r, nil, e)
  end
  if not had_timer and core.handles().timer then
    fail(r, nil, setmetatable({ kind = "leak", message = "left a timer running" }, Stop))
  end
  if #lines > 0 then cancel_parked(baseline, "leaked by a test") end
end

local function run_test(t, chain)
  local r = { name = t.full, status = "pass" }
  current = r
  local t0 = core.hrtime()
  local baseline, had_timer
  if check_leaks then baseline, had_timer = baseline_parked(), core.handles().timer ~= nil end
  local levels, ok, err, trace = 0, true, nil, nil
  for i, b in ipairs(chain) do
    levels = i
    for _, fn in ipairs(b.before_each) do
      ok, err, trace = run_step(fn)
      if not ok then fail(r, "before_each failed: ", err, trace) break end
    end
    if not ok then break end
  end
  if ok then
    ok, err, trace = run_step(t.fn)
    if not ok then fail(r, nil, err, trace) end
  end
  for i = levels, 1, -1 do
    for _, fn in ipairs(chain[i].after_each) do
      ok, err, trace = run_step(fn)
      if not ok then fail(r, "after_each failed: ", err, trace) end
    end
  end
  if check_leaks then leak_check(r, baseline, had_timer) end
  r.time = core.hrtime() - t0
  current = nil
  report(r)
end

local function fail_all(b, why)
  for _, c in ipairs(b.children) do
    if c.test then
      if c.selected then
        if c.pending then report({ name = c.full, status = "skip" })
        else
          local r = { name = c.full, status = "pass", time = 0 }
          fail(r, nil, why)
          report(r)
        end
      end
    else
      fail_all(c, why)
    end
  end
end

local function run_block(b, chain)
  if b.nselected == 0 then return end
  chain[#chain + 1] = b
  local setup_failed
  for _, fn in ipairs(b.setup) do
    local r = { name = (b.full or file_rec.path) .. " (setup)", status = "pass" }
    current = r
    local ok, err, trace = run_step(fn)
    current = nil
    if not ok then fail(r, "setup failed: ", err, trace) end
    if r.status == "fail" then
      setup_failed = r
      break
    end
  end
  if setup_failed then
    local why = setmetatable({ kind = "hook", message = reporters.headline(setup_failed) }, Stop)
    fail_all(b, why)
  else
    for _, c in ipairs(b.children) do
      if not c.test then
        run_block(c, chain)
      elseif c.selected then
        if c.pending then report({ name = c.full, status = "skip", time = 0 })
        else run_test(c, chain) end
      end
    end
    for _, fn in ipairs(b.teardown) do
      local r = { name = (b.full or file_rec.path) .. " (teardown)", status = "pass", time = 0 }
      current = r
      local ok, err, trace = run_step(fn)
      current = nil
      if not ok then fail(r, "teardown failed: ", err, trace) end
      if r.status == "fail" then report(r) end
    end
  end
  chain[#chain] = nil
end

local function load_file(path, root)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  loading = root
  chunk()
end

local function run_file(path)
  file_rec = { path = path, results = {} }
  stats.files[#stats.files + 1] = file_rec
  reporter.file_start(path)
  local t0 = core.hrtime()
  local root = new_block(nil, nil, path)
  local lr = { name = path .. " (load)", status = "pass", time = 0 }
  current = lr
  local ok, err, trace = run_step(load_file, path, root)
  current, loading = nil, nil
  if not ok or lr.status == "fail" then
    if not ok then fail(lr, "cannot load: ", err, trace) end
    lr.time = core.hrtime() - t0
    report(lr)
  else
    select_tests(root)
    running = true
    run_block(root, {})
    running = false
  end
  file_rec.time = core.hrtime() - t0
end

local function driver_main(files)
  driver = sched.current()
  local t0 = core.hrtime()
  for _, path in ipairs(files) do run_file(path) end
  stats.time = core.hrtime() - t0
  local wrote = reporter.finish(stats)
  exit_code = (stats.failed > 0 or not wrote) and 1 or 0
  finished = true
  if #files == 0 then io.stderr:write("luasync test: no *_test.lua or *_spec.lua files found\n") end
  -- Something a test left behind (an interval, a server) would keep the loop alive.
  if next(core.handles()) ~= nil then core.exit(exit_code) end
end

---------------------------------------------------------------------------
-- Hooks called by the runtime (boot.lua)

function M.start(opts)
  local argv = opts.test_argv or {}
  for i = 1, #argv - 1, 2 do
    local k, v = argv[i], argv[i + 1]
    if k == "test_timeout" then cfg.timeout = tonumber(v) or 5 else cfg[k] = v end
  end
  local make = reporters[cfg.reporter] or reporters.text
  local color = cfg.output == "" and core.isatty(1) and (os.getenv("NO_COLOR") or "") == ""
  reporter = make({ output = cfg.output, color = color })
  _G.describe, _G.it, _G.pending = M.describe, M.it, M.pending
  _G.before_each, _G.after_each, _G.setup, _G.teardown = M.before_each, M.after_each, M.setup, M.teardown
  _G.assert = assert_mod
  local p = spawn(driver_main, opts.test_files or {})
  Promise._add_reaction(p, function(_, st, v)
    if st == REJECTED then
      io.stderr:write(errors.report("luasync test: internal error: ", v, p._trace))
      core.exit(70)
    end
  end)
end

function M.on_loop_empty()
  if finished then return exit_code end
  if step then
    end_step(step, "deadlock")
    return -1
  end
  io.stderr:write("luasync test: internal error: the runner stalled\n")
  return 70
end

M.assert = assert_mod
return M
