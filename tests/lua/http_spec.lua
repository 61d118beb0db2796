-- http (API.md section 7): http.request/get/post and fetch against the loopback fixture server
-- (tests/fixtures/http_server.py, routes listed at its top).
local core = require("luasync.core")
local stats = require("luasync.http")._stats

local src = os.getenv("LUASYNC_SOURCE_DIR") or "../.."
local fixture = src .. "/tests/fixtures/http_server.py"

-- Byte i (from 0) of every generated body is 'a' + i % 26.
local function pattern(n)
  return (string.rep("abcdefghijklmnopqrstuvwxyz", math.floor(n / 26) + 1):sub(1, n))
end

-- args: {program, arg...} for node, else the arguments of python3.
local function start_server(args)
  local cmd = "python3"
  if args[1] == "node" then cmd = table.remove(args, 1) end
  local srv = process.spawn(cmd, args)
  local port = srv.stdout:readLine()
  assert.matches("^%d+$", port)
  return srv, port
end

local function stop_server(srv)
  srv:kill()
  await(srv:wait())
end

local function in_flight_soon(n)
  for _ = 1, 100 do
    if stats().in_flight == n then return true end
    sleep(0.01)
  end
  return stats().in_flight == n
end

local function rss_bytes()
  local f = io.open("/proc/self/statm")
  if not f then return 0 end
  local _, resident = f:read("*a"):match("(%d+)%s+(%d+)")
  f:close()
  return tonumber(resident) * 4096
end

-- Accepts connections one at a time; for each: reads the request, sends headers promising 1 MB and 1000
-- bytes of it, prints "sent", then prints "closed" when the client closes (or resets) the connection.
local WATCH_SERVER = [[
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
    print("sent", flush=True)
    c.settimeout(10)
    try:
        while c.recv(65536):
            pass
        print("closed", flush=True)
    except ConnectionResetError:
        print("closed", flush=True)  # a close with unread data in the client's buffer is a reset
    except OSError as e:
        print("error", e, flush=True)
    c.close()
]]

local server, base

setup(function()
  local port
  server, port = start_server({ fixture, "--port", "0" })
  base = "http://127.0.0.1:" .. port
end)

teardown(function()
  stop_server(server)
end)

describe("http.get", function()
  it("returns status, lower-case headers and the body", function()
    local r = await(http.get(base .. "/small"))
    assert.equals(200, r.status)
    assert.equals(pattern(64), r.body)
    assert.equals("64", r.headers["content-length"])
    assert.equals("text/plain", r.headers["content-type"])
    assert.is_nil(r.headers["Content-Type"])
  end)

  it("reads a large Content-Length body exactly", function()
    local r = await(http.get(base .. "/bytes/1000003"))
    assert.equals(1000003, #r.body)
    assert.truthy(r.body == pattern(1000003))
  end)

  it("reads large bodies of shrinking and growing sizes in turn, each exact (pooled buffers)", function()
    for _, size in ipairs({ 900001, 300007, 262144, 1500000, 5 }) do
      local rs = await(Promise.all({ http.get(base .. "/bytes/" .. size), http.get(base .. "/bytes/" .. size) }))
      for _, r in ipairs(rs) do
        assert.equals(size, #r.body)
        assert.truthy(r.body == pattern(size))
      end
    end
  end)

  it("decodes a chunked body", function()
    local r = await(http.get(base .. "/chunked/50000?size=777"))
    assert.equals("chunked", r.headers["transfer-encoding"])
    assert.equals(50000, #r.body)
    assert.truthy(r.body == pattern(50000))
  end)

  it("joins repeated headers with a comma and unfolds folded ones", function()
    local r = await(http.get(base .. "/headers"))
    assert.equals("a, b", r.headers["x-multi"])
    assert.equals("one two", r.headers["x-folded"])
    assert.equals("Value", r.headers["x-case"])
    assert.equals("ok", r.body)
  end)

  it("decodes gzip", function()
    local r = await(http.get(base .. "/gzip?n=10000"))
    assert.equals("gzip", r.headers["content-encoding"])
    assert.truthy(r.body == pattern(10000))
  end)

  it("resolves statuses >= 400 normally", function()
    local r = await(http.get(base .. "/status/503"))
    assert.equals(503, r.status)
    assert.equals("status 503", r.body)
    assert.equals(404, await(http.get(base .. "/nowhere")).status)
  end)

  it("follows up to 10 redirects, on GET only", function()
    local r = await(http.get(base .. "/redirect/10"))
    assert.equals(200, r.status)
    assert.equals("redirected", r.body)
    assert.equals(base .. "/redirect/0", r.url)
    local e = assert.rejects(http.get(base .. "/redirect/11"))
    assert.equals("protocol", e.kind)
    assert.matches("redirect", e.message:lower())
    local p = await(http.post(base .. "/redirect/1", "x"))
    assert.equals(302, p.status)
    assert.equals("/redirect/0", p.headers.location)
  end)

  -- Sequential requests reuse one easy handle and the URL it holds parsed (CURLOPT_CURLU): each transfer must
  -- still go to, and be named by, its own URL, also right after a redirect and when the URL comes back.
  it("sends sequential requests for changing URLs each to its own URL", function()
    local urls = { "/status/201", "/redirect/2", "/redirect/2", "/status/202", "/status/201", "/echo?q=1",
                   "/redirect/1", "/status/202" }
    local got = {}
    for i, path in ipairs(urls) do
      local r = await(http.get(base .. path))
      local want_url = base .. (path:match("^/redirect/") and "/redirect/0" or path)
      local body = path:match("^/echo") and json.decode(r.body).query or r.body
      got[i] = string.format("%d %s %s", r.status, r.url == want_url and "url ok" or r.url, body)
    end
    assert.same({ "201 url ok status 201", "200 url ok redirected", "200 url ok redirected", "202 url ok status 202",
                  "201 url ok status 201", "200 url ok q=1", "200 url ok redirected", "202 url ok status 202" }, got)
  end)

  it("runs 1,000 requests at once, all correct", function()
    local ps = {}
    for i = 1, 1000 do ps[i] = http.get(base .. "/bytes/" .. (i * 7)) end
    local rs = await(Promise.all(ps))
    local bad = 0
    for i = 1, 1000 do
      if rs[i].status ~= 200 or rs[i].body ~= pattern(i * 7) then bad = bad + 1 end
    end
    assert.equals(0, bad)
    assert.equals(0, stats().in_flight)
  end)
end)

describe("failures", function()
  it("times out (kind timeout), in about the time asked", function()
    local t0 = core.hrtime()
    local e = assert.rejects(http.get(base .. "/hang", { timeout = 0.3 }))
    local took = core.hrtime() - t0
    assert.equals("timeout", e.kind)
    assert.truthy(took >= 0.29 and took < 2, "took " .. took)
    assert.matches("^GET http://127%.0%.0%.1:%d+/hang: ", e.message)
  end)

  it("reports a refused connection as connect", function()
    local e = assert.rejects(http.get("http://127.0.0.1:1/x"))
    assert.equals("connect", e.kind)
  end)

  it("reports a reset as protocol", function()
    assert.equals("protocol", assert.rejects(http.get(base .. "/reset")).kind)
  end)

  it("reports a connection dropped mid-body as protocol", function()
    assert.equals("protocol", assert.rejects(http.get(base .. "/disconnect/5000")).kind)
    local r = await(http.request { url = base .. "/disconnect/5000", stream = true })
    assert.equals(200, r.status)
    local got = 0
    local ok, e = pcall(function()
      for c in r.body:iter() do got = got + #c end
    end)
    assert.is_false(ok)
    assert.equals("protocol", e.kind)
    assert.equals(5000, got)
  end)

  it("enforces max_body (too_large), by Content-Length or by counting", function()
    local e = assert.rejects(http.get(base .. "/bytes/100000", { max_body = 1000 }))
    assert.equals("too_large", e.kind)
    e = assert.rejects(http.get(base .. "/chunked/100000", { max_body = 1000 }))
    assert.equals("too_large", e.kind)
    assert.equals(1000, #await(http.get(base .. "/bytes/1000", { max_body = 1000 })).body)
  end)

  it("raises at once for bad arguments", function()
    assert.has_error(function() http.request({}) end, "http.request: url is required")
    assert.has_error(function() http.get() end, "http.get: url is required")
    assert.has_error(function() http.get("ftp://127.0.0.1/x") end,
      'http.get: unsupported URL scheme "ftp" (only http and https)')
    assert.has_error(function() http.get("127.0.0.1/x") end, "http.get: invalid URL")
    assert.has_error(function() http.get(base, { timeout = "soon" }) end,
      "http.get: timeout must be a number of seconds >= 0")
    assert.has_error(function() http.get(base, { framing = "sse" }) end, "http.get: framing needs stream=true")
    assert.has_error(function() http.post(base, {}) end, "http.post: body must be a string or a Stream")
    assert.has_error(function() fetch(base, { method = "GE T" }) end, "fetch: invalid method")
  end)

  it("names the caller's line in argument errors", function()
    local function where(f)
      local ok, e = pcall(f)
      assert.is_false(ok)
      return e:match("^[^:]*http_spec%.lua:(%d+): ")
    end
    local line = debug.getinfo(1, "l").currentline
    assert.equals(tostring(line + 1), where(function() local p = http.get("ftp://127.0.0.1/x"); return p end))
    assert.equals(tostring(line + 2), where(function() local p = http.post("ftp://127.0.0.1/x", ""); return p end))
    assert.equals(tostring(line + 3), where(function() local p = http.request({ url = 1 }); return p end))
    assert.equals(tostring(line + 4), where(function() local p = fetch("ftp://127.0.0.1/x"); return p end))
  end)

  it("rejects CR/LF in headers without sending anything or quoting the value", function()
    local e = assert.has_error(function()
      http.get(base .. "/echo", { headers = { Authorization = "Bearer sk-123\r\nX-Evil: 1" } })
    end, 'http.get: header value contains CR or LF (header "Authorization")')
    assert.falsy(tostring(e):find("sk-123", 1, true))
    assert.has_error(function() http.get(base, { headers = { ["X-A\nB"] = "v" } }) end,
      "http.get: header name contains CR or LF")
    assert.equals(0, stats().in_flight)
  end)

  it("keeps header values out of error messages", function()
    local secret = "sk-test-very-secret-0123456789"
    local hs = { Authorization = "Bearer " .. secret, ["X-Api-Key"] = secret }
    local errs = {
      assert.rejects(http.get(base .. "/hang", { headers = hs, timeout = 0.1 })),
      assert.rejects(http.get("http://127.0.0.1:1/?key=" .. secret, { headers = hs })),
      assert.rejects(http.get(base .. "/reset", { headers = hs })),
    }
    for _, e in ipairs(errs) do
      for k, v in pairs(e) do
        assert.falsy(tostring(v):find(secret, 1, true), "field " .. k .. " holds the secret")
      end
      assert.falsy(tostring(e):find(secret, 1, true))
    end
  end)
end)

describe("request bodies and headers", function()
  it("sends method, headers and a string body", function()
    local r = await(http.request { method = "put", url = base .. "/echo?a=1", body = "hello\0world",
                                   headers = { ["X-One"] = "1", ["X-Num"] = 42, ["X-Empty"] = "" } })
    local j = json.decode(r.body)
    assert.equals("PUT", j.method)
    assert.equals("/echo", j.path)
    assert.equals("a=1", j.query)
    assert.equals("hello\0world", j.body)
    assert.equals("1", j.headers["x-one"])
    assert.equals("42", j.headers["x-num"])
    assert.equals("", j.headers["x-empty"])
    assert.equals("11", j.headers["content-length"])
  end)

  it("sends headers checked once (http._prepare_headers) with and without a body, each time as given", function()
    local given = { ["X-One"] = "1", Authorization = "Bearer t" }
    local h = http._prepare_headers("test", given)
    given["X-One"] = "changed"  -- the prepared set is a copy
    for round = 1, 2 do
      for _, method in ipairs({ "GET", "POST", "GET" }) do
        local r = await(http.request { method = method, url = base .. "/echo", headers = h,
                                       body = method == "POST" and "{}" or nil })
        local j = json.decode(r.body)
        local seen = { j.method, j.headers["x-one"], j.headers.authorization, j.headers["content-type"],
                       j.headers["user-agent"] ~= nil, j.headers.expect, j.body }
        -- (without a Content-Type of its own, a POST must not get curl's form type)
        assert.same({ method, "1", "Bearer t", nil, true, nil, method == "POST" and "{}" or "" }, seen,
          method .. " in round " .. round)
      end
    end
    assert.has_error(function() http._prepare_headers("llm", { A = "x\r\ny" }) end,
      'llm: header value contains CR or LF (header "A")')
    assert.has_error(function() http._prepare_headers("llm", { ["A B"] = "x" }) end, 'llm: invalid header name "A B"')
  end)

  it("streams a request body from a Stream, chunked", function()
    local parts = {}
    for i = 1, 50 do parts[i] = string.rep(string.char(64 + i % 26), 1000 + i) end
    local slow = Stream.from(parts):map(function(c) sleep(0.001) return c end)
    local r = await(http.post(base .. "/echo", slow))
    local j = json.decode(r.body)
    assert.equals("chunked", j.headers["transfer-encoding"])
    assert.equals(table.concat(parts), j.body)
  end)

  it("sends a streamed body with Content-Length when the header gives it", function()
    local r = await(http.post(base .. "/echo", Stream.from({ "abc", "de", 7 }), { headers = { ["Content-Length"] = "6" } }))
    local j = json.decode(r.body)
    assert.equals("abcde7", j.body)
    assert.equals("6", j.headers["content-length"])
    assert.is_nil(j.headers["transfer-encoding"])
  end)

  it("fails the transfer (cancelled) when the body stream fails", function()
    local bad = Stream.from({ "a", "b" }):map(function(c)
      if c == "b" then error("disk on fire", 0) end
      return c
    end)
    local e = assert.rejects(http.post(base .. "/echo", bad))
    assert.equals("cancelled", e.kind)
    assert.matches("disk on fire", e.message)
  end)
end)

describe("streamed responses", function()
  it("resolves at the headers, then streams the body", function()
    local t0 = core.hrtime()
    local r = await(http.request { url = base .. "/slow?chunks=5&delay=0.1", stream = true })
    assert.truthy(core.hrtime() - t0 < 0.3, "resolved only after the body")
    assert.equals(200, r.status)
    local text = table.concat(await(r.body:collect()))
    assert.equals("chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n", text)
    assert.truthy(core.hrtime() - t0 >= 0.35)
  end)

  it("keeps memory bounded with a slow consumer (backpressure)", function()
    local size = 96 * 1024 * 1024
    local r = await(http.request { url = base .. "/bytes/" .. size, stream = true })
    collectgarbage()
    local rss0 = rss_bytes()
    sleep(0.3)  -- not reading: the server fills the pipe, we pause at the high-water mark
    local total, largest, peak, n = 0, 0, 0, 0
    for c in r.body:iter() do
      total = total + #c
      if #c > largest then largest = #c end
      n = n + 1
      if n % 64 == 0 then
        local rss = rss_bytes()
        if rss > peak then peak = rss end
      end
      if n % 256 == 0 then sleep(0.001) end
    end
    assert.equals(size, total)
    assert.truthy(largest <= 320 * 1024, "largest chunk " .. largest)
    assert.truthy(peak - rss0 < 48 * 1024 * 1024, "RSS grew by " .. (peak - rss0))
  end)

  it("closing the body aborts the transfer", function()
    local r = await(http.request { url = base .. "/slow?chunks=50&delay=0.05", stream = true })
    assert.equals("chunk 0\n", r.body:read())
    r.body:close()
    assert.is_nil(r.body:read())
    assert.is_true(in_flight_soon(0))
  end)

  it("frames server-sent events", function()
    local r = await(http.request { url = base .. "/sse?n=4", stream = true, framing = "sse" })
    local evs = await(r.body:collect())
    assert.same({ { event = "message", data = "event 0" }, { event = "message", data = "event 1" },
                  { event = "message", data = "event 2" }, { event = "message", data = "event 3" } }, evs)
  end)

  it("frames server-sent events with types and ids", function()
    local r = await(http.request { url = base .. "/sse?n=5&typed=1", stream = true, framing = "sse" })
    local evs = await(r.body:collect())
    -- The last event ID carries over to later events (the SSE spec's "last event ID").
    assert.same({ { event = "a", data = "event 0" }, { event = "a", data = "event 1", id = "1" },
                  { event = "b", data = "event 2", id = "1" }, { event = "a", data = "event 3", id = "3" },
                  { event = "a", data = "event 4", id = "3" } }, evs)
  end)

  it("frames NDJSON lines", function()
    local r = await(http.request { url = base .. "/slow?chunks=3&delay=0", stream = true, framing = "ndjson" })
    assert.same({ "chunk 0", "chunk 1", "chunk 2" }, await(r.body:collect()))
  end)

  it("leaves error bodies unframed", function()
    local r = await(http.request { url = base .. "/status/429", stream = true, framing = "sse" })
    assert.equals(429, r.status)
    assert.same({ "status 429" }, await(r.body:collect()))
  end)
end)

describe("cancellation", function()
  local watch, watch_port

  setup(function()
    watch, watch_port = start_server({ "-c", WATCH_SERVER })
  end)

  teardown(function()
    stop_server(watch)
  end)

  it("p:cancel() aborts mid-transfer and the server sees the connection closed", function()
    local p = http.get("http://127.0.0.1:" .. watch_port .. "/")
    assert.equals("sent", watch.stdout:readLine())
    assert.is_true(p:cancel())
    local e = assert.rejects(p)
    assert.equals("cancelled", e.kind)
    assert.equals("closed", watch.stdout:readLine())
    assert.equals(0, stats().in_flight)
  end)

  it("closing a streamed body closes the connection", function()
    local r = await(http.request { url = "http://127.0.0.1:" .. watch_port .. "/", stream = true })
    assert.equals("sent", watch.stdout:readLine())
    assert.equals(1000, #r.body:read())
    r.body:close()
    assert.equals("closed", watch.stdout:readLine())
  end)

  it("cancelling a task that awaits a request aborts it", function()
    local task = spawn(function() return await(http.get(base .. "/hang")) end)
    assert.is_true(in_flight_soon(1))
    task:cancel()
    assert.equals("cancelled", assert.rejects(task).kind)
    assert.equals(0, stats().in_flight)
  end)

  it("a task reading a streamed body can be cancelled", function()
    local r = await(http.request { url = base .. "/slow?chunks=20&delay=0.2", stream = true })
    local reader = spawn(function() return await(r.body:collect()) end)
    sleep(0.05)
    reader:cancel()
    assert.equals("cancelled", assert.rejects(reader).kind)
    assert.is_true(in_flight_soon(0))
  end)
end)

describe("fetch", function()
  it("resolves at the headers; text() and json() read the body", function()
    local res = await(fetch(base .. "/echo", { method = "POST", body = '{"x":1}',
                                              headers = { ["Content-Type"] = "application/json" } }))
    assert.equals(200, res.status)
    assert.is_true(res.ok)
    assert.equals("application/json", res.headers["content-type"])
    local j = await(res:json())
    assert.equals("POST", j.method)
    assert.equals('{"x":1}', j.body)
    assert.equals("application/json", j.headers["content-type"])
    assert.equals("fetch: the response body was already read", assert.rejects(res:text()).message)
  end)

  it("gives ok=false for 4xx/5xx and a readable body", function()
    local res = await(fetch(base .. "/status/404"))
    assert.equals(404, res.status)
    assert.is_false(res.ok)
    assert.equals("status 404", await(res:text()))
  end)

  it("exposes the body as a Stream", function()
    local res = await(fetch(base .. "/chunked/3000?size=1000"))
    assert.equals(pattern(3000), table.concat(await(res.body:collect())))
  end)

  it("rejects invalid JSON from json()", function()
    local res = await(fetch(base .. "/small"))
    assert.rejects(res:json())
  end)

  it("applies timeout to the whole transfer", function()
    local e = assert.rejects(fetch(base .. "/hang", { timeout = 0.1 }))
    assert.equals("timeout", e.kind)
  end)
end)

describe("https", function()
  local tls, tls_port

  setup(function()
    tls, tls_port = start_server({ fixture, "--port", "0", "--tls" })
  end)

  teardown(function()
    stop_server(tls)
  end)

  it("verifies certificates: a self-signed one fails with kind tls", function()
    local e = assert.rejects(http.get("https://127.0.0.1:" .. tls_port .. "/small"))
    assert.equals("tls", e.kind)
  end)

  it("insecure=true skips verification", function()
    local r = await(http.get("https://127.0.0.1:" .. tls_port .. "/small", { insecure = true }))
    assert.equals(200, r.status)
    assert.equals(pattern(64), r.body)
  end)
end)

describe("http/2", function()
  local h2, h2_port

  setup(function()
    h2, h2_port = start_server({ "node", src .. "/tests/fixtures/h2_server.mjs" })
  end)

  teardown(function()
    stop_server(h2)
  end)

  it("multiplexes concurrent requests on one connection", function()
    local ps = {}
    for i = 1, 20 do
      ps[i] = http.get("https://127.0.0.1:" .. h2_port .. "/r" .. i, { insecure = true })
    end
    local rs = await(Promise.all(ps))
    for i = 1, 20 do
      assert.equals(200, rs[i].status)
      assert.equals("h2 /r" .. i, rs[i].body)
      assert.equals("a, b", rs[i].headers["x-rep"])
    end
    assert.equals("1", rs[20].headers["x-sessions"])
  end)
end)
