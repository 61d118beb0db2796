-- Cold and warm rounds of N concurrent streaming completions in one process, to separate what the first
-- round pays once (new connections, new curl handles, code not yet compiled by LuaJIT, a growing heap)
-- from the steady cost. Each round starts N streams of one client at once, as luasync_stream.lua does,
-- and prints its setup time, median time to first token and total time, in milliseconds.
--
--   luasync bench/llm/rounds.lua --port P [--streams 1000] [--tokens 1] [--rounds 6]
--
-- P is a bench/llm/sse_server.c port (run.py builds it into build-bench-llm/).
local hrtime = require("luasync.core").hrtime

local opts = require("options")(arg, { streams = 1000, tokens = 1, rounds = 6 },
  "usage: rounds.lua --port P [--streams N] [--tokens N] [--rounds N]")

local n = opts.streams
local client = llm.client {
  provider = "openai", base_url = "http://127.0.0.1:" .. opts.port .. "/v1", api_key = "bench",
  model = "bench", max_concurrency = n, max_retries = 0,
}
local prompt = "tokens=" .. opts.tokens

for round = 1, opts.rounds do
  local t0 = hrtime()
  local first = {}
  local function one()
    local s = client.stream(prompt)
    local got = false
    for _ in s:iter() do
      if not got then
        got = true
        first[#first + 1] = hrtime() - t0
      end
    end
  end
  local tasks = {}
  for k = 1, n do tasks[k] = spawn(one) end
  local setup = hrtime() - t0
  await(Promise.all(tasks))
  local total = hrtime() - t0
  table.sort(first)
  print(string.format("round=%d setup_ms=%.1f ttft_median_ms=%.1f total_ms=%.1f", round, setup * 1e3,
    (first[math.floor(#first / 2) + 1] or -1) * 1e3, total * 1e3))
end
