-- luasync.boot: installs the globals and returns the hooks the C++ runtime calls.
local core = require("luasync.core")
local sched = require("luasync.sched")
local Promise = require("luasync.promise")
local async = require("luasync.async")
local errors = require("luasync.errors")
require("luasync.coroutines")

local hooks = {}
local options = {}
local main_promise = nil
local exit_code = 0
local run, take_unhandled = sched.run, Promise._take_unhandled

---------------------------------------------------------------------------
-- Output: print, io.write, io.stdout share one ordered buffer.
local write = core.write
local tostring, select = tostring, select

function print(...)
  local n = select("#", ...)
  if n == 1 then
    write(1, tostring((...)), "\n")
    return
  end
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  write(1, table.concat(parts, "\t"), "\n")
end

local function file_proxy(fd, name)
  local f = {}
  local mt = { __index = f, __tostring = function() return "file (" .. name .. ")" end, __name = "FILE*" }
  function f:write(...)
    for i = 1, select("#", ...) do
      local v = select(i, ...)
      local tv = type(v)
      if tv ~= "string" and tv ~= "number" then
        error("bad argument #" .. i .. " to 'write' (string expected, got " .. tv .. ")", 2)
      end
      write(fd, tostring(v))
    end
    return self
  end
  function f:flush() if fd == 1 then core.flush() end return self end
  function f:setvbuf() return true end
  function f:close() return nil, "cannot close standard file" end
  function f:lines() error(name .. ": use stdin:lines() for input", 2) end
  return setmetatable({}, mt)
end
io.stdout = file_proxy(1, "stdout")
io.stderr = file_proxy(2, "stderr")
function io.write(...) io.stdout:write(...) return io.stdout end
function io.flush() core.flush() end
local real_output = io.output
function io.output(f)
  if f == nil then return io.stdout end
  return real_output(f)
end

-- dofile is a C function, and no task can suspend through one: a script run by
-- dofile could not await. This one is plain Lua.
function dofile(path)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 2) end
  return chunk()
end

-- Every exit that skips the normal shutdown (os.exit, uncaught errors) runs the Lua
-- shutdown hook first (--llm-usage), once.
local shutdown_done = false
local function exit_now(code)
  if not shutdown_done then pcall(hooks.shutdown) end
  core.exit(code)
end

local real_exit = os.exit
os.exit = function(code)
  if code == true or code == nil then code = 0 elseif code == false then code = 1 end
  exit_now(tonumber(code) or 0)
end
local _ = real_exit

---------------------------------------------------------------------------
-- Globals

_G.async = async.async
_G.await = async.await
_G.spawn = async.spawn
_G.go = async.go
_G.sleep = async.sleep
_G.asyncTry = async.asyncTry
_G.try = async.try
_G.batch = async.batch
_G.setTimeout = async.setTimeout
_G.setInterval = async.setInterval
_G.clearTimeout = async.clearTimeout
_G.clearInterval = async.clearInterval
_G.Promise = Promise

-- Modules loaded on first use, so startup stays small.
local lazy = {
  Channel = { "luasync.channel" },
  Stream = { "luasync.stream" },
  json = { "luasync.json" },
  fs = { "luasync.fs" },
  process = { "luasync.process" },
  stdin = { "luasync.stdio", "stdin" },
  stdout = { "luasync.stdio", "stdout" },
  stderr = { "luasync.stdio", "stderr" },
  readFileStream = { "luasync.fs", "readStream" },
  http = { "luasync.http" },
  fetch = { "luasync.http", "fetch" },
  llm = { "luasync.llm" },
  llmBridge = { "luasync.llm", "bridge" },
}
setmetatable(_G, {
  __index = function(t, k)
    local spec = lazy[k]
    if spec == nil then return nil end
    local ok, mod = pcall(require, spec[1])
    if not ok then
      if tostring(mod):find("module '" .. spec[1] .. "' not found", 1, true) then return nil end
      error(mod, 2)
    end
    local v = mod
    if spec[2] then v = mod[spec[2]] end
    rawset(t, k, v)
    return v
  end,
})

---------------------------------------------------------------------------
-- Error reporting

local function report(prefix, e, frames)
  write(2, errors.report(prefix, e, frames))
end
hooks.report = report

local function check_unhandled()
  local list = take_unhandled()
  if not list then return end
  for _, p in ipairs(list) do
    -- under `luasync test`, the runner fails the running test instead
    if not p._cancelled and not (hooks.test and hooks.test.on_unhandled(p)) then
      report("luasync: unhandled rejection: ", p[2], p._trace)
      exit_code = 1
      if options.strict ~= false then exit_now(1) end
    end
  end
end

sched.set_hooks(function(rec, err)
  report("luasync: internal error in a task: ", err, errors.capture(0, sched.task_co(rec)))
  exit_now(70)
end)

--- dispatch(f, ...): entry point for every callback from the loop.
function hooks.dispatch(f, ...)
  local r = f(...)
  run()
  check_unhandled()
  return r
end

function hooks.start(chunk, opts)
  options = opts
  if chunk == nil then
    hooks.test = require("luasync.test")
    return hooks.test.start(opts)
  end
  main_promise = async.spawn(chunk, unpack(arg or {}))
  main_promise._main = true
  Promise._add_reaction(main_promise, function(_, st, v)
    if st == Promise.REJECTED then
      local e = v
      if type(e) == "table" and rawget(e, "kind") == "cancelled" then return end  -- (rawget: __index may raise)
      report("", e, main_promise._trace)
      exit_now(1)
    end
  end)
end

local function where(rec)
  local frames = errors.capture(0, sched.task_co(rec))
  local f = frames[1]
  if f then return f.file .. ":" .. f.line end
  -- the task's own frame is gone: it waits in a tail call (return ch:receive())
  local origin = sched.task_origin(rec)
  if origin then return origin, " (in a tail call of the function defined there)" end
  return "?"
end

local function describe_wait(op)
  if type(op) == "table" then
    if getmetatable(op) == Promise then return "a promise" end
    if op.what then return op.what end
  end
  return "an event"
end

--- Lines describing every parked task: "  file:line: main task waits on ..."
function hooks.parked_lines()
  local lines = {}
  for _, rec in ipairs(sched.parked()) do
    local who = (main_promise and sched.task_promise(rec) == main_promise) and "main task" or "task"
    local at, note = where(rec)
    lines[#lines + 1] = string.format("  %s: %s waits on %s%s", at, who, describe_wait(sched.task_op(rec)), note or "")
  end
  return lines
end

function hooks.on_loop_empty()
  if hooks.test then return hooks.test.on_loop_empty() end
  if main_promise and main_promise[1] == Promise.PENDING then
    if sched.hold_weak_timers() then return -1 end  -- a Channel.after may still wake it
    local lines = hooks.parked_lines()
    local n = #lines
    write(2, string.format("deadlock: %d task%s blocked forever\n", n, n == 1 and "" or "s"))
    if n > 0 then write(2, table.concat(lines, "\n"), "\n") end
    return 2
  end
  return exit_code
end

function hooks.on_timer()
  sched.on_timer()
end

function hooks.on_timeout()
  local parts = {}
  local handles = core.handles()
  for name, n in pairs(handles) do parts[#parts + 1] = n .. " " .. name end
  table.sort(parts)
  local lines = hooks.parked_lines()
  local msg = string.format("luasync: timed out after %gs", options.timeout or 0)
  if #parts > 0 then msg = msg .. "; pending: " .. table.concat(parts, ", ") end
  if #lines > 0 then msg = msg .. "\n" .. table.concat(lines, "\n") end
  write(2, msg, "\n")
  return 124
end

-- process.onSignal registers here: signal number -> list of functions.
hooks.signal_handlers = {}

function hooks.on_signal(signum)
  local list = hooks.signal_handlers[signum]
  if list and #list > 0 then
    for _, fn in ipairs(list) do async.spawn(fn, signum) end
    return -1
  end
  -- Cancel in-flight work, then exit 128+N.
  if main_promise then main_promise:cancel("interrupted") end
  for _, rec in ipairs(sched.parked()) do
    local rp = sched.task_promise(rec)
    if Promise.is(rp) then
      rp:cancel("interrupted")
    elseif rp == sched.GO then
      sched.cancel(rec, errors.cancelled("interrupted"))
    end
  end
  return 128 + signum
end

function hooks.shutdown()
  shutdown_done = true
  -- --llm-usage: token totals per model, on stderr
  if options.llm_usage then
    local usage = package.loaded["luasync.llm.usage"]
    write(2, usage and usage.summary(usage.total) or "llm usage: no requests\n")
  end
end

package.loaded["luasync.boot"] = hooks
return hooks
