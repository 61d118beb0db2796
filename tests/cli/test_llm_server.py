#!/usr/bin/env python3
"""Self-test of tests/fixtures/llm_server.py: every protocol and scenario, checked on the wire."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

ROOT = os.environ.get("LUASYNC_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SERVER = os.path.join(ROOT, "tests", "fixtures", "llm_server.py")

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def start_server(*extra):
    proc = subprocess.Popen([sys.executable, SERVER, "--port", "0", *extra], stdout=subprocess.PIPE)
    port = int(proc.stdout.readline())
    return proc, port


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


PROC, PORT = None, None


def url(path):
    return "http://127.0.0.1:%d%s" % (PORT, path)


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def request(path, body=None, headers=None, method=None, port=None):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    h = {"content-type": "application/json"}
    h.update(headers or {})
    target = "http://127.0.0.1:%d%s" % (port or PORT, path)
    req = urllib.request.Request(target, data=data, headers=h, method=method or ("POST" if data else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def openai(prompt="hello world", scenario=None, **fields):
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": prompt}]}
    body.update(fields)
    return request("/v1/chat/completions", body, {"x-fake-scenario": scenario} if scenario else None)


def anthropic(prompt="hello world", scenario=None, headers=None, **fields):
    body = {"model": "claude-test", "max_tokens": 100, "messages": [{"role": "user", "content": prompt}]}
    body.update(fields)
    h = dict(ANTHROPIC_HEADERS if headers is None else headers)
    if scenario:
        h["x-fake-scenario"] = scenario
    return request("/v1/messages", body, h)


def ollama(prompt="hello world", scenario=None, **fields):
    body = {"model": "llama-test", "messages": [{"role": "user", "content": prompt}]}
    body.update(fields)
    return request("/api/chat", body, {"x-fake-scenario": scenario} if scenario else None)


def parse_sse(text):
    """Minimal WHATWG-style SSE parser: [(event, data)], plus whether the text ended on a boundary."""
    events, data, event = [], [], ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines[:-1]:
        if line == "":
            if data:
                events.append((event or "message", "\n".join(data)))
            data, event = [], ""
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
    return events


def parse_ndjson(text):
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def eq(got, want, what=""):
    assert got == want, "%s: got %r, want %r" % (what, got, want)


def reset():
    eq(request("/_reset", b"{}").status, 200, "reset")


def stats():
    return request("/_stats").json()


def raw_exchange(payload, port=None):
    """Sends raw bytes, returns all bytes until the server closes or 2 s of silence."""
    s = socket.create_connection(("127.0.0.1", port or PORT), timeout=2)
    s.sendall(payload)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            if out.endswith(b"0\r\n\r\n"):
                break
    except socket.timeout:
        pass
    s.close()
    return out


def dechunk(raw):
    """Splits a raw chunked response into (head, [chunks], terminated)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    chunks = []
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return head, chunks, False
        size = int(size_line, 16)
        if size == 0:
            return head, chunks, rest == b"\r\n"
        chunks.append(rest[:size])
        assert rest[size:size + 2] == b"\r\n", "chunk not followed by CRLF"
        rest = rest[size + 2:]
    return head, chunks, False


def raw_post(path, body, headers=None):
    data = json.dumps(body).encode()
    h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    req = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\nConnection: close\r\n%s\r\n" % (path, len(data), h)).encode() + data
    return raw_exchange(req)


# --- OpenAI -------------------------------------------------------------------------

@test
def openai_non_streaming():
    reset()
    r = openai("hello world")
    eq(r.status, 200, "status")
    eq(r.headers["content-type"], "application/json", "content-type")
    eq(r.headers["x-request-id"], "req_fake_1", "x-request-id")
    eq(r.json(), {
        "id": "chatcmpl-fake-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "echo: hello world", "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
        "system_fingerprint": None}, "body")


@test
def openai_streaming_with_usage():
    reset()
    r = openai("hello  wörld", stream=True, stream_options={"include_usage": True})
    eq(r.status, 200, "status")
    eq(r.headers["content-type"], "text/event-stream", "content-type")
    eq(r.headers["transfer-encoding"], "chunked", "transfer-encoding")
    events = parse_sse(r.body.decode())
    eq([e for e, _ in events], ["message"] * 7, "no event names")
    eq(events[-1][1], "[DONE]", "last")
    chunks = [json.loads(d) for _, d in events[:-1]]
    eq(chunks[0]["choices"][0]["delta"], {"role": "assistant", "content": "", "refusal": None}, "first delta")
    eq([c["choices"][0]["delta"].get("content") for c in chunks[1:4]], ["echo:", " hello", "  wörld"], "deltas")
    eq(chunks[4]["choices"], [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], "finish")
    eq(chunks[5]["choices"], [], "usage chunk has no choices")
    eq(chunks[5]["usage"], {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}, "usage")
    for c in chunks[:5]:
        eq(c["usage"], None, "usage null on other chunks")
        eq((c["id"], c["object"], c["model"]), ("chatcmpl-fake-1", "chat.completion.chunk", "gpt-test"), "ids")
    # The exact bytes of one frame.
    assert b'data: {"id":"chatcmpl-fake-1","object":"chat.completion.chunk","created":1700000000,' \
           b'"model":"gpt-test","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"echo:"},' \
           b'"logprobs":null,"finish_reason":null}],"usage":null}\n\n' in r.body, r.body[:400]
    assert r.body.endswith(b"\n\ndata: [DONE]\n\n"), r.body[-40:]


@test
def openai_streaming_without_usage():
    r = openai("hi", stream=True)
    events = parse_sse(r.body.decode())
    eq(len(events), 5, "role, 2 deltas, finish, [DONE]")
    for _, d in events[:-1]:
        assert "usage" not in json.loads(d), d


@test
def openai_tokens_prompt_and_max_tokens():
    r = openai("tokens=5").json()
    eq(r["choices"][0]["message"]["content"], "tok1 tok2 tok3 tok4 tok5", "tokens=N")
    eq(r["usage"]["completion_tokens"], 5, "completion_tokens")
    r = openai("hello big world", max_tokens=2).json()
    eq(r["choices"][0]["message"]["content"], "echo: hello", "truncated")
    eq(r["choices"][0]["finish_reason"], "length", "finish_reason")
    r = openai("tokens=4", max_completion_tokens=3, stream=True)
    chunks = [json.loads(d) for _, d in parse_sse(r.body.decode())[:-1]]
    eq("".join(c["choices"][0]["delta"].get("content", "") for c in chunks), "tok1 tok2 tok3", "stream text")
    eq(chunks[-1]["choices"][0]["finish_reason"], "length", "stream finish")
    r = openai("x", scenario="tokens=3").json()
    eq(r["choices"][0]["message"]["content"], "tok1 tok2 tok3", "tokens= scenario")


@test
def openai_json_mode_and_multi_turn():
    r = openai("hi", response_format={"type": "json_object"}).json()
    eq(json.loads(r["choices"][0]["message"]["content"]), {"echo": "hi"}, "json mode")
    body = {"model": "m", "messages": [{"role": "system", "content": "be brief"},
                                       {"role": "user", "content": "first question"},
                                       {"role": "assistant", "content": "an answer"},
                                       {"role": "user", "content": [{"type": "text", "text": "second"}]}]}
    r = request("/chat/completions", body).json()
    eq(r["choices"][0]["message"]["content"], "echo: second", "last user message, block content")
    eq(r["usage"]["prompt_tokens"], 7, "words in all messages")


@test
def openai_models():
    eq(request("/v1/models").json()["data"][0]["id"], "fake-model", "model list")


# --- Anthropic -----------------------------------------------------------------------

@test
def anthropic_required_headers_and_fields():
    r = anthropic(headers={"anthropic-version": "2023-06-01"})
    eq(r.status, 401, "no key")
    eq(r.json()["type"], "error", "type")
    eq(r.json()["error"]["type"], "authentication_error", "error type")
    r = anthropic(headers={"x-api-key": "k"})
    eq(r.status, 400, "no version")
    eq(r.json(), {"type": "error", "error": {"type": "invalid_request_error",
                                             "message": "anthropic-version: header is required"}}, "body")
    r = request("/v1/messages", {"model": "m", "messages": []}, ANTHROPIC_HEADERS)
    eq((r.status, r.json()["error"]["message"]), (400, "max_tokens: Field required"), "max_tokens")


@test
def anthropic_non_streaming():
    reset()
    r = anthropic("hi there", system="you are terse")
    eq(r.status, 200, "status")
    eq(r.headers["x-request-id"], "req_fake_1", "x-request-id")
    eq(r.headers["request-id"], "req_fake_1", "request-id")
    eq(r.json(), {"id": "msg_fake_1", "type": "message", "role": "assistant", "model": "claude-test",
                  "content": [{"type": "text", "text": "echo: hi there"}], "stop_reason": "end_turn",
                  "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 3}}, "body")
    r = anthropic("a b c d", max_tokens=2, system=[{"type": "text", "text": "sys"}]).json()
    eq((r["content"][0]["text"], r["stop_reason"]), ("echo: a", "max_tokens"), "truncated")
    eq(r["usage"], {"input_tokens": 5, "output_tokens": 2}, "usage")


@test
def anthropic_streaming():
    reset()
    r = anthropic("hello world", stream=True)
    eq(r.headers["content-type"], "text/event-stream", "content-type")
    events = parse_sse(r.body.decode())
    eq([e for e, _ in events], ["message_start", "content_block_start", "ping", "content_block_delta",
                                "content_block_delta", "content_block_delta", "content_block_stop",
                                "message_delta", "message_stop"], "event sequence")
    for name, data in events:
        eq(json.loads(data)["type"], name, "data type matches event name")
    start = json.loads(events[0][1])["message"]
    eq((start["id"], start["model"], start["usage"]), ("msg_fake_1", "claude-test",
                                                       {"input_tokens": 2, "output_tokens": 1}), "message_start")
    eq([json.loads(d)["delta"] for _, d in events[3:6]],
       [{"type": "text_delta", "text": t} for t in ("echo:", " hello", " world")], "deltas")
    eq(json.loads(events[7][1]), {"type": "message_delta",
                                  "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                  "usage": {"output_tokens": 3}}, "message_delta")
    assert b'event: ping\ndata: {"type": "ping"}\n\n' in r.body, r.body


# --- Ollama ----------------------------------------------------------------------------

@test
def ollama_streaming_by_default():
    r = ollama("hello world")
    eq(r.headers["content-type"], "application/x-ndjson", "content-type")
    eq(r.headers["transfer-encoding"], "chunked", "chunked")
    assert r.body.endswith(b"}\n"), r.body[-20:]
    lines = parse_ndjson(r.body.decode())
    eq([(l["message"]["content"], l["done"]) for l in lines],
       [("echo:", False), (" hello", False), (" world", False), ("", True)], "lines")
    last = lines[-1]
    eq((last["done_reason"], last["prompt_eval_count"], last["eval_count"], last["model"]),
       ("stop", 2, 3, "llama-test"), "final line")


@test
def ollama_non_streaming_and_options():
    r = ollama("hello world", stream=False)
    eq(r.headers["content-type"], "application/json", "content-type")
    body = r.json()
    eq((body["message"], body["done"], body["done_reason"], body["eval_count"]),
       ({"role": "assistant", "content": "echo: hello world"}, True, "stop", 3), "body")
    body = ollama("a b c", stream=False, options={"num_predict": 1}).json()
    eq((body["message"]["content"], body["done_reason"]), ("echo:", "length"), "num_predict")
    body = ollama("q", stream=False, format="json").json()
    eq(json.loads(body["message"]["content"]), {"echo": "q"}, "format=json")


# --- Scenarios -------------------------------------------------------------------------

@test
def rate_limit_in_each_format():
    r = openai(scenario="status=429, retry-after-ms=50")
    eq((r.status, r.headers.get("retry-after-ms")), (429, "50"), "openai status")
    eq(r.json(), {"error": {"message": "Rate limit reached (fake)", "type": "requests", "param": None,
                            "code": "rate_limit_exceeded"}}, "openai body")
    eq(r.headers["x-request-id"][:9], "req_fake_", "request id on errors")
    r = anthropic(scenario="status=429;retry-after=2")
    eq((r.status, r.headers.get("retry-after")), (429, "2"), "anthropic status")
    eq(r.json(), {"type": "error", "error": {"type": "rate_limit_error",
                                             "message": "Rate limit reached (fake)"}}, "anthropic body")
    r = ollama(scenario="status=429")
    eq((r.status, r.json()), (429, {"error": "Rate limit reached (fake)"}), "ollama")


@test
def server_errors_and_auth():
    r = openai(scenario="status=500", stream=True)
    eq((r.status, r.headers["content-type"], r.json()["error"]["type"]),
       (500, "application/json", "server_error"), "openai 500 (a JSON body even for a stream)")
    eq(anthropic(scenario="status=500").json()["error"]["type"], "api_error", "anthropic 500")
    eq(anthropic(scenario="status=529").json()["error"]["type"], "overloaded_error", "anthropic 529")
    r = openai(scenario="status=401")
    eq((r.status, r.json()["error"]["code"]), (401, "invalid_api_key"), "openai 401")
    eq(anthropic(scenario="status=401").json()["error"]["type"], "authentication_error", "anthropic 401")
    eq(openai(scenario="status=503,error-type=custom_type").json()["error"]["type"], "custom_type", "error-type")


@test
def insufficient_quota():
    r = openai(scenario="quota")
    eq((r.status, r.json()["error"]["type"], r.json()["error"]["code"]),
       (429, "insufficient_quota", "insufficient_quota"), "openai")
    r = anthropic(scenario="quota")
    eq((r.status, r.json()["error"]["type"]), (400, "invalid_request_error"), "anthropic")


@test
def malformed_bodies():
    r = openai(scenario="malformed-json")
    eq(r.status, 200, "status")
    try:
        json.loads(r.body)
        raise AssertionError("body parsed as JSON")
    except ValueError:
        pass
    for call in (openai, anthropic):
        r = call("a b", scenario="malformed-sse", stream=True)
        datas = [d for _, d in parse_sse(r.body.decode())]
        bad = [d for d in datas if not _is_json(d) and d != "[DONE]"]
        eq(len(bad), 1, call.__name__ + " one bad event")
    lines = ollama("a b", scenario="malformed-json").body.decode().split("\n")
    eq([_is_json(l) for l in lines if l], [True, False, True, True, True], "ollama lines")


def _is_json(s):
    try:
        json.loads(s)
        return True
    except ValueError:
        return False


def read_until_cut(path, body, headers):
    """POSTs and reads a chunked body that the server cuts: returns (partial text, error name)."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json", **headers})
    resp = conn.getresponse()
    try:
        data = resp.read()
        return data.decode(), None
    except http.client.IncompleteRead as e:
        return e.partial.decode(), "IncompleteRead"
    finally:
        conn.close()


@test
def disconnect_mid_stream():
    text, err = read_until_cut("/v1/chat/completions",
                               {"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b c d"}]},
                               {"x-fake-scenario": "disconnect=2"})
    eq(err, "IncompleteRead", "cut")
    contents = [json.loads(d)["choices"][0]["delta"].get("content") for _, d in parse_sse(text)]
    eq(contents, ["", "echo:", " a"], "deltas before the cut")
    text, err = read_until_cut("/api/chat", {"model": "m", "messages": [{"role": "user", "content": "a b"}]},
                               {"x-fake-scenario": "disconnect=1"})
    eq((err, len(parse_ndjson(text))), ("IncompleteRead", 1), "ollama cut")
    # Not streaming: half of the body, then the connection closes.
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    conn.request("POST", "/v1/chat/completions", json.dumps({"model": "m", "messages": []}),
                 {"x-fake-scenario": "disconnect=0"})
    try:
        conn.getresponse().read()
        raise AssertionError("read a whole body")
    except http.client.IncompleteRead:
        pass
    conn.close()


@test
def drop_without_response():
    try:
        openai(scenario="drop")
        raise AssertionError("got a response")
    except (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError):
        pass


@test
def overloaded_mid_stream():
    r = anthropic("a b c", scenario="overloaded=1", stream=True)
    events = parse_sse(r.body.decode())
    eq([e for e, _ in events], ["message_start", "content_block_start", "ping", "content_block_delta", "error"],
       "sequence")
    eq(json.loads(events[-1][1]), {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
       "error event")
    events = parse_sse(openai("a b c", scenario="overloaded=2", stream=True).body.decode())
    eq(json.loads(events[-1][1])["error"]["type"], "server_error", "openai error frame")
    eq(len(events), 4, "role, 2 deltas, error")
    lines = parse_ndjson(ollama("a b c", scenario="overloaded=0").body.decode())
    eq(lines, [{"error": "server overloaded (fake)"}], "ollama error line")


@test
def stream_without_terminal_frame():
    events = parse_sse(openai("x", scenario="no-done", stream=True,
                              stream_options={"include_usage": True}).body.decode())
    assert events[-1][1] != "[DONE]" and "usage" in json.loads(events[-1][1]), events[-1]
    names = [e for e, _ in parse_sse(anthropic("x", scenario="no-done", stream=True).body.decode())]
    eq(names[-1], "message_delta", "anthropic ends before message_stop")
    lines = parse_ndjson(ollama("x", scenario="no-done").body.decode())
    eq([l["done"] for l in lines], [False, False], "ollama has no done:true line")


@test
def slow_tokens_and_latency():
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    t0 = time.monotonic()
    conn.request("POST", "/v1/chat/completions",
                 json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "tokens=4"}]}),
                 {"x-fake-scenario": "delay-ms=200"})
    resp = conn.getresponse()
    first = b""
    while b"tok1" not in first:
        more = resp.read1()
        assert more, "stream ended before tok1"
        first += more
    ttft = time.monotonic() - t0
    rest = resp.read()
    total = time.monotonic() - t0
    conn.close()
    assert b"tok2" not in first and b"tok4" in rest, (first, rest)
    # Relative bounds, so a loaded machine does not fail them: the first delta
    # comes before the delays, the whole stream after all three.
    assert 0.6 <= total < 5.0, "3 delays of 200 ms took %.3fs" % total
    assert ttft < total - 0.35, "first delta after %.3fs of %.3fs" % (ttft, total)
    t0 = time.monotonic()
    openai(scenario="latency-ms=200")
    assert time.monotonic() - t0 >= 0.2, "latency"


@test
def queued_scenarios_and_unknown_items():
    reset()
    eq(request("/_scenario", {"scenario": "status=503", "times": 2}).status, 200, "queue")
    eq([openai().status, anthropic().status, openai().status], [503, 503, 200], "FIFO for 2 requests")
    r = openai(scenario="statuz=1")
    eq((r.status, r.json()), (400, {"error": "fake server: unknown scenario item 'statuz'"}), "unknown")
    eq(request("/_scenario", {"scenario": "delay-ms=x"}).status, 400, "bad value")
    eq(stats()["requests"][0]["scenario"], "status=503", "scenario recorded")


@test
def stats_and_reset():
    reset()
    openai("one", scenario="tokens=1")
    anthropic("two")
    s = stats()
    eq(s["count"], 2, "count")
    eq((s["in_flight"], s["max_in_flight"]), (0, 1), "in flight")
    r0, r1 = s["requests"]
    eq((r0["method"], r0["path"], r0["request_id"], r0["scenario"]),
       ("POST", "/v1/chat/completions", "req_fake_1", "tokens=1"), "record 0")
    eq(r0["body"]["messages"], [{"role": "user", "content": "one"}], "body recorded")
    eq((r1["headers"]["x-api-key"], r1["headers"]["anthropic-version"]), ("sk-ant-test", "2023-06-01"), "headers")
    reset()
    eq(stats()["count"], 0, "reset")
    eq(openai().headers["x-request-id"], "req_fake_1", "ids restart")


@test
def keep_alive_and_chunked_request_body():
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "k"}]})
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    conn.getresponse().read()
    sock = conn.sock
    conn.request("POST", "/v1/chat/completions", body)
    conn.getresponse().read()
    eq(conn.sock is sock and sock is not None, True, "same connection reused")
    conn.request("POST", "/api/chat", iter([body[:10].encode(), body[10:].encode()]),
                 {"content-type": "application/json", "transfer-encoding": "chunked"}, encode_chunked=True)
    r = conn.getresponse()
    eq(parse_ndjson(r.read().decode())[0]["message"]["content"], "echo:", "chunked request body")
    eq(conn.sock is sock, True, "still the same connection")
    conn.close()


@test
def wire_variants():
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    reset()
    head, chunks, done = dechunk(raw_post("/v1/chat/completions", body))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    eq(done, True, "terminated")
    eq(len(chunks), 5, "one chunk per event")
    eq(chunks[-1], b"data: [DONE]\n\n", "last chunk")
    reset()
    head, split, done = dechunk(raw_post("/v1/chat/completions", body, {"x-fake-scenario": "split-events"}))
    eq(len(split), 10, "each event in two chunks")
    eq(b"".join(split), b"".join(chunks), "same bytes")
    abody = dict(body, max_tokens=5)
    reset()
    _, crlf, _ = dechunk(raw_post("/v1/messages", abody,
                                  dict(ANTHROPIC_HEADERS, **{"x-fake-scenario": "crlf,comments,multiline"})))
    eq(crlf[0][:50], b': keep-alive\r\nevent: message_start\r\ndata: {"type":', "crlf + comment")
    assert b'"message_start",\r\ndata: "message":' in crlf[0], crlf[0]
    reset()
    _, plain, _ = dechunk(raw_post("/v1/messages", abody, ANTHROPIC_HEADERS))
    varied = parse_sse(b"".join(crlf).decode())
    plain = parse_sse(b"".join(plain).decode())
    eq([e for e, _ in varied], [e for e, _ in plain], "same events")
    eq([d.count("\n") for _, d in varied], [1, 1, 0, 1, 1, 1, 1, 0], "data lines joined with LF")
    eq([json.loads(d) for _, d in varied], [json.loads(d) for _, d in plain], "same JSON")


@test
def concurrency_is_counted():
    reset()
    n = 20
    started, streaming = threading.Barrier(n), threading.Barrier(n)
    results = []

    def worker():
        # Each stream is held open until all n have sent their first token, so all n are in flight at once
        # however the threads get scheduled on a loaded machine.
        body = {"model": "gpt-test", "messages": [{"role": "user", "content": "tokens=4"}], "stream": True}
        req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % PORT, data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json", "x-fake-scenario": "delay-ms=100"})
        started.wait()
        with urllib.request.urlopen(req, timeout=20) as r:
            r.readline()
            streaming.wait(timeout=20)
            r.read()
            results.append(r.status)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq(results, [200] * n, "statuses")
    eq(stats()["max_in_flight"], n, "max in flight")


@test
def api_key_mode():
    proc, port = start_server("--api-key", "sekrit")
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        eq(request("/v1/chat/completions", body, port=port).status, 401, "no bearer")
        eq(request("/v1/chat/completions", body, {"authorization": "Bearer sekrit"}, port=port).status, 200,
           "bearer")
        h = dict(ANTHROPIC_HEADERS)
        eq(request("/v1/messages", dict(body, max_tokens=5), h, port=port).status, 401, "wrong x-api-key")
        h["x-api-key"] = "sekrit"
        eq(request("/v1/messages", dict(body, max_tokens=5), h, port=port).status, 200, "x-api-key")
    finally:
        stop_server(proc)
    eq(proc.returncode is not None, True, "stopped")


@test
def throughput():
    t0 = time.monotonic()
    r = openai("tokens=2000", stream=True)
    dt = time.monotonic() - t0
    eq(len(parse_sse(r.body.decode())), 2003, "events")
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    t1 = time.monotonic()
    for _ in range(200):
        conn.request("POST", "/v1/chat/completions", json.dumps({"model": "m", "messages": []}))
        conn.getresponse().read()
    dt2 = time.monotonic() - t1
    conn.close()
    print("    2000-token stream: %.3fs; 200 keep-alive requests: %.3fs" % (dt, dt2))
    assert dt < 10 and dt2 < 10, "too slow"


def main():
    global PROC, PORT
    PROC, PORT = start_server()
    passed = failed = 0
    try:
        for fn in TESTS:
            try:
                fn()
                passed += 1
                print("ok   " + fn.__name__)
            except Exception:
                failed += 1
                print("FAIL " + fn.__name__)
                traceback.print_exc(file=sys.stdout)
    finally:
        stop_server(PROC)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
