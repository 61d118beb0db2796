-- llm (API.md section 8) against the fake provider server, tests/fixtures/llm_server.py
-- (docs/llm-wire.md): the three wire protocols, streaming, retries, the concurrency cap,
-- cancellation, JSON mode and errors. The server counts requests (/_stats), so retries
-- and aborted streams are checked on the server's side.
local json = require("luasync.json")
local core = require("luasync.core")
local http_stats = require("luasync.http")._stats

local src = os.getenv("LUASYNC_SOURCE_DIR") or "../.."
local KEY = "sk-luasync-spec-5f3a9c0d7e1b"

local server, base

setup(function()
  server = process.spawn("python3", { src .. "/tests/fixtures/llm_server.py", "--port", "0", "--api-key", KEY })
  local port = server.stdout:readLine()
  assert.matches("^%d+$", port)
  base = "http://127.0.0.1:" .. port
end)

teardown(function()
  server:kill()
  await(server:wait())
end)

local function stats()
  return json.decode(await(http.get(base .. "/_stats")).body)
end

local function scenario(text, times)
  local r = await(http.post(base .. "/_scenario", json.encode({ scenario = text, times = times or 1 })))
  assert.equals(200, r.status)
end

before_each(function()
  assert.equals(200, await(http.post(base .. "/_reset", "")).status)
end)

-- A client of the fake server; opts.scenario becomes the x-fake-scenario header of every request.
local function client(provider, opts)
  opts = opts or {}
  local o = { provider = provider, model = opts.model or ("fake-" .. provider), max_retries = opts.max_retries,
              max_concurrency = opts.max_concurrency, timeout = opts.timeout, api_key = opts.api_key }
  if provider == "openai" then o.base_url = base .. "/v1" else o.base_url = base end
  if o.api_key == nil and provider ~= "ollama" then o.api_key = KEY end
  if opts.scenario then o.headers = { ["x-fake-scenario"] = opts.scenario } end
  return llm.client(o)
end

local function failure(p)
  local ok, e = pcall(await, p)
  assert.equals(false, ok, "expected a rejection")
  return e
end

local function collect(s)
  local out = {}
  for d in s:iter() do out[#out + 1] = d end
  return out
end

-- Until the server has no model request in flight (true), or `seconds` pass (false).
local function server_idle_within(seconds)
  local t0 = core.hrtime()
  repeat
    if stats().in_flight == 0 then return true end
    sleep(0.02)
  until core.hrtime() - t0 > seconds
  return false
end

local PROVIDERS = { "openai", "anthropic", "ollama" }
local PATH = { openai = "/v1/chat/completions", anthropic = "/v1/messages", ollama = "/api/chat" }
local ID = { openai = "chatcmpl-fake-1", anthropic = "msg_fake_1" }
local RAW_LENGTH = {
  openai = function(raw) return raw.choices[1].finish_reason end,
  anthropic = function(raw) return raw.stop_reason end,
  ollama = function(raw) return raw.done_reason end,
}
local PROVIDER_LENGTH = { openai = "length", anthropic = "max_tokens", ollama = "length" }

for _, p in ipairs(PROVIDERS) do
  describe("llm " .. p, function()
    it("chat returns the exact text, usage, finish reason, model and id", function()
      local r = await(client(p):chat{ messages = { { role = "user", content = "hello world" } }, system = "be brief" })
      assert.equals("echo: hello world", r.text)
      assert.equals("stop", r.finish_reason)
      assert.same({ input_tokens = 4, output_tokens = 3 }, r.usage)
      assert.equals("fake-" .. p, r.model)
      assert.equals(ID[p], r.id)
      assert.is_nil(r.json)
      local req = stats().requests[1]
      assert.equals(PATH[p], req.path)
      assert.equals("fake-" .. p, req.body.model)
      if p == "anthropic" then
        assert.equals("be brief", req.body.system)
        assert.equals(KEY, req.headers["x-api-key"])
        assert.equals("2023-06-01", req.headers["anthropic-version"])
        assert.equals(4096, req.body.max_tokens)
      else
        assert.same({ role = "system", content = "be brief" }, req.body.messages[1])
      end
      if p == "openai" then assert.equals("Bearer " .. KEY, req.headers.authorization) end
      if p == "ollama" then assert.equals(false, req.body.stream) end
    end)

    it("generate resolves with the text", function()
      assert.equals("echo: tell me", await(client(p).generate("tell me")))
    end)

    it("stream: deltas one per token, concatenating to the result's text", function()
      local s = client(p):stream("one two three")
      assert.same({ "echo:", " one", " two", " three" }, collect(s))
      local r = await(s:result())
      assert.equals("echo: one two three", r.text)
      assert.equals("stop", r.finish_reason)
      assert.same({ input_tokens = 3, output_tokens = 4 }, r.usage)
      assert.equals("fake-" .. p, r.model)
      assert.equals(ID[p], r.id)
      local body = stats().requests[1].body
      assert.equals(true, body.stream)
      if p == "openai" then assert.same({ include_usage = true }, body.stream_options) end
    end)

    it("streamGenerate passes every delta to onChunk and resolves with the full text", function()
      local chunks = {}
      local text = await(client(p).streamGenerate("a b", function(t) chunks[#chunks + 1] = t end))
      assert.equals("echo: a b", text)
      assert.same({ "echo:", " a", " b" }, chunks)
    end)

    it("max_tokens is sent as the protocol's field; finish_reason length, provider value in raw", function()
      local r = await(client(p).chat{ prompt = "tokens=10", max_tokens = 3 })
      assert.equals("tok1 tok2 tok3", r.text)
      assert.equals("length", r.finish_reason)
      assert.equals(PROVIDER_LENGTH[p], RAW_LENGTH[p](r.raw))
      local s = client(p).stream{ prompt = "tokens=10", max_tokens = 2 }
      assert.same({ "tok1", " tok2" }, collect(s))
      r = await(s:result())
      assert.equals("length", r.finish_reason)
      assert.equals(PROVIDER_LENGTH[p], RAW_LENGTH[p](r.raw))
    end)

    it("wire variants (CRLF, multi-line data, comments, events cut mid-line) give the same deltas", function()
      local s = client(p, { scenario = "crlf,multiline,comments,split-events" }):stream("x y")
      assert.same({ "echo:", " x", " y" }, collect(s))
      assert.equals("echo: x y", await(s:result()).text)
    end)

    it("a 500 is retried; /_stats counts every attempt", function()
      scenario("status=500,retry-after-ms=10", 2)
      assert.equals("echo: again", await(client(p).generate("again")))
      assert.equals(3, stats().count)
    end)

    it("gives up after max_retries with a typed http error", function()
      scenario("status=503,retry-after-ms=1", 5)
      local e = failure(client(p, { max_retries = 1 }).generate("x"))
      assert.equals("http", e.kind)
      assert.equals(503, e.status)
      assert.equals(p, e.provider)
      assert.equals(true, e.retryable)
      assert.equals(2, e.attempts)
      assert.equals("req_fake_2", e.request_id)
      assert.equals(2, stats().count)
    end)

    it("a stream is retried while no delta has arrived", function()
      scenario("overloaded=0,retry-after-ms=5", 1)
      local s = client(p):stream("first try")
      assert.same({ "echo:", " first", " try" }, collect(s))
      assert.equals(2, stats().count)
    end)

    it("a stream that fails after its first delta is not retried and keeps the text so far", function()
      local s = client(p, { scenario = "disconnect=2" }):stream("a b c d")
      local got = {}
      local ok, e = pcall(function() for d in s:iter() do got[#got + 1] = d end end)
      assert.equals(false, ok)
      assert.same({ "echo:", " a" }, got)
      assert.equals("protocol", e.kind)
      assert.equals("echo: a", e.partial)
      assert.equals(p, e.provider)
      assert.equals(1, stats().count)
      assert.equals(e, failure(s:result()))
    end)

    it("a stream without its final event fails with the whole text as partial", function()
      local e = failure(client(p, { scenario = "no-done" }).streamGenerate("a b", function() end))
      assert.equals("protocol", e.kind)
      assert.equals("echo: a b", e.partial)
      assert.truthy(e.message:find("ended before its final event", 1, true))
      assert.equals(1, stats().count)
    end)

    it("malformed JSON is a protocol error and is not retried", function()
      scenario("malformed-json", 1)
      local e = failure(client(p).generate("x"))
      assert.equals("protocol", e.kind)
      assert.equals(false, e.retryable)
      assert.equals(1, stats().count)
      e = failure(client(p, { scenario = "malformed-sse" }).streamGenerate("a b", function() end))
      assert.equals("protocol", e.kind)
      assert.equals("echo:", e.partial)
      assert.equals(2, stats().count)
    end)
  end)
end

describe("llm errors", function()
  it("429: retried after retry-after-ms; type and request id from the reply", function()
    scenario("status=429,retry-after-ms=20", 3)
    local t0 = core.hrtime()
    local e = failure(client("openai").generate("x"))
    assert.truthy(core.hrtime() - t0 >= 0.04)
    assert.same({ "http", 429, "requests", "rate_limit_exceeded", true, "req_fake_3" },
      { e.kind, e.status, e.type, e.code, e.retryable, e.request_id })
    assert.equals("openai: HTTP 429 requests: Rate limit reached (fake)", e.message)
    assert.equals(3, stats().count)
  end)

  it("429 insufficient_quota is not retried", function()
    scenario("quota", 3)
    local e = failure(client("openai").generate("x"))
    assert.same({ "http", 429, "insufficient_quota", false }, { e.kind, e.status, e.type, e.retryable })
    assert.equals(1, stats().count)
  end)

  it("Anthropic 529 overloaded_error and rate_limit_error types; request-id header", function()
    scenario("status=529,retry-after-ms=1", 1)
    scenario("status=429,retry-after-ms=1", 1)
    local e = failure(client("anthropic", { max_retries = 1 }).generate("x"))
    assert.same({ 429, "rate_limit_error", "req_fake_2" }, { e.status, e.type, e.request_id })
    assert.equals(2, stats().count)
    scenario("status=529", 1)
    e = failure(client("anthropic", { max_retries = 0 }).generate("x"))
    assert.same({ 529, "overloaded_error" }, { e.status, e.type })
  end)

  it("401 is not retried", function()
    local e = failure(client("openai", { api_key = "sk-wrong-key-0000" }).generate("x"))
    assert.same({ "http", 401, "invalid_request_error", "invalid_api_key", false },
      { e.kind, e.status, e.type, e.code, e.retryable })
    e = failure(client("anthropic", { api_key = "sk-wrong-key-0000" }).generate("x"))
    assert.same({ 401, "authentication_error" }, { e.status, e.type })
    assert.equals(2, stats().count)
  end)

  it("a 500 without retry-after waits for the backoff (0.5 s, minus up to 25%)", function()
    scenario("status=500", 1)
    local t0 = core.hrtime()
    assert.equals("echo: x", await(client("ollama").generate("x")))
    assert.truthy(core.hrtime() - t0 >= 0.37)
    assert.equals(2, stats().count)
  end)

  it("a dropped connection is retried", function()
    scenario("drop", 1)
    assert.equals("echo: x", await(client("openai").generate("x")))
    assert.equals(2, stats().count)
  end)

  it("Anthropic's error event after a delta rejects with its type, and the text so far", function()
    local chunks, errs = {}, {}
    local p = client("anthropic", { scenario = "overloaded=2" }).streamGenerate("a b c", function(t, err)
      if err then errs[#errs + 1] = err else chunks[#chunks + 1] = t end
    end)
    local e = failure(p)
    assert.same({ "http", "overloaded_error", true, "echo: a" }, { e.kind, e.type, e.retryable, e.partial })
    assert.same({ "echo:", " a" }, chunks)
    assert.equals(1, #errs)
    assert.equals(e, errs[1])
    assert.equals(1, stats().count)
  end)

  it("timeout and connect failures", function()
    local e = failure(client("openai", { scenario = "latency-ms=2000", timeout = 0.2, max_retries = 0 }).generate("x"))
    assert.equals("timeout", e.kind)
    assert.equals(true, e.retryable)
    local c = llm.client{ provider = "openai", base_url = "http://127.0.0.1:1/v1", max_retries = 0 }
    e = failure(c.generate("x"))
    assert.equals("connect", e.kind)
    assert.equals("openai", e.provider)
  end)
end)

describe("llm stream read late", function()
  it("a failure before the first read reaches the reader, not the unhandled-rejection report", function()
    local c = llm.client{ provider = "openai", base_url = "http://127.0.0.1:1/v1", max_retries = 0 }
    local s = c.stream("x")
    sleep(0.1)   -- the connection has failed by now
    local ok, e = pcall(function() for _ in s:iter() do end end)
    assert.equals(false, ok)
    assert.equals("connect", e.kind)
  end)
end)

describe("llm concurrency", function()
  it("never more than max_concurrency in flight under 100 concurrent calls, answers in order", function()
    local c = client("openai", { max_concurrency = 4, scenario = "latency-ms=10" })
    -- record the order in which requests are sent
    local transport = require("luasync.llm.transport")
    local real, sent = transport.request, {}
    transport.request = function(spec)
      sent[#sent + 1] = json.decode(spec.body).messages[1].content
      return real(spec)
    end
    local ps = {}
    for i = 1, 100 do ps[i] = c.generate("n" .. i) end
    local ok, texts = pcall(await, Promise.all(ps))
    transport.request = real
    assert.truthy(ok, texts)
    for i = 1, 100 do assert.equals("echo: n" .. i, texts[i]) end
    local st = stats()
    assert.equals(100, st.count)
    assert.equals(4, st.max_in_flight)
    -- the queue is FIFO: requests were sent in call order
    for i = 1, 100 do assert.equals("n" .. i, sent[i]) end
  end)

  it("the default cap is 8, streams included", function()
    local c = client("anthropic", { scenario = "delay-ms=5" })
    local ps = {}
    for i = 1, 50 do ps[i] = c.generate("x") end
    for i = 51, 100 do ps[i] = c.streamGenerate("y z", function() end) end
    await(Promise.all(ps))
    assert.equals(8, stats().max_in_flight)
  end)
end)

describe("llm cancellation", function()
  it("closing a stream aborts the server-side stream", function()
    local s = client("openai", { scenario = "delay-ms=30" }):stream("tokens=100")
    assert.equals("tok1", s:read())
    assert.equals(" tok2", s:read())
    s:close()
    assert.truthy(server_idle_within(1), "the server still streams")  -- 100 tokens would take 3 s
    local e = failure(s:result())
    assert.equals("cancelled", e.kind)
    assert.equals("tok1 tok2", e.partial)
  end)

  it("cancelling a streamGenerate promise aborts the request; onChunk sees no error", function()
    local chunks, errs = 0, 0
    local p = client("ollama", { scenario = "delay-ms=30" }).streamGenerate("tokens=100", function(t, err)
      if err then errs = errs + 1 else chunks = chunks + 1 end
    end)
    while chunks < 2 do sleep(0.01) end
    p:cancel()
    assert.equals("cancelled", failure(p).kind)
    assert.truthy(server_idle_within(1), "the server still streams")
    assert.equals(0, errs)
  end)

  it("cancelling a chat aborts the transfer", function()
    local p = client("openai", { scenario = "latency-ms=1000" }).generate("x")
    sleep(0.05)
    assert.equals(1, http_stats().in_flight)
    p:cancel()
    assert.equals("cancelled", failure(p).kind)
    assert.equals(0, http_stats().in_flight)
  end)

  it("streamGenerate stops when onChunk returns false: the text so far, and the request is aborted", function()
    local n = 0
    local text = await(client("anthropic", { scenario = "delay-ms=30" }).streamGenerate("tokens=100", function()
      n = n + 1
      if n == 3 then return false end
    end))
    assert.equals("tok1 tok2 tok3", text)
    assert.equals(3, n)
    assert.truthy(server_idle_within(1), "the server still streams")
  end)

  it("an error raised by onChunk rejects and aborts", function()
    local p = client("openai", { scenario = "delay-ms=30" }).streamGenerate("tokens=100", function(t)
      if t == " tok2" then error("enough", 0) end
    end)
    assert.equals("enough", failure(p))
    assert.truthy(server_idle_within(1), "the server still streams")
  end)
end)

describe("llm JSON mode", function()
  it("OpenAI json=true: response_format json_object, result.json decoded", function()
    local r = await(client("openai").chat{ prompt = "hi json", json = true })
    assert.equals('{"echo":"hi json"}', r.text)
    assert.same({ echo = "hi json" }, r.json)
    assert.same({ type = "json_object" }, stats().requests[1].body.response_format)
  end)

  it("OpenAI schema: json_schema response_format", function()
    local schema = { type = "object", properties = { echo = { type = "string" } }, required = { "echo" } }
    local r = await(client("openai").chat{ prompt = "s", json = schema })
    assert.same({ echo = "s" }, r.json)
    local rf = stats().requests[1].body.response_format
    assert.equals("json_schema", rf.type)
    assert.same(schema, rf.json_schema.schema)
  end)

  it("Ollama: format json or a schema; streams too", function()
    local r = await(client("ollama").chat{ prompt = "o", json = true })
    assert.same({ echo = "o" }, r.json)
    local s = client("ollama").stream{ prompt = "pq", json = { type = "object" } }
    assert.same({ '{"ec', 'ho":', '"pq"', "}" }, collect(s))
    assert.same({ echo = "pq" }, await(s:result()).json)
    local reqs = stats().requests
    assert.equals("json", reqs[1].body.format)
    assert.same({ type = "object" }, reqs[2].body.format)
  end)

  it("invalid JSON from the model rejects with a protocol error holding the text", function()
    local e = failure(client("anthropic").chat{ prompt = "plain", json = true })
    assert.equals("protocol", e.kind)
    assert.equals("echo: plain", e.text)
    assert.truthy(e.message:find("echo: plain", 1, true))
    assert.truthy(stats().requests[1].body.system:find("JSON", 1, true))
  end)

  it("Anthropic schema: a forced tool carries the schema", function()
    local schema = { type = "object", properties = { a = { type = "number" } } }
    failure(client("anthropic").chat{ prompt = "t", json = schema })   -- the fake server answers in text
    local body = stats().requests[1].body
    assert.same(schema, body.tools[1].input_schema)
    assert.same({ type = "tool", name = "json_output" }, body.tool_choice)
  end)
end)

describe("llm usage and results", function()
  it("s:result() reads the stream itself when nobody does", function()
    local r = await(client("openai").stream("unread"):result())
    assert.equals("echo: unread", r.text)
  end)

  it("c:usage() and llm.usage() count completed calls per model", function()
    local c = client("ollama", { model = "usage-model-" .. math.random(1e9) })
    local before = llm.usage()[c.model]
    assert.is_nil(before)
    await(c.generate("a b"))
    await(c.streamGenerate("c", function() end))
    assert.same({ [c.model] = { requests = 2, input_tokens = 3, output_tokens = 5 } }, c:usage())
    assert.same({ requests = 2, input_tokens = 3, output_tokens = 5 }, llm.usage()[c.model])
  end)

  it("extra fields reach the request body", function()
    await(client("ollama").chat{ prompt = "x", temperature = 0.2, extra = { keep_alive = "5m", options = { seed = 7 } } })
    local body = stats().requests[1].body
    assert.equals("5m", body.keep_alive)
    assert.same({ seed = 7, temperature = 0.2 }, body.options)
  end)
end)
