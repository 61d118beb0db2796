-- luasync peer for bench/http (run by run.sh): N GETs of URL, at most C in flight, through luasync.http.
--   luasync bench/http/luasync_get.lua URL N C [--ttfb]
-- Prints floor.c's key=value lines; exits 1 if any request failed or was not a 200. With --ttfb each request is
-- streamed (stream=true) and timed to its first body chunk; otherwise http.get collects the body.
local http = require("luasync.http")
-- Monotonic seconds from a C function: the stamps must cost no more than floor.c's clock_gettime. A clock
-- through the FFI (a cdata struct and two tonumber calls) runs interpreted here, about 240 ns a call against 40.
local now = require("luasync.core").hrtime

local url, total, conc = arg[1], tonumber(arg[2]), tonumber(arg[3])
local ttfb_mode = false
for i = 4, #arg do
  if arg[i] == "--ttfb" then ttfb_mode = true end
end
conc = math.min(conc, total)

local started, done, errors, bytes = 0, 0, 0, 0
local ttfb = {}

local function one()
  if ttfb_mode then
    local t0 = now()
    local res = await(http.request({ url = url, stream = true }))
    local first = true
    while true do
      local chunk = res.body:read()
      if chunk == nil then break end
      if first then
        local t1 = now()  -- before anything else (an index expression is evaluated first)
        first = false
        ttfb[#ttfb + 1] = t1 - t0
      end
      bytes = bytes + #chunk
    end
    return res.status
  end
  local res = await(http.get(url))
  bytes = bytes + #res.body
  return res.status
end

local function worker()
  while started < total do
    started = started + 1
    local ok, status = pcall(one)
    if not ok or status ~= 200 then
      errors = errors + 1
      if errors <= 5 then io.stderr:write("luasync_get: ", tostring(ok and status or status.message or status), "\n") end
    end
    done = done + 1
  end
end

local t0, c0 = now(), os.clock()
local workers = {}
for i = 1, conc do workers[i] = spawn(worker) end
await(Promise.all(workers))
local elapsed, cpu = now() - t0, os.clock() - c0

print(("requests=%d\nconcurrency=%d\nelapsed_ms=%.1f\nreq_per_s=%.0f\nmb_per_s=%.1f\ncpu_us_per_req=%.1f\nerrors=%d")
  :format(done, conc, elapsed * 1e3, done / elapsed, bytes / elapsed / 1e6, cpu / done * 1e6, errors))
if #ttfb > 0 then
  local sum = 0
  for _, v in ipairs(ttfb) do sum = sum + v end
  table.sort(ttfb)
  print(("ttfb_us_mean=%.1f\nttfb_us_p50=%.1f\nttfb_us_p99=%.1f"):format(sum / #ttfb * 1e6,
    ttfb[math.floor(#ttfb / 2) + 1] * 1e6, ttfb[math.floor(#ttfb * 99 / 100) + 1] * 1e6))
end
if errors > 0 or done ~= total then os.exit(1) end
