-- luasync.stdio: the stdin, stdout and stderr globals (API.md section 6).
--
-- stdout and stderr write to the same ordered buffers as print and io.write
-- (src/lua/output.h). stdout:write returns a Promise resolved once the data is
-- accepted, that is once less than 64 KiB wait to be written: awaiting it is
-- the backpressure pipeTo(stdout) relies on. stdout:flush() resolves once
-- everything written so far has reached the file descriptor.
local native = require("luasync.native.stdio")
local core = require("luasync.core")
local iobase = require("luasync.iobase")
local Promise = require("luasync.promise")
local errors = require("luasync.errors")

local READY = iobase.READY
local nwrite, nstate = native.write, native.state
local type, select, tostring, error = type, select, tostring, error

local M = {}

---------------------------------------------------------------------------
-- stdout / stderr

local drain_waiters = {}  -- promises of writes waiting for the buffer to drain
local flush_waiters = {}  -- { target = bytes appended, p = promise }
local armed = false
local arm

local function settle_waiters()
  local buffered, high, written = nstate()
  if #drain_waiters > 0 and buffered < high then
    local ws = drain_waiters
    drain_waiters = {}
    for i = 1, #ws do Promise._fulfill(ws[i], true) end
  end
  if #flush_waiters > 0 then
    local keep = {}
    for _, w in ipairs(flush_waiters) do
      if written >= w.target then Promise._fulfill(w.p, true) else keep[#keep + 1] = w end
    end
    flush_waiters = keep
  end
  return #drain_waiters > 0 or #flush_waiters > 0
end

local function on_drain()  -- from the loop, after each write of the stdout thread
  armed = false
  if settle_waiters() then arm() end
end

arm = function()
  if armed then return end
  armed = native.wait_drain(on_drain, nil)
  -- Nothing in flight (or written synchronously): settle what can be settled now.
  if not armed and settle_waiters() then
    native.kick()
    settle_waiters()
  end
end

local Out = {}
Out.__index = Out

local function check_args(name, ...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local t = type(v)
    if t ~= "string" and t ~= "number" then
      error("bad argument #" .. i .. " to '" .. name .. ":write' (string expected, got " .. t .. ")", 3)
    end
  end
end

--- out:write(...) -> Promise resolved once accepted (strings and numbers, like io.write)
function Out:write(a, ...)
  if type(a) ~= "string" or select("#", ...) > 0 then check_args(self.name, a, ...) end
  if nwrite(self.fd, a, ...) then return READY end
  local p = Promise._new()
  drain_waiters[#drain_waiters + 1] = p
  arm()
  return p
end

--- out:flush() -> Promise resolved once everything written so far is out
function Out:flush()
  if self.fd == 2 then return READY end
  local _, _, written, appended = nstate()
  if written >= appended then return READY end
  native.kick()
  _, _, written, appended = nstate()
  if written >= appended then return READY end
  local p = Promise._new()
  flush_waiters[#flush_waiters + 1] = { target = appended, p = p }
  arm()
  return p
end

--- out:close() -> resolved Promise: pipeTo never closes stdout or stderr, nor do we.
function Out:close() return READY end

function Out:isTTY() return core.isatty(self.fd) end

Out.__tostring = function(o) return o.name end

M.stdout = setmetatable({ fd = 1, name = "stdout" }, Out)
M.stderr = setmetatable({ fd = 2, name = "stderr" }, Out)

---------------------------------------------------------------------------
-- stdin

local function stdin_error(code, msg)
  return errors.new("io", "stdin: " .. msg .. " (" .. code .. ")", { code = code })
end

local source  -- one reader for the whole run, made on first use
local function src()
  if source == nil then source = iobase.source(native.stdin(), "stdin read", stdin_error) end
  return source
end

local Stdin = {}
Stdin.__index = Stdin
Stdin.__tostring = function() return "stdin" end

-- Ending a stdin stream early leaves stdin open (another stream may go on
-- reading); its read-ahead never keeps the loop alive.
local function keep_open() end

--- stdin:chunks() -> Stream of byte chunks (as they arrive, at most 64 KiB each)
function Stdin:chunks() return iobase.stream(src(), keep_open) end

--- stdin:lines() -> Stream of lines without their "\n" or "\r\n"
function Stdin:lines() return self:chunks():lines() end

--- stdin:read() -> the next chunk, or nil at the end (suspends the task)
function Stdin:read() return src():pull() end

--- stdin:readAll() -> Promise of everything up to the end
function Stdin:readAll()
  return require("luasync.async").spawn(iobase.read_all, src())
end

function Stdin:isTTY() return core.isatty(0) end

M.stdin = setmetatable({}, Stdin)

return M
