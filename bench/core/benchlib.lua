-- Shared helpers for the Lua benchmark programs (luasync and bare LuaJIT).
-- Load it with:
--   package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
--   local bench = require("benchlib")
local ffi = require("ffi")

local M = {}

local have_clock = pcall(ffi.cdef, [[
  typedef struct { long sec; long nsec; } luasync_bench_timespec;
  int clock_gettime(int clock_id, luasync_bench_timespec *ts);
  int nanosleep(const luasync_bench_timespec *req, luasync_bench_timespec *rem);
]])

local CLOCK_MONOTONIC = 1
local ts = have_clock and ffi.new("luasync_bench_timespec") or nil

-- Monotonic time in milliseconds (float).
function M.now_ms()
  if ts then
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.sec) * 1e3 + tonumber(ts.nsec) / 1e6
  end
  return os.clock() * 1e3
end

-- Block the whole process (used only by the bare-LuaJIT timer loop).
function M.block_ms(ms)
  if ms <= 0 then return end
  local req = ffi.new("luasync_bench_timespec")
  req.sec = math.floor(ms / 1e3)
  req.nsec = math.floor((ms % 1e3) * 1e6)
  ffi.C.nanosleep(req, nil)
end

-- Current resident set size in kB, from /proc/self/status (VmRSS).
function M.rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")) or 0
end

-- The size argument: arg[1] or the workload's default.
function M.size(default)
  return tonumber(arg and arg[1]) or default
end

-- Print the result lines the harness reads (key=value, one per line).
function M.report(fields)
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = fields[k]
    if type(v) == "number" and v ~= math.floor(v) then
      v = string.format("%.3f", v)
    end
    print(k .. "=" .. tostring(v))
  end
end

-- Stop with a non-zero exit when a workload computed the wrong result.
function M.check(ok, what)
  if not ok then
    io.stderr:write("check failed: " .. what .. "\n")
    os.exit(3)
  end
end

return M
