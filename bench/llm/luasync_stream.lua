-- luasync peer of bench/llm/floor.c: N concurrent OpenAI streaming completions through
-- llm.client(...):stream(), the whole LLM module included (request building, SSE framing
-- in C++, a JSON decode per event, delta extraction, usage). Same output keys as floor.c.
--
--   luasync bench/llm/luasync_stream.lua --port P [--streams 1000] [--tokens 200]
local ffi = require("ffi")
local core = require("luasync.core")

ffi.cdef [[
  struct luasync_bench_timeval { long tv_sec; long tv_usec; };
  struct luasync_bench_rusage { struct luasync_bench_timeval ru_utime, ru_stime; long rest[14]; };
  int getrusage(int who, struct luasync_bench_rusage *usage);
]]

local function cpu_ms()
  local ru = ffi.new("struct luasync_bench_rusage")
  ffi.C.getrusage(0, ru)
  return (tonumber(ru.ru_utime.tv_sec) + tonumber(ru.ru_stime.tv_sec)) * 1e3
    + (tonumber(ru.ru_utime.tv_usec) + tonumber(ru.ru_stime.tv_usec)) / 1e3
end

local opts = require("options")(arg, { streams = 1000, tokens = 200 },
  "usage: luasync_stream.lua --port P [--streams N] [--tokens N]")

local streams, want = opts.streams, opts.tokens
local client = llm.client {
  provider = "openai", base_url = "http://127.0.0.1:" .. opts.port .. "/v1", api_key = "bench",
  model = "bench", max_concurrency = streams, max_retries = 0,
}
local prompt = "tokens=" .. want
local hrtime = core.hrtime
local ttft = {}
local t0

local function one(idx)
  local s = client.stream(prompt)
  local n = 0
  for _ in s:iter() do
    if n == 0 then ttft[#ttft + 1] = hrtime() - t0 end
    n = n + 1
  end
  if n ~= want then error(string.format("stream %d: %d tokens", idx, n)) end
  return n
end

-- The C floor links libcurl and initialises it before its clock starts; luasync loads
-- libcurl on the first request. Do that here with a request that cannot connect
-- (port 1), so no connection is left for the measured streams to reuse.
pcall(await, require("luasync.http").request { url = "http://127.0.0.1:1/", timeout = 1 })

t0 = hrtime()
local tasks = {}
for k = 1, streams do tasks[k] = spawn(one, k) end
local setup = hrtime() - t0   -- every stream has sent its request to the HTTP client and waits
local results = await(Promise.allSettled(tasks))
local elapsed = hrtime() - t0
local cpu = cpu_ms()   -- the whole process, as floor.c counts it

local total, errors = 0, 0
for _, r in ipairs(results) do
  if r.status == "fulfilled" then
    total = total + r.value
  else
    errors = errors + 1
    if errors <= 5 then io.stderr:write("luasync_stream: stream failed: ", tostring(r.reason), "\n") end
  end
end
table.sort(ttft)
local function pick(q)
  if #ttft == 0 then return -1 end
  return ttft[math.min(#ttft, math.floor(#ttft * q) + 1)] * 1e3
end
print(string.format("streams=%d", streams))
print(string.format("tokens=%d", total))
print(string.format("elapsed_ms=%.1f", elapsed * 1e3))
print(string.format("tokens_per_s=%.0f", total / elapsed))
print(string.format("setup_ms=%.1f", setup * 1e3))
print(string.format("ttft_median_ms=%.1f", pick(0.5)))
print(string.format("ttft_p99_ms=%.1f", pick(0.99)))
print(string.format("cpu_ms=%.0f", cpu))
print(string.format("errors=%d", errors))
if errors > 0 then os.exit(1) end
