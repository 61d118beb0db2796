-- luasync.process: the process global (API.md section 6): child processes,
-- the environment, exit and signal handlers. Native part: src/io/mod_process.cpp.
--
-- No shell is involved: cmd is looked up on PATH and args reach the child as
-- given. Children still running when luasync exits (os.exit, Ctrl-C, an
-- uncaught error) are sent SIGTERM.
local native = require("luasync.native.process")
local core = require("luasync.core")
local Promise = require("luasync.promise")
local errors = require("luasync.errors")
local iobase = require("luasync.iobase")
local async = require("luasync.async")

local type, tostring, error, pairs, ipairs, setmetatable = type, tostring, error, pairs, ipairs, setmetatable
local await, spawn_task = Promise.await, async.spawn

local M = {}

---------------------------------------------------------------------------
-- Environment: a plain table, read once; children inherit its current content.

local env = {}
for _, kv in ipairs(native.environ()) do
  local eq = kv:find("=", 2, true)
  if eq then env[kv:sub(1, eq - 1)] = kv:sub(eq + 1) end
end
M.env = env
M.pid = native.pid()
M.platform = jit and jit.os and jit.os:lower() or "unknown"

--- process.exit(code): flush output and end the process (same as os.exit)
function M.exit(code) return os.exit(code) end

local function env_list(api, opts)
  local merged = {}
  if not opts.clear_env then
    for k, v in pairs(M.env) do merged[k] = v end
  end
  local extra = opts.env
  if extra ~= nil then
    if type(extra) ~= "table" then error(api .. ": env must be a table", 4) end
    for k, v in pairs(extra) do
      if v == false then merged[k] = nil else merged[tostring(k)] = tostring(v) end
    end
  end
  local list = {}
  for k, v in pairs(merged) do list[#list + 1] = k .. "=" .. v end
  table.sort(list)
  return list
end

local function process_error(api, cmd, code, msg)
  return errors.new("process", string.format("%s: cannot run '%s': %s (%s)", api, cmd, msg, code),
    { code = code, cmd = cmd })
end

local function check_args(api, cmd, args, opts)
  if type(cmd) ~= "string" or cmd == "" then error(api .. ": expected a command name", 3) end
  local argv = {}
  if args ~= nil then
    if type(args) ~= "table" then error(api .. ": args must be a table of strings", 3) end
    for i = 1, args.n or #args do
      local a = args[i]
      local t = type(a)
      if t ~= "string" and t ~= "number" then
        error(api .. ": args[" .. i .. "] must be a string, got " .. t, 3)
      end
      argv[i] = tostring(a)
    end
  end
  if opts ~= nil and type(opts) ~= "table" then error(api .. ": opts must be a table", 3) end
  return argv, opts or {}
end

---------------------------------------------------------------------------
-- Child handles

local Child = {}
Child.__index = Child
Child.__name = "luasync.Child"
Child.__tostring = function(c) return "child process " .. tostring(c.pid) end

local function on_exit(c, status, signum)
  local result
  if signum ~= 0 then
    result = { code = nil, signal = native.signame(signum) or ("SIG" .. signum) }
  else
    result = { code = status }
  end
  c.exit = result
  local ws = c._waits
  c._waits = {}
  for i = 1, #ws do Promise._fulfill(ws[i], { code = result.code, signal = result.signal }) end
end

local function spawn_child(api, cmd, args, opts)
  local argv
  argv, opts = check_args(api, cmd, args, opts)
  if opts.cwd ~= nil and type(opts.cwd) ~= "string" then error(api .. ": cwd must be a string", 3) end
  local c = setmetatable({ _waits = {} }, Child)
  local nopts = { cwd = opts.cwd, env = env_list(api, opts), stdin = opts.stdin,
                  stdout = opts.stdout, stderr = opts.stderr }
  local proc, pid, sin, sout, serr = native.spawn(cmd, argv, nopts, on_exit, c)
  if not proc then error(process_error(api, cmd, pid, sin), 3) end
  c._proc, c.pid = proc, pid
  local function reader_error(what)
    return function(code, msg)
      return errors.new("io", string.format("%s %s: %s (%s)", cmd, what, msg, code), { code = code })
    end
  end
  if sin then
    c.stdin = iobase.writable(sin, cmd .. " stdin", reader_error("stdin"))
  end
  if sout then
    c._out = iobase.source(sout, "process stdout read", reader_error("stdout"))
    c.stdout = iobase.stream(c._out)
  end
  if serr then
    c._err = iobase.source(serr, "process stderr read", reader_error("stderr"))
    c.stderr = iobase.stream(c._err)
  end
  return c
end

--- process.spawn(cmd, args, {cwd=, env=, clear_env=, stdin=, stdout=, stderr=}) -> child
-- stdin/stdout/stderr: "pipe" (default) | "inherit" | "ignore". With pipes,
-- child.stdin is a writable and child.stdout/child.stderr are Streams of chunks.
-- Raises {kind="process", code="ENOENT", ...} when the program cannot be run.
function M.spawn(cmd, args, opts)
  return spawn_child("process.spawn", cmd, args, opts)
end

--- child:wait() -> Promise of {code=, signal=} (code is nil when a signal ended it)
function Child:wait()
  local p = Promise._new()
  local r = self.exit
  if r then
    Promise._fulfill(p, { code = r.code, signal = r.signal })
  else
    self._waits[#self._waits + 1] = p
  end
  return p
end

--- child:kill(sig?) -> true, or false once the child is gone. sig: "SIGTERM" (default), "TERM", 15...
function Child:kill(sig)
  local signum = native.signum(sig == nil and "SIGTERM" or sig)
  if not signum then error("kill: unknown signal " .. tostring(sig), 2) end
  if self.exit then return false end
  return self._proc:kill(signum) == true
end

---------------------------------------------------------------------------
-- exec

local function run_exec(cmd, c, input)
  if input ~= nil then
    spawn_task(function()
      pcall(await, c.stdin:write(input))  -- the child may exit without reading: not our error
      pcall(await, c.stdin:close())
    end)
  end
  local out = spawn_task(iobase.read_all, c._out)
  local err = spawn_task(iobase.read_all, c._err)
  local ok, r = pcall(function()
    local result = await(c:wait())
    result.stdout = await(out)
    result.stderr = await(err)
    return result
  end)
  if not ok then
    c:kill()  -- cancelled (or a read failed): do not leave the child behind
    c._out:close()
    c._err:close()
    error(r, 0)
  end
  return r
end

--- process.exec(cmd, args, {cwd=, env=, clear_env=, stdin=string}) -> Promise of
-- {code=, signal=, stdout=, stderr=}; rejects when the program cannot be run.
function M.exec(cmd, args, opts)
  local argv
  argv, opts = check_args("process.exec", cmd, args, opts)
  local input = opts.stdin
  if input ~= nil and type(input) ~= "string" then error("process.exec: stdin must be a string", 2) end
  local sopts = { cwd = opts.cwd, env = opts.env, clear_env = opts.clear_env,
                  stdin = input ~= nil and "pipe" or "ignore", stdout = "pipe", stderr = "pipe" }
  return spawn_task(function()
    local c = spawn_child("process.exec", cmd, argv, sopts)
    return run_exec(cmd, c, input)
  end)
end

---------------------------------------------------------------------------
-- Signals

local RUNTIME_SIGNALS = { [native.signum("SIGINT")] = true, [native.signum("SIGTERM")] = true,
                          [native.signum("SIGHUP")] = true }
local handlers = require("luasync.boot").signal_handlers  -- signum -> list of fns (boot.lua)

local function run_handlers(signum)
  local list = handlers[signum]
  if not list then return end
  for i = 1, #list do spawn_task(list[i], signum) end
end

--- process.onSignal(sig, fn) -> handle with :stop(). fn(name, number) runs as a
-- task each time the signal arrives. While a handler for SIGINT or SIGTERM is
-- registered, that signal no longer ends the process: call process.exit.
function M.onSignal(sig, fn)
  local signum = native.signum(sig)
  if not signum then error("process.onSignal: unknown signal " .. tostring(sig), 2) end
  if type(fn) ~= "function" then error("process.onSignal: expected a function", 2) end
  local name = native.signame(signum) or tostring(signum)
  if name == "SIGKILL" or name == "SIGSTOP" then error("process.onSignal: " .. name .. " cannot be caught", 2) end
  local list = handlers[signum]
  if not list then
    list = {}
    handlers[signum] = list
  end
  local entry = function() return fn(name, signum) end
  list[#list + 1] = entry
  if #list == 1 then
    if RUNTIME_SIGNALS[signum] then
      core.set_signal(signum, true)
    else
      local ok, code, msg = native.watch_signal(signum, run_handlers)
      if not ok then error("process.onSignal: " .. name .. ": " .. tostring(msg) .. " (" .. tostring(code) .. ")", 2) end
    end
  end
  local handle = {}
  function handle.stop()
    for i = #list, 1, -1 do
      if list[i] == entry then table.remove(list, i) end
    end
    if #list == 0 and handlers[signum] == list then
      handlers[signum] = nil
      if not RUNTIME_SIGNALS[signum] then
        native.watch_signal(signum, nil)
      elseif name == "SIGHUP" then
        core.set_signal(signum, false)  -- back to the default: SIGHUP ends the process
      end
    end
  end
  return handle
end

return M
