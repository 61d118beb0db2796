-- luasync.llm without the network: settings, request bodies, response and event parsing,
-- retry policy, the concurrency limiter, redaction, and the call machinery on a fake transport.
-- (tests/lua/llm_spec.lua runs the same module against tests/fixtures/llm_server.py.)
local json = require("luasync.json")
local config = require("luasync.llm.config")
local request = require("luasync.llm.request")
local retry = require("luasync.llm.retry")
local limiter = require("luasync.llm.limiter")
local lerr = require("luasync.llm.error")
local usage = require("luasync.llm.usage")
local openai = require("luasync.llm.openai")
local anthropic = require("luasync.llm.anthropic")
local ollama = require("luasync.llm.ollama")
local transport = require("luasync.llm.transport")

local function env(t) return function(name) return t[name] end end

local function cfg_of(opts, vars)
  local cfg, msg = config.resolve(opts, env(vars or {}))
  assert.truthy(cfg, msg)
  return cfg
end

local function req_of(opts, prompt)
  local req, msg = request.normalize(opts, "llm.chat", prompt)
  assert.truthy(req, msg)
  return req
end

local function ev(data, event) return { event = event or "message", data = data } end

describe("llm config", function()
  it("fails naming the variables when no provider is configured", function()
    local cfg, msg = config.resolve({}, env({}))
    assert.is_nil(cfg)
    assert.equals(config.NO_PROVIDER, msg)
    for _, var in ipairs({ "LUASYNC_LLM_PROVIDER", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
                           "ANTHROPIC_BASE_URL", "OLLAMA_HOST" }) do
      assert.truthy(msg:find(var, 1, true), var)
    end
  end)

  it("infers the provider from the keys, with default URLs and models", function()
    local c = cfg_of({}, { OPENAI_API_KEY = "sk-a" })
    assert.same({ "openai", "https://api.openai.com/v1", "sk-a", "gpt-4o-mini" },
      { c.provider, c.base_url, c.api_key, c.model })
    c = cfg_of({}, { ANTHROPIC_API_KEY = "sk-b" })
    assert.same({ "anthropic", "https://api.anthropic.com", "claude-haiku-4-5" }, { c.provider, c.base_url, c.model })
    c = cfg_of({}, { OLLAMA_HOST = "box:1234" })
    assert.same({ "ollama", "http://box:1234", "llama3.2" }, { c.provider, c.base_url, c.model })
  end)

  it("LUASYNC_LLM_PROVIDER and LUASYNC_LLM_MODEL win; options win over the environment", function()
    local vars = { LUASYNC_LLM_PROVIDER = "Ollama", OPENAI_API_KEY = "sk-a", LUASYNC_LLM_MODEL = "qwen" }
    local c = cfg_of({}, vars)
    assert.same({ "ollama", "http://127.0.0.1:11434", "qwen" }, { c.provider, c.base_url, c.model })
    c = cfg_of({ provider = "openai", model = "m", base_url = "http://h:1/v1/" }, vars)
    assert.same({ "openai", "http://h:1/v1", "m", "sk-a" }, { c.provider, c.base_url, c.model, c.api_key })
  end)

  it("defaults: 8 in flight, 2 retries, 600 s", function()
    local c = cfg_of({ provider = "ollama" })
    assert.same({ 8, 2, 600 }, { c.max_concurrency, c.max_retries, c.timeout })
  end)

  it("reads OLLAMA_HOST as Ollama does", function()
    assert.equals("http://127.0.0.1:11434", config.ollama_host(""))
    assert.equals("http://127.0.0.1:11434", config.ollama_host("127.0.0.1"))
    assert.equals("http://10.0.0.2:8080", config.ollama_host("10.0.0.2:8080"))
    assert.equals("http://box", config.ollama_host("http://box/"))
    assert.equals("https://box:443/ollama", config.ollama_host("HTTPS://box:443/ollama"))
    assert.equals("http://[::1]:11434", config.ollama_host("[::1]"))
  end)

  it("rejects bad settings", function()
    local cases = {
      { { provider = "bard" }, "unknown provider 'bard'" },
      { { provider = "openai" }, "no API key for openai: set OPENAI_API_KEY" },
      { { provider = "anthropic" }, "no API key for anthropic: set ANTHROPIC_API_KEY" },
      { { provider = "openai", base_url = "ftp://x" }, "base_url must start with http:// or https://" },
      { { provider = "ollama", max_concurrency = 0 }, "max_concurrency must be an integer >= 1" },
      { { provider = "ollama", max_retries = -1 }, "max_retries must be an integer >= 0" },
      { { provider = "ollama", timeout = 0 }, "timeout must be a number of seconds > 0" },
      { { provider = "openai", api_key = "a\nb" }, "the API key contains a line break" },
    }
    for _, c in ipairs(cases) do
      local cfg, msg = config.resolve(c[1], env({}))
      assert.is_nil(cfg)
      assert.truthy(msg:find(c[2], 1, true), msg)
    end
  end)

  it("a local OpenAI-compatible server needs no key", function()
    local c = cfg_of({ provider = "openai", base_url = "http://127.0.0.1:8000/v1" })
    assert.is_nil(c.api_key)
    assert.is_nil(openai.headers(c, false).authorization)
  end)
end)

describe("llm request bodies", function()
  local oa = cfg_of({ provider = "openai", api_key = "sk-x", base_url = "http://h/v1", model = "m0" })

  it("OpenAI: system first, fields as the protocol names them, usage in streams", function()
    local req = req_of({ messages = { { role = "user", content = "hi" } }, system = "sys", temperature = 0.5,
                         max_tokens = 7, stop = "END" })
    local b = openai.body(oa, req, true)
    assert.equals('{"max_tokens":7,"messages":[{"content":"sys","role":"system"},{"content":"hi","role":"user"}],'
      .. '"model":"m0","stop":["END"],"stream":true,"stream_options":{"include_usage":true},"temperature":0.5}',
      json.encode(b, { sort_keys = true }))
    assert.equals("http://h/v1/chat/completions", openai.url(oa))
    assert.same({ ["content-type"] = "application/json", accept = "text/event-stream", authorization = "Bearer sk-x" },
      openai.headers(oa, true))
  end)

  it("OpenAI: api.openai.com gets max_completion_tokens", function()
    local c = cfg_of({ provider = "openai", api_key = "k" })
    local b = openai.body(c, req_of({ prompt = "x", max_tokens = 5 }), false)
    assert.equals(5, b.max_completion_tokens)
    assert.is_nil(b.max_tokens)
    assert.is_nil(b.stream)
  end)

  it("OpenAI JSON modes", function()
    local b = openai.body(oa, req_of({ prompt = "give JSON", json = true }), false)
    assert.same({ type = "json_object" }, b.response_format)
    assert.equals(1, #b.messages)
    b = openai.body(oa, req_of({ prompt = "x", json = true }), false)
    assert.same({ role = "system", content = "Respond in JSON." }, b.messages[1])
    local schema = { type = "object", properties = { a = { type = "string" } } }
    b = openai.body(oa, req_of({ prompt = "x", json = schema }), false)
    assert.same({ type = "json_schema", json_schema = { name = "response", schema = schema, strict = true } },
      b.response_format)
    b = openai.body(oa, req_of({ prompt = "x", json = { name = "n", schema = schema, strict = false } }), false)
    assert.same({ name = "n", schema = schema, strict = false }, b.response_format.json_schema)
  end)

  it("Anthropic: system field, required max_tokens, stop_sequences, version header", function()
    local c = cfg_of({ provider = "anthropic", api_key = "sk-ant", base_url = "http://h:1" })
    local req = req_of({ messages = { { role = "system", content = "s1" }, { role = "user", content = "hi" } },
                         system = "s0", stop = { "a", "b" } })
    local b = anthropic.body(c, req, true)
    assert.equals('{"max_tokens":4096,"messages":[{"content":"hi","role":"user"}],"model":"claude-haiku-4-5",'
      .. '"stop_sequences":["a","b"],"stream":true,"system":"s0\\n\\ns1"}', json.encode(b, { sort_keys = true }))
    assert.equals("http://h:1/v1/messages", anthropic.url(c))
    local h = anthropic.headers(c, false)
    assert.equals("sk-ant", h["x-api-key"])
    assert.equals("2023-06-01", h["anthropic-version"])
    assert.is_nil(h.authorization)
  end)

  it("Anthropic JSON: prompt for json=true, a forced tool for a schema", function()
    local c = cfg_of({ provider = "anthropic", api_key = "k" })
    local b = anthropic.body(c, req_of({ prompt = "x", json = true }), false)
    assert.equals(anthropic.JSON_PROMPT, b.system)
    local schema = { type = "object" }
    b = anthropic.body(c, req_of({ prompt = "x", json = schema }), false)
    assert.equals("json_output", b.tools[1].name)
    assert.equals(schema, b.tools[1].input_schema)
    assert.same({ type = "tool", name = "json_output" }, b.tool_choice)
  end)

  it("Ollama: options, explicit stream flag, format", function()
    local c = cfg_of({ provider = "ollama" })
    local b = ollama.body(c, req_of({ prompt = "hi", system = "s", temperature = 0, max_tokens = 3, stop = "x",
                                      json = true }), false)
    assert.equals('{"format":"json","messages":[{"content":"s","role":"system"},{"content":"hi","role":"user"}],'
      .. '"model":"llama3.2","options":{"num_predict":3,"stop":["x"],"temperature":0},"stream":false}',
      json.encode(b, { sort_keys = true }))
    assert.equals("http://127.0.0.1:11434/api/chat", ollama.url(c))
    assert.equals(true, ollama.body(c, req_of({ prompt = "x" }), true).stream)
  end)

  it("extra merges into the body; nested objects key by key; json.null removes", function()
    local body = { model = "m", options = { temperature = 1, stop = { "a" } }, stream_options = { include_usage = true } }
    request.merge(body, { options = { num_ctx = 4096, stop = { "b" } }, stream_options = json.null, seed = 3 })
    assert.same({ model = "m", seed = 3, options = { temperature = 1, num_ctx = 4096, stop = { "b" } } }, body)
  end)

  it("normalize: prompt, messages, validation", function()
    assert.same({ { role = "user", content = "p" } }, req_of(nil, "p").messages)
    assert.same({ { role = "user", content = "p" } }, req_of({ prompt = "p" }).messages)
    local bad = {
      { {}, "expected messages={...} or prompt=" },
      { { messages = {} }, "messages is empty" },
      { { messages = { { content = "x" } } }, "messages[1] must be a table with a string role" },
      { { prompt = "x", max_tokens = 0 }, "max_tokens must be an integer >= 1" },
      { { prompt = "x", stop = { 1 } }, "stop must be a string or a list of strings" },
      { { prompt = "x", json = "yes" }, "json must be true or a JSON schema table" },
      { { prompt = "x", temprature = 1 }, "unknown option 'temprature'" },
    }
    for _, c in ipairs(bad) do
      local req, msg = request.normalize(c[1], "llm.chat")
      assert.is_nil(req)
      assert.truthy(msg:find(c[2], 1, true), msg)
    end
  end)

  it("finish reasons are normalised", function()
    local cases = { end_turn = "stop", max_tokens = "length", stop_sequence = "stop", tool_use = "tool_calls",
                    stop = "stop", length = "length", content_filter = "content_filter", tool_calls = "tool_calls",
                    refusal = "content_filter" }
    for provider_value, want in pairs(cases) do assert.equals(want, request.finish_reason(provider_value)) end
    assert.is_nil(request.finish_reason(json.null))
  end)

  it("strips a code fence around JSON", function()
    assert.equals('{"a":1}', request.strip_fences('```json\n{"a":1}\n```'))
    assert.equals('{"a":1}', request.strip_fences('{"a":1}'))
  end)
end)

describe("llm response parsing", function()
  it("OpenAI", function()
    local r = openai.parse(json.decode('{"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant",'
      .. '"content":"hi"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}'))
    assert.same({ "hi", "length", 3, 1, "m", "c1", "length" },
      { r.text, r.finish_reason, r.usage.input_tokens, r.usage.output_tokens, r.model, r.id,
        r.raw.choices[1].finish_reason })
    local _, err = openai.parse(json.decode('{"choices":[]}'))
    assert.equals("protocol", err.kind)
  end)

  it("Anthropic, with the provider's stop reason kept in raw", function()
    local r = anthropic.parse(json.decode('{"id":"m1","model":"c","content":[{"type":"text","text":"a"},'
      .. '{"type":"text","text":"b"}],"stop_reason":"max_tokens","usage":{"input_tokens":5,"output_tokens":2}}'))
    assert.same({ "ab", "length", 5, 2, "max_tokens" },
      { r.text, r.finish_reason, r.usage.input_tokens, r.usage.output_tokens, r.raw.stop_reason })
    local req = req_of({ prompt = "x", json = { type = "object" } })
    r = anthropic.parse(json.decode('{"content":[{"type":"tool_use","name":"json_output","input":{"k":[1]}}],'
      .. '"stop_reason":"tool_use","usage":{}}'), req)
    assert.same({ k = { 1 } }, r.json)
    assert.equals('{"k":[1]}', r.text)
    assert.equals("stop", r.finish_reason)
  end)

  it("Ollama", function()
    local r = ollama.parse(json.decode('{"model":"l","message":{"role":"assistant","content":"yo"},"done":true,'
      .. '"done_reason":"length","prompt_eval_count":4,"eval_count":2}'))
    assert.same({ "yo", "length", 4, 2, "l" },
      { r.text, r.finish_reason, r.usage.input_tokens, r.usage.output_tokens, r.model })
  end)
end)

describe("llm stream events", function()
  local function chunk(content, extra)
    return ev(string.format('{"id":"c9","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
      .. '"delta":{"content":%s},"logprobs":null,"finish_reason":null}]%s}', json.encode(content), extra or ""))
  end

  it("OpenAI: deltas, finish, usage chunk, [DONE]", function()
    local st = openai.new_state()
    local out = {}
    local events = { ev('{"id":"c9","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
                        .. '"finish_reason":null}]}'),
                     chunk("Hel"), chunk("lo \"q\"\n"), chunk(""),
                     ev('{"id":"c9","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'),
                     ev('{"id":"c9","model":"m","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}'),
                     ev("[DONE]") }
    for _, e in ipairs(events) do
      local d, err = openai.event(st, e)
      assert.is_nil(err)
      if d then out[#out + 1] = d end
    end
    assert.same({ "Hel", 'lo "q"\n' }, out)
    assert.equals(true, st.done)
    local r = openai.result(st)
    assert.same({ 'Hello "q"\n', "stop", 2, 3, "m", "c9" },
      { r.text, r.finish_reason, r.usage.input_tokens, r.usage.output_tokens, r.model, r.id })
  end)

  it("OpenAI fast path agrees with a full decode", function()
    local cases = {
      { '{"id":"a","choices":[{"index":0,"delta":{"content":" tok1"},"logprobs":null,"finish_reason":null}]}', " tok1" },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"x\\"y"},"finish_reason":null}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"x\\\\"},"finish_reason":null}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"a","role":null},"finish_reason":null}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},'
        .. '{"index":1,"delta":{"content":"b"},"finish_reason":null}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":{"x":1}}', "a" },
      { '{"id":"a","choices":[{"index":1,"delta":{"content":"b"},"finish_reason":null}]}', nil },
      { '{"id":"a","choices":[{"finish_reason":null,"index":0,"delta":{"content":"c"}}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":null}', "a" },
      { '{"error":{"message":"m"},"choices":[{"delta":{"content":"a"},"finish_reason":null}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content": "a"},"finish_reason":null}]}', nil },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"\\"finish_reason\\":null"}}]}', nil },
    }
    -- the transport's native fast path (src/http/plain_delta.cpp) finds exactly the same deltas
    local plain_delta = require("luasync.http_native").plain_delta
    local function native_delta(data) return plain_delta("openai", "message", data) end
    local more = { { '{"index":0,"delta":{"content":"', nil }, { '{"index":0,"delta":{"content":""}', nil },
                   { '{"index":0,"delta":{"content":""},"finish_reason":null', "" },
                   { 'x{"index":0,"delta":{"content":"t"}"finish_reason":null', "t" },
                   { '{"index":0,"delta":{"content":"t"},finish_reason":null', nil },
                   { '{"index":0,"delta":{"content":"t\\u00e9"},"finish_reason":null', nil },
                   { '{"index":0,"delta":{"content":"\0"},"finish_reason":null', "\0" }, { "", nil } }
    for _, c in ipairs(cases) do more[#more + 1] = c end
    for _, c in ipairs(more) do
      assert.equals(c[2], openai._plain_delta(c[1]), c[1])
      assert.equals(c[2], native_delta(c[1]), c[1])
    end
    for _, c in ipairs(cases) do
      assert.equals(c[2], openai._plain_delta(c[1]), c[1])
      -- and the event handler gives the decoded text either way
      local st = openai.new_state()
      st.id = "a"
      local d = openai.event(st, ev(c[1]))
      local obj = json.decode(c[1])
      if not obj.error then
        local c1 = obj.choices[1]
        local content = (c1.index == nil or c1.index == 0) and c1.delta.content or ""
        assert.equals(content ~= "" and content or nil, d)
      end
    end
  end)

  it("Anthropic and Ollama fast paths agree with a full decode", function()
    local a_cases = {
      { '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" hi"}}', " hi" },
      { '{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"x"}}', "x" },
      { '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\\nb"}}', nil },
      { '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"q\\""}}', nil },
      { '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"a"}}', nil },
      { '{"type":"content_block_delta","index":0,"delta":{"text":"x","type":"text_delta"}}', nil },
      { '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"},"extra":1}', nil },
    }
    -- the transport's native fast path (src/http/plain_delta.cpp), for content_block_delta events only
    local plain_delta = require("luasync.http_native").plain_delta
    local a_more = { { '{"type":"text_delta","text":"t"}}', "t" }, { '{"type":"text_delta","text":"t"}}\n', nil },
                     { '{"type":"text_delta","text":"t"}', nil }, { '{"type":"text_delta","text":"t"} }', nil },
                     { '{"type":"text_delta","text":"', nil }, { "", nil } }
    for _, c in ipairs(a_cases) do a_more[#a_more + 1] = c end
    for _, c in ipairs(a_more) do
      assert.equals(c[2], anthropic._plain_delta(c[1]), c[1])
      assert.equals(c[2], plain_delta("anthropic", "content_block_delta", c[1]), c[1])
      assert.is_nil(plain_delta("anthropic", "message", c[1]), c[1])
    end
    for _, c in ipairs(a_cases) do
      assert.equals(c[2], anthropic._plain_delta(c[1]), c[1])
      local d = json.decode(c[1]).delta
      local want = d.text or d.partial_json
      assert.equals(want, anthropic.event(anthropic.new_state(), ev(c[1], "content_block_delta")), c[1])
    end
    local o_cases = {
      { '{"model":"l","created_at":"t","message":{"role":"assistant","content":" yo"},"done":false}', " yo" },
      { '{"model":"l","created_at":"t","message":{"role":"assistant","content":"a\\u00e9"},"done":false}', nil },
      { '{"model":"l","created_at":"t","message":{"role":"assistant","content":"x"},"done":true,"eval_count":1}', nil },
      { '{"model":"l","created_at":"t","message":{"role":"assistant","content":"","thinking":"hm"},"done":false}', nil },
      { '{"model":"l","message":{"role":"assistant","content":"x"},"done":false,"extra":1}', nil },
    }
    for _, c in ipairs(o_cases) do
      assert.equals(c[2], ollama._plain_delta(c[1]), c[1])
      local st = ollama.new_state()
      st.model = "l"
      local content = json.decode(c[1]).message.content
      assert.equals(content ~= "" and content or nil, ollama.event(st, c[1]), c[1])
    end
  end)

  it("OpenAI: the role chunk is recognised without a decode, and only it", function()
    local cases = {
      { '{"id":"a","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}', true },
      { '{"id":"a","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":null,"choices":[{"index":0,'
        .. '"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}', true },
      { '{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}', false },
      { '{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":"no"},"finish_reason":null}]}', false },
      { '{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[]},"finish_reason":null}]}', false },
      { '{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}', false },
      { '{"id":"a","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null},'
        .. '{"index":1,"delta":{"role":"assistant","content":""},"finish_reason":null}]}', false },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"","role":"assistant"},"finish_reason":null}]}', false },
      { '{"id":"a","choices":[{"index":0,"delta":{"content":"\\"finish_reason\\":null"}}]}', false },
    }
    for _, c in ipairs(cases) do
      assert.equals(c[2], openai._role_chunk(c[1]), c[1])
      -- either way the event gives no text unless the decoded delta has some, and no error
      local st = openai.new_state()
      local d, err = openai.event(st, ev(c[1]))
      assert.is_nil(err, c[1])
      local content = json.decode(c[1]).choices[1].delta.content
      assert.equals(content ~= "" and content or nil, d, c[1])
      if c[2] then assert.same({ false, c[1] }, { st.id, st.head }, c[1]) end
    end
    -- a stream opening with the role chunk: its id and model from the finish chunk
    local st = openai.new_state()
    assert.is_nil(openai.event(st, ev(cases[2][1])))
    assert.equals("Hi", openai.event(st, chunk("Hi")))
    assert.is_nil(openai.event(st, ev('{"id":"a","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')))
    local r = openai.result(st)
    assert.same({ "Hi", "stop", "a", "m" }, { r.text, r.finish_reason, r.id, r.model })
  end)

  it("OpenAI: a plain first event is not decoded; id and model come from a later chunk, else from it", function()
    local finish = '{"id":"c9","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    local function run(events)
      local st = openai.new_state()
      local out = {}
      for _, e in ipairs(events) do
        local d, err = openai.event(st, ev(e))
        assert.is_nil(err)
        if d then out[#out + 1] = d end
      end
      return st, out
    end
    local first = chunk("Hi").data
    local st = openai.new_state()
    assert.equals("Hi", openai.event(st, chunk("Hi")))
    assert.same({ false, false, first }, { st.id, st.model, st.head })
    -- the finish chunk is decoded anyway: its id and model are the stream's, and the head is dropped
    local out
    st, out = run({ first, chunk(" there").data, finish, "[DONE]" })
    assert.same({ "Hi", " there" }, out)
    assert.same({ "c9", "m", false }, { st.id, st.model, st.head })
    local r = openai.result(st)
    assert.same({ "Hi there", "stop", "c9", "m" }, { r.text, r.finish_reason, r.id, r.model })
    -- nothing else decoded: the result decodes the first event
    st, out = run({ first, chunk("!").data, "[DONE]" })
    assert.same({ "Hi", "!" }, out)
    r = openai.result(st)
    assert.same({ "Hi!", "c9", "m", "c9" }, { r.text, r.id, r.model, r.raw.id })
    -- a later chunk without an id leaves the first event's
    st = run({ first, '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', "[DONE]" })
    r = openai.result(st)
    assert.same({ "Hi", "stop", "c9", "m" }, { r.text, r.finish_reason, r.id, r.model })
    -- OpenAI's role chunk first: it is the kept event
    local role = '{"id":"c1","model":"m1","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
      .. '"finish_reason":null}]}'
    st = run({ role, first, "[DONE]" })
    assert.same({ false, false, role }, { st.id, st.model, st.head })
    assert.same({ "Hi", "c1", "m1" }, { openai.result(st).text, openai.result(st).id, openai.result(st).model })
  end)

  it("OpenAI: an error frame and invalid JSON are errors", function()
    local st = openai.new_state()
    local _, err = openai.event(st, ev('{"error":{"message":"Overloaded","type":"server_error"}}'))
    assert.same({ "http", "server_error", true, "openai: stream error server_error: Overloaded" },
      { err.kind, err.type, err.retryable, err.message })
    _, err = openai.event(st, ev('{"id":'))
    assert.equals("protocol", err.kind)
    assert.equals(false, err.retryable)
  end)

  it("Anthropic: named events, ping, usage from message_start and message_delta", function()
    local st = anthropic.new_state()
    local out = {}
    local events = {
      ev('{"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":7,"output_tokens":1}}}',
        "message_start"),
      ev('{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}', "content_block_start"),
      ev('{"type": "ping"}', "ping"),
      ev('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}', "content_block_delta"),
      ev('{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}'),  -- unnamed
      ev('{"type":"content_block_stop","index":0}', "content_block_stop"),
      ev('{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}', "message_delta"),
      ev('{"type":"message_stop"}', "message_stop"),
    }
    for _, e in ipairs(events) do
      local d, err = anthropic.event(st, e)
      assert.is_nil(err)
      if d then out[#out + 1] = d end
    end
    assert.same({ "Hi", " there" }, out)
    assert.equals(true, st.done)
    local r = anthropic.result(st)
    assert.same({ "Hi there", "stop", 7, 2, "claude", "msg_1", "end_turn" },
      { r.text, r.finish_reason, r.usage.input_tokens, r.usage.output_tokens, r.model, r.id, r.raw.stop_reason })
    local _, err = anthropic.event(anthropic.new_state(),
      ev('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "error"))
    assert.same({ "http", "overloaded_error", true }, { err.kind, err.type, err.retryable })
  end)

  it("Ollama: lines, done with counts, error lines", function()
    local st = ollama.new_state()
    assert.equals("a", ollama.event(st, '{"model":"l","message":{"role":"assistant","content":"a"},"done":false}'))
    assert.is_nil(ollama.event(st, '{"model":"l","message":{"role":"assistant","content":""},"done":true,'
      .. '"done_reason":"stop","prompt_eval_count":3,"eval_count":1}'))
    assert.equals(true, st.done)
    local r = ollama.result(st)
    assert.same({ "a", "stop", 3, 1, "l" }, { r.text, r.finish_reason, r.usage.input_tokens, r.usage.output_tokens, r.model })
    local _, err = ollama.event(ollama.new_state(), '{"error":"boom"}')
    assert.equals("ollama: stream error: boom", err.message)
  end)

  it("Ollama: a plain first line is not decoded; the model comes from the done line, else from it", function()
    local first = '{"model":"l1","created_at":"t","message":{"role":"assistant","content":"Hi"},"done":false}'
    local st = ollama.new_state()
    assert.equals("Hi", ollama.event(st, first))
    assert.same({ false, first }, { st.model, st.head })
    assert.is_nil(ollama.event(st, '{"model":"l1","message":{"role":"assistant","content":""},"done":true}'))
    assert.same({ "l1", false }, { st.model, st.head })
    assert.same({ "Hi", "l1" }, { ollama.result(st).text, ollama.result(st).model })
    -- a done line without a model: the first line's
    st = ollama.new_state()
    ollama.event(st, first)
    assert.is_nil(ollama.event(st, '{"message":{"role":"assistant","content":""},"done":true}'))
    assert.same({ "Hi", "l1" }, { ollama.result(st).text, ollama.result(st).model })
    -- no done line decoded at all (the caller reports the missing end): the first line's
    st = ollama.new_state()
    ollama.event(st, first)
    assert.equals("l1", ollama.result(st).model)
  end)
end)

describe("llm errors", function()
  it("from an HTTP status: type, code, request id, retryable", function()
    local e = lerr.from_status("openai", 429, { ["x-request-id"] = "req_1" },
      '{"error":{"message":"Slow down","type":"requests","code":"rate_limit_exceeded"}}')
    assert.same({ "http", 429, "requests", "rate_limit_exceeded", "req_1", true, "openai",
                  "openai: HTTP 429 requests: Slow down" },
      { e.kind, e.status, e.type, e.code, e.request_id, e.retryable, e.provider, e.message })
    e = lerr.from_status("openai", 429, {}, '{"error":{"message":"quota","type":"insufficient_quota"}}')
    assert.equals(false, e.retryable)
    e = lerr.from_status("anthropic", 529, { ["request-id"] = "r2" },
      '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    assert.same({ "overloaded_error", "r2", true }, { e.type, e.request_id, e.retryable })
    e = lerr.from_status("ollama", 404, {}, '{"error":"model not found"}')
    assert.same({ "ollama: HTTP 404: model not found", false }, { e.message, e.retryable })
    e = lerr.from_status("openai", 502, {}, "<html>bad gateway</html>\n")
    assert.equals("openai: HTTP 502: <html>bad gateway</html>", e.message)
  end)

  it("retryable statuses, and x-should-retry overrides", function()
    for _, s in ipairs({ 408, 409, 429, 500, 502, 503, 529 }) do assert.equals(true, lerr.retryable_status(s)) end
    for _, s in ipairs({ 400, 401, 403, 404, 422 }) do assert.equals(false, lerr.retryable_status(s)) end
    assert.equals(false, lerr.from_status("openai", 500, { ["x-should-retry"] = "false" }, "").retryable)
    assert.equals(true, lerr.from_status("openai", 400, { ["x-should-retry"] = "true" }, "").retryable)
  end)

  it("from transport failures", function()
    local e = lerr.from_transport("openai", { kind = "connect", message = "refused" })
    assert.same({ "connect", true, "openai: refused" }, { e.kind, e.retryable, e.message })
    e = lerr.from_transport("openai", { kind = "tls", message = "bad cert" })
    assert.same({ "connect", false }, { e.kind, e.retryable })
    e = lerr.from_transport("openai", { kind = "timeout", message = "slow" })
    assert.same({ "timeout", true }, { e.kind, e.retryable })
    local c = require("luasync.errors").cancelled()
    assert.equals(c, lerr.from_transport("openai", c))
  end)

  it("redact removes every known secret, everywhere in the text", function()
    lerr.add_secret("sk-unit-SECRET-42")
    assert.equals("key [redacted] and [redacted]!", lerr.redact("key sk-unit-SECRET-42 and sk-unit-SECRET-42!"))
    assert.equals("nothing here", lerr.redact("nothing here"))
    local e = lerr.from_status("openai", 401, {}, '{"error":{"message":"Incorrect API key provided: sk-unit-SECRET-42"}}')
    assert.equals("openai: HTTP 401: Incorrect API key provided: [redacted]", e.message)
    assert.falsy(e.body:find("SECRET", 1, true))
    assert.equals("[redacted]", llm.redact("sk-unit-SECRET-42"))
  end)
end)

describe("llm retry policy", function()
  local function zero() return 0 end
  local function one() return 1 end

  it("exponential backoff from 0.5 s, capped at 8 s, up to 25% jitter", function()
    assert.same({ 0.5, 1, 2, 4, 8, 8 }, { retry.delay(1, nil, zero), retry.delay(2, nil, zero),
      retry.delay(3, nil, zero), retry.delay(4, nil, zero), retry.delay(5, nil, zero), retry.delay(9, nil, zero) })
    assert.equals(0.375, retry.delay(1, nil, one))
    assert.equals(6, retry.delay(7, nil, one))
  end)

  it("honours retry-after-ms, Retry-After seconds and HTTP dates up to 60 s", function()
    assert.equals(0.25, retry.delay(1, { ["retry-after-ms"] = "250" }, zero))
    assert.equals(3, retry.delay(1, { ["retry-after"] = "3" }, zero))
    local now = retry.http_date("Wed, 21 Oct 2015 07:28:00 GMT")
    assert.equals(1445412480, now)
    assert.equals(10, retry.delay(1, { ["retry-after"] = "Wed, 21 Oct 2015 07:28:10 GMT" }, zero, now))
    assert.equals(0.5, retry.delay(1, { ["retry-after"] = "120" }, zero))         -- too long: backoff
    assert.equals(1, retry.delay(2, { ["retry-after"] = "soon" }, zero))           -- unreadable: backoff
    assert.equals(0.5, retry.delay(1, { ["retry-after-ms"] = "-5" }, zero))
  end)

  it("reads the three HTTP date formats", function()
    assert.equals(784111777, retry.http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equals(784111777, retry.http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
    assert.equals(784111777, retry.http_date("Sun Nov  6 08:49:37 1994"))
    assert.equals(951782400, retry.http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
    assert.is_nil(retry.http_date("yesterday"))
  end)
end)

describe("llm limiter", function()
  it("admits n at once and the rest in order", function()
    local lim = limiter.new(2)
    local order, active, peak = {}, 0, 0
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = spawn(function()
        lim:acquire()
        active = active + 1
        if active > peak then peak = active end
        order[#order + 1] = i
        sleep(0.002)
        active = active - 1
        lim:release()
      end)
    end
    await(Promise.all(tasks))
    assert.same({ 1, 2, 3, 4, 5, 6 }, order)
    assert.equals(2, peak)
    assert.equals(0, lim.active)
  end)

  it("a waiter cancelled in the queue takes no slot", function()
    local lim = limiter.new(1)
    lim:acquire()
    local got = {}
    local a = spawn(function() lim:acquire(); got[#got + 1] = "a"; lim:release() end)
    local b = spawn(function() lim:acquire(); got[#got + 1] = "b"; lim:release() end)
    a:cancel()
    lim:release()
    await(b)
    assert.same({ "b" }, got)
    assert.equals(0, lim.active)
    assert.rejects(a, "cancelled")
  end)
end)

describe("llm limiter callbacks", function()
  it("acquire_cb runs at once when a slot is free, else in turn after release", function()
    local lim = limiter.new(1)
    local log = {}
    lim:acquire_cb(function(v) log[#log + 1] = v end, "a")
    lim:acquire_cb(function(v) log[#log + 1] = v end, "b")
    local waiter = spawn(function() lim:acquire(); log[#log + 1] = "task"; lim:release() end)
    assert.same({ "a" }, log)
    lim:release()                 -- hands the slot to "b", as a microtask
    assert.same({ "a" }, log)
    sleep(0)
    assert.same({ "a", "b" }, log)
    lim:release()                 -- then to the task
    await(waiter)
    assert.same({ "a", "b", "task" }, log)
    assert.equals(0, lim.active)
  end)
end)

describe("llm usage", function()
  it("totals per model, and the --llm-usage table", function()
    local t = {}
    usage.record(t, { model = "b", usage = { input_tokens = 2, output_tokens = 3 } })
    usage.record(t, { model = "a", usage = { input_tokens = 1, output_tokens = 1 } })
    usage.record(t, { model = "b", usage = { input_tokens = 2, output_tokens = 3 } })
    assert.same({ a = { requests = 1, input_tokens = 1, output_tokens = 1 },
                  b = { requests = 2, input_tokens = 4, output_tokens = 6 } }, usage.copy(t))
    assert.equals("llm usage:\n"
      .. "model  requests   input_tokens  output_tokens\n"
      .. "a             1              1              1\n"
      .. "b             2              4              6\n"
      .. "total         3              5              7\n", usage.summary(t))
    assert.equals("llm usage: no requests\n", usage.summary({}))
  end)
end)

---------------------------------------------------------------------------
-- The call machinery on a fake transport: each request pops the next reply.

describe("llm calls on a fake transport", function()
  local real = transport.request
  local replies, sent

  before_each(function()
    replies, sent = {}, {}
    transport.request = function(spec)
      sent[#sent + 1] = spec
      local r = table.remove(replies, 1)
      assert.truthy(r, "no reply queued")
      if type(r) == "function" then return r(spec) end
      if r.fail then return Promise.reject(r.fail) end
      local body = r.body
      if spec.stream and r.events then
        body = Stream.from(r.events)
      end
      return Promise.resolve({ status = r.status or 200, headers = r.headers or {}, body = body })
    end
  end)

  after_each(function() transport.request = real end)

  local function client(opts)
    opts = opts or {}
    opts.provider = opts.provider or "openai"
    opts.base_url = opts.base_url or "http://fake/v1"
    opts.api_key = opts.api_key or "sk-fake-key"
    opts.model = opts.model or "m"
    return llm.client(opts)
  end

  local OK = '{"id":"c1","model":"m","choices":[{"message":{"content":"fine"},"finish_reason":"stop"}],'
    .. '"usage":{"prompt_tokens":1,"completion_tokens":1}}'

  it("sends one POST with the JSON body, headers and timeout", function()
    replies[1] = { body = OK }
    local c = client({ headers = { ["x-extra"] = "1" }, timeout = 30 })
    assert.equals("fine", await(c:generate("hello", { extra = { seed = 4 } })))
    local s = sent[1]
    assert.same({ "POST", "http://fake/v1/chat/completions", 30, false },
      { s.method, s.url, s.timeout, s.stream })
    assert.equals("1", s.headers["x-extra"])
    assert.equals("Bearer sk-fake-key", s.headers.authorization)
    local body = json.decode(s.body)
    assert.equals(4, body.seed)
    assert.equals("hello", body.messages[1].content)
  end)

  it("retries a 503 after retry-after-ms, then succeeds", function()
    replies[1] = { status = 503, headers = { ["retry-after-ms"] = "1" }, body = '{"error":{"message":"busy"}}' }
    replies[2] = { fail = { kind = "connect", message = "refused" } }
    replies[3] = { body = OK }
    local c = client({ max_retries = 2 })
    local t0 = require("luasync.core").hrtime()
    -- the connect failure has no retry-after: a 1 s backoff at most (0.75 s with full jitter)
    local r = await(c.chat{ prompt = "x" })
    assert.equals("fine", r.text)
    assert.equals(3, #sent)
    assert.truthy(require("luasync.core").hrtime() - t0 >= 0.74)
  end)

  it("gives up after max_retries with the last error and the attempt count", function()
    for i = 1, 3 do replies[i] = { status = 500, headers = { ["retry-after"] = "0", ["x-request-id"] = "r" .. i }, body = "" } end
    local ok, e = pcall(await, client({ max_retries = 2 }).generate("x"))
    assert.equals(false, ok)
    assert.same({ "http", 500, 3, "r3" }, { e.kind, e.status, e.attempts, e.request_id })
  end)

  it("does not retry a 400 or a malformed body", function()
    replies[1] = { status = 400, body = '{"error":{"message":"bad","type":"invalid_request_error"}}' }
    local ok, e = pcall(await, client().generate("x"))
    assert.equals(false, ok)
    assert.same({ 400, "invalid_request_error", 1 }, { e.status, e.type, #sent })
    replies[1] = { body = '{"choices":' }
    ok, e = pcall(await, client().generate("x"))
    assert.same({ false, "protocol", 2 }, { ok, e.kind, #sent })
  end)

  it("a stream is retried before its first delta, never after", function()
    local function chunk(t) return { event = "message", data = '{"id":"c","model":"m","choices":[{"index":0,"delta":'
      .. '{"content":"' .. t .. '"},"finish_reason":null}]}' } end
    replies[1] = { events = { { event = "message", data = '{"error":{"message":"overloaded","type":"server_error"}}' } },
                   headers = { ["retry-after-ms"] = "1" } }
    replies[2] = { events = { chunk("a"), chunk("b") } }   -- ends without [DONE]
    local s = client().stream("x")
    local got = {}
    local ok, e = pcall(function() for d in s:iter() do got[#got + 1] = d end end)
    assert.equals(false, ok)
    assert.same({ "a", "b" }, got)
    assert.same({ "protocol", "ab", 2 }, { e.kind, e.partial, #sent })
    assert.rejects(s:result(), "the stream ended before its final event")
  end)

  it("a stream closed while it waits for a slot gives the slot on; no request is sent for it", function()
    local function ok_stream() return { events = {
      { event = "message", data = '{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}' },
      { event = "message", data = "[DONE]" } } }
    end
    replies[1], replies[2] = ok_stream(), ok_stream()
    local c = client({ max_concurrency = 1 })
    local s1 = c.stream("one")
    local s2 = c.stream("two")     -- queued behind s1
    local s3 = c.stream("three")   -- queued behind s2
    assert.equals(1, #sent)
    s2:close()
    assert.rejects(s2:result(), "stream closed")
    assert.same({ "x" }, await(s1:collect()))
    assert.same({ "x" }, await(s3:collect()))
    assert.equals(2, #sent)
    assert.equals("three", json.decode(sent[2].body).messages[1].content)
  end)

  it("JSON mode: invalid JSON from the model is a protocol error with the text", function()
    replies[1] = { body = '{"model":"m","choices":[{"message":{"content":"not json"},"finish_reason":"stop"}]}' }
    local ok, e = pcall(await, client().chat{ prompt = "x", json = true })
    assert.equals(false, ok)
    assert.same({ "protocol", "not json" }, { e.kind, e.text })
    assert.truthy(e.message:find("not valid JSON", 1, true))
    assert.truthy(e.message:find("not json", 1, true))
  end)

  it("a call with only a prompt sends the body and headers of the general path, for every provider", function()
    local prompts = { "hello", 'say "hi"\n\tüñï \\ / \1 end', "" }
    for _, provider in ipairs({ "openai", "anthropic", "ollama" }) do
      local c = client({ provider = provider, max_retries = 0, headers = { ["x-extra"] = "1" } })
      for _, prompt in ipairs(prompts) do
        local calls = {
          function(o) return c.generate(prompt, o) end,
          function(o) return c.stream(prompt, o) end,
          function(o) return c.streamGenerate(prompt, function() end, o) end,
        }
        for k, f in ipairs(calls) do
          local bodies, headers = {}, {}
          for _, o in ipairs({ false, {} }) do
            replies[1] = { fail = { kind = "connect", message = "refused" } }
            local n = #sent
            local r = f(o or nil)
            if getmetatable(r) == Promise then pcall(await, r) else r:close() end
            assert.equals(n + 1, #sent)
            bodies[#bodies + 1] = json.decode(sent[#sent].body)
            headers[#headers + 1] = sent[#sent].headers
          end
          local what = provider .. " call " .. k .. " " .. prompt
          assert.same(bodies[2], bodies[1], what)
          assert.same(headers[2], headers[1], what)
          assert.equals(prompt, bodies[1].messages[#bodies[1].messages].content, what)
          assert.equals("1", headers[1]["x-extra"], what)
        end
      end
    end
  end)

  it("a prompt that is not valid UTF-8 raises at the caller's line, with or without options", function()
    local c = client()
    for _, f in ipairs({ function() local s = c.stream("a\255"); return s end,
                         function() local s = c.stream("a\255", {}); return s end,
                         function() local p = c.generate("a\255"); return p end }) do
      local ok, msg = pcall(f)
      assert.equals(false, ok)
      assert.truthy(msg:find("llm_unit_spec.lua:%d+: ") and msg:find("invalid UTF-8", 1, true), msg)
    end
    assert.equals(0, #sent)
  end)

  it("raises at once for bad arguments, at the caller's line", function()
    local c = client()
    local ok, msg = pcall(c.generate, 42)
    assert.equals(false, ok)
    assert.truthy(msg:find("llm.generate: expected a prompt string, got number", 1, true), msg)
    ok, msg = pcall(c.streamGenerate, "x", "not a function")
    assert.truthy(msg:find("expected a function onChunk", 1, true), msg)
    ok, msg = pcall(c.chat, { prompt = "x", extra = { f = print } })
    assert.truthy(msg:find("cannot encode", 1, true), msg)
    assert.equals(0, #sent)
  end)

  it("c:f() and c.f() both work; c:usage() counts completed calls", function()
    replies[1] = { body = OK }
    replies[2] = { body = OK }
    local c = client()
    assert.equals("fine", await(c:generate("x")))
    assert.equals("fine", await(c.generateAsync("x")))
    assert.same({ m = { requests = 2, input_tokens = 2, output_tokens = 2 } }, c:usage())
    assert.same(c.usage(), c:usage())
    assert.equals("llm client (openai, m)", tostring(c))
  end)
end)
