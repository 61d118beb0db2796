"""LLM module, black-box: API keys never reach stderr, --llm-usage, the default client from the
environment, and the LLM examples in docs/examples run against the fake provider server."""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstest import ROOT, Suite  # noqa: E402

s = Suite()
EX = os.path.join(ROOT, "docs", "examples")
KEY = "sk-cli-test-SECRET-7d2e9f41a0"
LLM_VARS = ("LUASYNC_LLM_PROVIDER", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL", "OLLAMA_HOST", "LUASYNC_LLM_MODEL")


def start_fake(*args):
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "fixtures", "llm_server.py"),
                          "--port", "0", *args], stdout=subprocess.PIPE)
    return p, int(p.stdout.readline())


def control(port, path, body=None):
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def llm_env(**kw):
    """Environment with every LLM variable cleared (an empty value counts as unset), then kw."""
    e = {k: "" for k in LLM_VARS}
    e.update(kw)
    return e


# A server that quotes the credentials it got, as some providers do in their errors.
class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        cred = self.headers.get("x-api-key") or self.headers.get("authorization") or ""
        if self.path.endswith("/stream/chat/completions"):
            body = ('data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"hi"},'
                    '"finish_reason":null}]}\n\n'
                    'data: {"error":{"message":"bad key %s","type":"invalid_request_error"}}\n\n' % cred)
            data = body.encode()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
        else:
            data = json.dumps({"error": {"message": "Incorrect API key provided: %s" % cred,
                                         "type": "invalid_request_error"}}).encode()
            self.send_response(401)
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


echo = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
threading.Thread(target=echo.serve_forever, daemon=True).start()
echo_url = "http://127.0.0.1:%d" % echo.server_address[1]

fake, port = start_fake("--api-key", KEY)
slow, slow_port = start_fake("--api-key", KEY)
try:
    base = "http://127.0.0.1:%d" % port
    openai_env = llm_env(LUASYNC_LLM_PROVIDER="openai", OPENAI_BASE_URL=base + "/v1", OPENAI_API_KEY=KEY)

    # --- No provider configured: a clear error naming the variables -------------------------
    r = s.run(["-e", 'print(await(llm.generate("x")))'], env=llm_env())
    s.eq("no provider: exit 1", r.rc, 1, r)
    s.contains("no provider: names the variables", r.err,
               "llm: no provider configured: set LUASYNC_LLM_PROVIDER (openai, anthropic or ollama) with "
               "OPENAI_API_KEY", r)
    s.contains("no provider: error at the user's line", r.err, "(command line):1:", r)

    # --- The default client from the environment --------------------------------------------
    r = s.run(["-e", 'local r = await(llm.chat{prompt = "env works"}); print(r.text, r.model)'], env=openai_env)
    s.eq("default client (openai)", (r.rc, r.out, r.err), (0, "echo: env works\tgpt-4o-mini\n", ""), r)
    r = s.run(["-e", 'print(await(llm.generate("a")), await(llmBridge.generateAsync("b")))'],
              env=llm_env(ANTHROPIC_BASE_URL=base, ANTHROPIC_API_KEY=KEY, LUASYNC_LLM_MODEL="claude-x"))
    s.eq("default client (anthropic inferred from its key)", (r.rc, r.out), (0, "echo: a\techo: b\n"), r)
    r = s.run(["-e", 'print(await(llm.generate("o")))'], env=llm_env(OLLAMA_HOST="127.0.0.1:%d" % port))
    s.eq("default client (ollama from OLLAMA_HOST without http://)", (r.rc, r.out), (0, "echo: o\n"), r)

    # --- --llm-usage ------------------------------------------------------------------------
    r = s.run(["--llm-usage", "-e", 'await(llm.generate("one two")); await(llm.generate("three"))'],
              env=openai_env)
    s.eq("--llm-usage table on stderr", (r.rc, r.out, r.err),
         (0, "", "llm usage:\n"
                 "model        requests   input_tokens  output_tokens\n"
                 "gpt-4o-mini         2              3              5\n"), r)
    r = s.run(["--llm-usage", "-e", "print(1)"], env=openai_env)
    s.eq("--llm-usage without calls", (r.rc, r.out, r.err), (0, "1\n", "llm usage: no requests\n"), r)
    r = s.run(["--llm-usage", "-e", 'await(llm.generate("x")); error("late failure")'], env=openai_env)
    s.check("--llm-usage also after an error", r.rc == 1 and "late failure" in r.err
            and "gpt-4o-mini         1" in r.err, r)

    # --- API keys never reach stderr ----------------------------------------------------------
    failing = {
        "401 from the fake server (default client)": (
            'print(await(llm.generate("x")))',
            llm_env(LUASYNC_LLM_PROVIDER="openai", OPENAI_BASE_URL=base + "/v1", OPENAI_API_KEY=KEY + "-wrong")),
        "a server that quotes the key (OpenAI)": (
            'print(await(llm.generate("x")))',
            llm_env(OPENAI_BASE_URL=echo_url + "/v1", OPENAI_API_KEY=KEY)),
        "a server that quotes the key (Anthropic)": (
            'print(await(llm.generate("x")))',
            llm_env(ANTHROPIC_BASE_URL=echo_url, ANTHROPIC_API_KEY=KEY)),
        "a stream error event that quotes the key": (
            'for d in llm.stream("x"):iter() do io.write(d) end',
            llm_env(OPENAI_BASE_URL=echo_url + "/stream", OPENAI_API_KEY=KEY)),
        "streamGenerate's onChunk re-raising the error, with --llm-usage": (
            'await(llm.streamGenerate("x", function(t, err) if err then error(err) end end))',
            llm_env(OPENAI_BASE_URL=echo_url + "/stream", OPENAI_API_KEY=KEY)),
        "printing the error's fields": (
            'local ok, e = pcall(await, llm.generate("x")); for k, v in pairs(e) do io.stderr:write(k, "=", '
            'tostring(v), "\\n") end; error(e)',
            llm_env(OPENAI_BASE_URL=echo_url + "/v1", OPENAI_API_KEY=KEY)),
        "an unreachable server with the key in the URL": (
            'print(await(llm.client{provider="openai", base_url="http://u:%s@127.0.0.1:1/v1?key=%s", '
            'max_retries=0}.generate("x")))' % (KEY, KEY),
            llm_env(OPENAI_API_KEY=KEY)),
        "a key in a custom header": (
            'print(await(llm.client{provider="openai", base_url="%s/v1", api_key="k", '
            'headers={authorization="Bearer %s"}}.generate("x")))' % (echo_url, KEY),
            llm_env()),
        "a key with a line break": (
            'print(llm.client{provider="openai", api_key="%s\\nx"})' % KEY,
            llm_env()),
    }
    for name, (code, env) in failing.items():
        path = s.write("fail.lua", code + "\n")
        r = s.run(["--llm-usage", path], env=env)
        s.check("fails: " + name, r.rc == 1 and r.err != "", r)
        s.check("no key in stderr: " + name, KEY not in r.err and KEY not in r.out, r)
    r = s.run(["-e", 'print(await(llm.generate("x")))'], env=llm_env(OPENAI_BASE_URL=echo_url + "/v1",
                                                                   OPENAI_API_KEY=KEY))
    s.contains("the quoted key is replaced", r.err,
               "openai: HTTP 401 invalid_request_error: Incorrect API key provided: Bearer [redacted]", r)

    # --- Examples -------------------------------------------------------------------------------
    r = s.run(["llm_summarize.lua"], cwd=EX, env=openai_env,
              input=b"The cat sat on the mat.\n\n  luasync runs Lua on libuv.\nthird   line\n")
    s.eq("llm_summarize.lua", (r.rc, r.out, r.err),
         (0, "1. echo: Summarize in one short sentence: The cat sat on the mat.\n"
             "2. echo: Summarize in one short sentence: luasync runs Lua on libuv.\n"
             "3. echo: Summarize in one short sentence: third line\n", ""), r)

    control(port, "/_reset", {})
    control(port, "/_scenario", {"scenario": "latency-ms=30", "times": 40})
    lines = "".join("line %d\n" % i for i in range(40))
    r = s.run(["llm_summarize.lua"], cwd=EX, env=openai_env, input=lines.encode())
    want = "".join("%d. echo: Summarize in one short sentence: line %d\n" % (i + 1, i) for i in range(40))
    st = control(port, "/_stats")
    s.eq("llm_summarize.lua: 40 lines in order", (r.rc, r.out), (0, want), r)
    s.check("llm_summarize.lua: concurrent, 8 requests in flight at most (%d)" % st["max_in_flight"],
            4 <= st["max_in_flight"] <= 8)

    r = s.run(["llm_stream.lua", "why is the sky blue"], cwd=EX, env=openai_env)
    s.eq("llm_stream.lua", (r.rc, r.out, r.err),
         (0, "echo: why is the sky blue\n", "[gpt-4o-mini: 7 input + 6 output tokens, stop]\n"), r)

    r = s.run(["complete_async.lua"], cwd=EX, env=openai_env)
    s.eq("complete_async.lua", (r.rc, r.out, r.err),
         (0, "Conversation complete:\t2\tmessages\n"
             "echo: Explain channels in one line\n"
             "Streamed\t34\tbytes\n"
             "Got\t3\tresponses\n", ""), r)

    # The race: Anthropic's server answers after 3 s, so OpenAI wins and the script ends at once.
    control(slow_port, "/_scenario", {"scenario": "latency-ms=3000", "times": 1})
    t0 = time.time()
    r = s.run(["llm_race.lua", "a prime"], cwd=EX,
              env=llm_env(OPENAI_BASE_URL=base + "/v1", OPENAI_API_KEY=KEY,
                          ANTHROPIC_BASE_URL="http://127.0.0.1:%d" % slow_port, ANTHROPIC_API_KEY=KEY))
    took = time.time() - t0
    s.eq("llm_race.lua", (r.rc, r.out, r.err), (0, "openai answered first: echo: a prime\n", ""), r)
    s.check("llm_race.lua does not wait for the loser (%.2fs)" % took, took < 2.5)
finally:
    for p in (fake, slow):
        p.terminate()
        p.wait()
    echo.shutdown()

s.done()
