-- luasync.test: the `luasync test` runner (API.md section 9, docs/testing.md).
--
-- The C++ side finds the files and calls start(opts) from the scheduler's
-- dispatch. A driver task then loads each file (describe bodies run at load
-- time and collect a tree of blocks and tests), and runs the tree: every hook
-- and every `it` body is a task of its own ("a step", luasync.test.step) that
-- the driver awaits, with a timeout and deadlock detection.
local core = require("luasync.core")
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local callable = Promise._callable
local async = require("luasync.async")
local errors = require("luasync.errors")
local assert_mod = require("luasync.test.assert")
local reporters = require("luasync.test.reporters")
local step = require("luasync.test.step")

local spawn, run_step = async.spawn, step.run
local REJECTED = Promise.REJECTED
local format = string.format

local M = {}

local cfg = { reporter = "text", output = "", filter = "", timeout = 5 }
local reporter
local loading = nil        -- block collecting describe/it calls while a file loads
local running = false      -- true while tests run: describe/it/hooks are refused
local current = nil        -- result record that failures (unhandled rejections) go to
local finished, exit_code = false, 0
local stats = { passed = 0, failed = 0, skipped = 0, time = 0, files = {} }
local check_leaks = os.getenv("LUASYNC_CHECK_LEAKS") == "1"

---------------------------------------------------------------------------
-- Failures

-- "file:12: message" -> "file:12", "message"
local function split_where(msg)
  local w, rest = msg:match("^([^\n]-:%d+): (.*)$")
  if w and not w:find(" ", 1, true) then return w, rest end
  return nil, msg
end

--- failure_of(err, trace) -> { message=, where=, details=, kind= }
local function failure_of(err, trace)
  if assert_mod.is_assertion(err) then
    return { message = err.message, where = err.where, details = err.details, kind = "assertion" }
  end
  if getmetatable(err) == step.Stop then
    return { message = err.message, details = err.details, kind = err.kind }
  end
  local msg = errors.describe(err)
  local w, rest = split_where(msg)
  local f = { message = rest, where = w, kind = "error" }
  trace = step.user_frames(trace)
  if not w and trace[1] then f.where = trace[1].file .. ":" .. trace[1].line end
  if #trace > 1 then f.details = { errors.format(trace) } end
  return f
end

-- Records a failure on result r; the first one gives the message.
local function fail(r, prefix, err, trace)
  local f = failure_of(err, trace)
  if prefix then f.message = prefix .. f.message end
  if r.status ~= "fail" then
    r.status = "fail"
    r.message, r.where, r.kind = f.message, f.where, f.kind
    if f.details then r.details = { unpack(f.details) } end
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
  fail(current, "unhandled rejection: ", p[2], p._trace)
  return true
end
step.on_unhandled = M.on_unhandled

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
  if not callable(fn) then
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
  local lines = step.parked_lines(baseline)
  if #lines > 0 then
    fail(r, nil, step.stop("leak", format("left %d task%s parked", #lines, #lines == 1 and "" or "s"), lines))
  end
  if not had_timer and core.handles().timer then
    fail(r, nil, step.stop("leak", "left a timer running"))
  end
  if #lines > 0 then step.cancel_parked(baseline, "leaked by a test") end
end

local function run_test(t, chain)
  local r = { name = t.full, status = "pass" }
  current = r
  local t0 = core.hrtime()
  local baseline, had_timer
  if check_leaks then baseline, had_timer = step.baseline(), core.handles().timer ~= nil end
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
    local why = step.stop("hook", reporters.headline(setup_failed))
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

-- Modules beside a test file are found by require, as beside a script.
local function add_to_path(path)
  local dir = path:match("^(.*/)") or "./"
  local entry = dir .. "?.lua;" .. dir .. "?/init.lua;"
  if package.path:sub(1, #entry) ~= entry then package.path = entry .. package.path end
end

local function load_file(path, root)
  add_to_path(path)
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
  step.driver = sched.current()
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
  step.timeout = cfg.timeout
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
  if step.loop_empty() then return -1 end
  io.stderr:write("luasync test: internal error: the runner stalled\n")
  return 70
end

M.assert = assert_mod
return M
