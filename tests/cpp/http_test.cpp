// HTTP transport (src/http/multi, src/http/request) against the loopback fixture server
// tests/fixtures/http_server.py, on a real libuv loop. No Lua.
//
// The server is started once per process (ctest runs each test case in its own process) and killed by pid at
// exit. REQUIREs stay outside callbacks: curl's C frames are between a callback and the test body, so callbacks
// only record what they saw.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http/curl_preload.h"
#include "http/multi.h"
#include "http/request.h"

using luasync::http::BodyPull;
using luasync::http::ErrorKind;
using luasync::http::Headers;
using luasync::http::KindName;
using luasync::http::Multi;
using luasync::http::Request;
using luasync::http::RequestCallbacks;
using luasync::http::RequestOptions;
using luasync::http::Result;

namespace {

// A fixture server from tests/fixtures/ (found through $LUASYNC_SOURCE_DIR) that prints its port on stdout's
// first line. Started on first use, killed by pid when the test process exits.
class FixtureServer {
 public:
  static FixtureServer& Get() {  // python3 tests/fixtures/http_server.py --port 0
    static FixtureServer server("http", {"python3", "http_server.py", "--port", "0"});
    return server;
  }
  static FixtureServer& Tls() {  // the same over HTTPS (self-signed certificate)
    static FixtureServer server("https", {"python3", "http_server.py", "--port", "0", "--tls"});
    return server;
  }
  static FixtureServer& Http2() {  // node tests/fixtures/h2_server.mjs
    static FixtureServer server("https", {"node", "h2_server.mjs"});
    return server;
  }
  bool running() const { return port_ > 0; }
  std::string Url(const std::string& path) const {
    return scheme_ + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }

  ~FixtureServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

 private:
  FixtureServer(std::string scheme, std::vector<std::string> argv) : scheme_(std::move(scheme)) {
    const char* dir = std::getenv("LUASYNC_SOURCE_DIR");
    if (!dir || !*dir) return;
    argv[1] = std::string(dir) + "/tests/fixtures/" + argv[1];
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a crashed test binary
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    std::string line;
    char c;
    while (read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    close(fds[0]);
    port_ = std::atoi(line.c_str());
  }

  std::string scheme_;
  pid_t pid_ = -1;
  int port_ = 0;
};

#define REQUIRE_SERVER()                                                                   \
  do {                                                                                     \
    if (!std::getenv("LUASYNC_SOURCE_DIR")) {                                              \
      WARN("LUASYNC_SOURCE_DIR (the repository root) is not set: skipping this HTTP test"); \
      return;                                                                              \
    }                                                                                      \
    REQUIRE(FixtureServer::Get().running());                                               \
  } while (0)

std::string Url(const std::string& path) { return FixtureServer::Get().Url(path); }

// The fixture's body pattern: byte i is 'a' + i % 26.
std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

std::string HeaderValue(const Headers& headers, const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "<missing>";
}

double Now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// A uv timer calling a std::function; Close() frees it from its close callback.
struct TestTimer {
  uv_timer_t handle;
  std::function<void(TestTimer*)> fn;

  static TestTimer* Start(uv_loop_t* loop, uint64_t ms, std::function<void(TestTimer*)> fn, uint64_t repeat = 0) {
    auto* t = new TestTimer;
    uv_timer_init(loop, &t->handle);
    t->handle.data = t;
    t->fn = std::move(fn);
    uv_timer_start(&t->handle, [](uv_timer_t* h) { static_cast<TestTimer*>(h->data)->fn(static_cast<TestTimer*>(h->data)); },
                   ms, repeat);
    return t;
  }
  void Close() {
    uv_close(reinterpret_cast<uv_handle_t*>(&handle), [](uv_handle_t* h) { delete static_cast<TestTimer*>(h->data); });
  }
};

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  void Run() { uv_run(&loop, UV_RUN_DEFAULT); }
};

RequestOptions Get(const std::string& path) {
  RequestOptions o;
  o.url = Url(path);
  return o;
}

// Runs one request to completion (the loop runs until nothing is left to do).
Result Fetch(Loop& l, Multi& multi, RequestOptions options, RequestCallbacks callbacks = {}) {
  Result out;
  int done = 0;
  callbacks.on_done = [&](Result&& r) {
    out = std::move(r);
    ++done;
  };
  std::string error;
  Request* request = multi.Start(std::move(options), std::move(callbacks), &error);
  INFO(error);
  REQUIRE(request != nullptr);
  l.Run();
  REQUIRE(done == 1);
  REQUIRE(multi.active() == 0);
  return out;
}

// Every loop test ends here: the Multi is gone, its close callbacks have run, nothing is left open.
void Finish(Loop& l) {
  l.Run();
  REQUIRE(uv_loop_close(&l.loop) == 0);
}

int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);  // nothing listens there now
  return ntohs(addr.sin_port);
}

}  // namespace

TEST_CASE("http: a script's source hints at the network API by whole words only", "[http]") {
  using luasync::http::SourceWantsHttp;
  CHECK(SourceWantsHttp("local r = await(http.get(url))"));
  CHECK(SourceWantsHttp("local h = require('luasync.http')"));
  CHECK(SourceWantsHttp("print(await(fetch(u)):text())"));
  CHECK(SourceWantsHttp("local c = llm.client{}"));
  CHECK(SourceWantsHttp("llmBridge.generate('x')"));
  CHECK(SourceWantsHttp("http"));
  CHECK(SourceWantsHttp("x = 'https://example' .. http"));
  CHECK_FALSE(SourceWantsHttp(""));
  CHECK_FALSE(SourceWantsHttp("print('hello')"));
  CHECK_FALSE(SourceWantsHttp("local httpd, fetcher, myllm, llms = 1, 2, 3, 4"));
  CHECK_FALSE(SourceWantsHttp("local https = true"));
}

TEST_CASE("http: KindName spells API.md's kinds", "[http]") {
  CHECK(std::string(KindName(ErrorKind::kOk)) == "ok");
  CHECK(std::string(KindName(ErrorKind::kTimeout)) == "timeout");
  CHECK(std::string(KindName(ErrorKind::kConnect)) == "connect");
  CHECK(std::string(KindName(ErrorKind::kTls)) == "tls");
  CHECK(std::string(KindName(ErrorKind::kProtocol)) == "protocol");
  CHECK(std::string(KindName(ErrorKind::kTooLarge)) == "too_large");
  CHECK(std::string(KindName(ErrorKind::kCancelled)) == "cancelled");
}

TEST_CASE("http: invalid options are rejected before anything is sent", "[http]") {
  Loop l;
  {
    Multi multi(&l.loop);
    auto start = [&](RequestOptions o) {
      std::string error;
      Request* r = multi.Start(std::move(o), {}, &error);
      CHECK(r == nullptr);
      return error;
    };
    RequestOptions o;
    o.url = "http://127.0.0.1:1/";
    o.headers = {{"X-Evil", "a\r\nInjected: yes"}};
    CHECK(start(o) == "invalid value for header \"X-Evil\": contains CR, LF or NUL");
    o.headers = {{"X-Evil", "a\nb"}};
    CHECK(start(o) == "invalid value for header \"X-Evil\": contains CR, LF or NUL");
    o.headers = {{"Bad\r\nName", "v"}};
    CHECK(start(o) == "invalid header name \"Bad\r\nName\"");
    o.headers = {{"Bad Name", "v"}};
    CHECK(start(o) == "invalid header name \"Bad Name\"");
    o.headers = {};
    o.method = "GE T";
    CHECK(start(o) == "invalid method \"GE T\"");
    o.method = "GET";
    o.url = "ftp://127.0.0.1/x";
    CHECK(start(o) == "unsupported URL scheme \"ftp\" (only http and https)");
    o.url = "file:///etc/passwd";
    CHECK(start(o) == "unsupported URL scheme \"file\" (only http and https)");
    o.url = "not a url";
    CHECK(start(o) == "invalid URL \"not a url\"");
    o.url = "http://127.0.0.1/\r\nX: y";
    CHECK(start(o) == "invalid URL: contains CR, LF or NUL");
    CHECK(multi.active() == 0);
  }
  Finish(l);
}

TEST_CASE("http: normal body with Content-Length", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    Result r = Fetch(l, multi, Get("/bytes/100000"));
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(r.message.empty());
    CHECK(r.status == 200);
    CHECK(r.body.size() == 100000);
    CHECK(r.body == Pattern(100000));
    CHECK(HeaderValue(r.headers, "content-length") == "100000");
    CHECK(HeaderValue(r.headers, "content-type") == "application/octet-stream");
    CHECK(r.url == Url("/bytes/100000"));
  }
  Finish(l);
}

TEST_CASE("http: chunked body is streamed to on_chunk after on_headers", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    std::vector<std::string> events;
    std::string body;
    RequestCallbacks cb;
    cb.on_headers = [&](int status, const Headers& h) {
      events.push_back("headers " + std::to_string(status) + " " + HeaderValue(h, "transfer-encoding"));
    };
    cb.on_chunk = [&](const char* data, size_t len) {
      if (body.empty()) events.push_back("first chunk");
      body.append(data, len);
      return false;
    };
    Result r = Fetch(l, multi, Get("/chunked/100000?size=777"), cb);
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(r.status == 200);
    CHECK(r.body.empty());  // streamed, not collected
    CHECK(body == Pattern(100000));
    REQUIRE(events.size() == 2);
    CHECK(events[0] == "headers 200 chunked");
    CHECK(events[1] == "first chunk");
  }
  Finish(l);
}

TEST_CASE("http: slow body arrives in several chunks over time", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    std::string body;
    int chunks = 0;
    RequestCallbacks cb;
    cb.on_chunk = [&](const char* data, size_t len) {
      ++chunks;
      body.append(data, len);
      return false;
    };
    double t0 = Now();
    Result r = Fetch(l, multi, Get("/slow?chunks=5&delay=0.05"), cb);
    double elapsed = Now() - t0;
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(body == "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    CHECK(chunks >= 2);  // 50 ms apart; only a badly starved client would see them merged
    CHECK(elapsed >= 0.19);
  }
  Finish(l);
}

TEST_CASE("http: a server that never answers gives kind timeout", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    RequestOptions o = Get("/hang");
    o.timeout_ms = 300;
    double t0 = Now();
    Result r = Fetch(l, multi, o);
    double elapsed = Now() - t0;
    CHECK(r.kind == ErrorKind::kTimeout);
    CHECK(r.message.find("timed out") != std::string::npos);
    CHECK(r.status == 0);
    CHECK(elapsed >= 0.29);
    CHECK(elapsed < 2.0);
  }
  Finish(l);
}

// The TCP connection is established (the kernel completes the handshake before the server's accept), so a reset
// right after the request is a dropped connection: "protocol", not "connect".
TEST_CASE("http: a connection reset right after connecting gives kind protocol", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    Result r = Fetch(l, multi, Get("/reset"));
    CHECK(r.kind == ErrorKind::kProtocol);
    CHECK_FALSE(r.message.empty());
    CHECK(r.status == 0);
  }
  Finish(l);
}

TEST_CASE("http: a connection dropped mid-body gives kind protocol", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    std::string body;
    RequestCallbacks cb;
    cb.on_chunk = [&](const char* data, size_t len) {
      body.append(data, len);
      return false;
    };
    Result r = Fetch(l, multi, Get("/disconnect/5000"), cb);
    CHECK(r.kind == ErrorKind::kProtocol);
    CHECK(r.status == 200);  // the headers did arrive
    CHECK(body == Pattern(5000));
    CHECK_FALSE(r.message.empty());
  }
  Finish(l);
}

TEST_CASE("http: nothing listening gives kind connect", "[http]") {
  Loop l;
  {
    Multi multi(&l.loop);
    RequestOptions o;
    o.url = "http://127.0.0.1:" + std::to_string(UnusedPort()) + "/";
    Result r = Fetch(l, multi, o);
    CHECK(r.kind == ErrorKind::kConnect);
    CHECK(r.message.find("onnect") != std::string::npos);
  }
  Finish(l);
}

TEST_CASE("http: https to a plain-HTTP server gives kind tls", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    RequestOptions o;
    o.url = "https://127.0.0.1:" + std::to_string(FixtureServer::Get().port()) + "/small";
    o.timeout_ms = 5000;
    Result r = Fetch(l, multi, o);
    CHECK(r.kind == ErrorKind::kTls);
    INFO(r.message);
    CHECK_FALSE(r.message.empty());
  }
  Finish(l);
}

TEST_CASE("http: TLS is verified unless insecure is set", "[http]") {
  REQUIRE_SERVER();
  FixtureServer& tls = FixtureServer::Tls();
  REQUIRE(tls.running());
  Loop l;
  {
    Multi multi(&l.loop);
    SECTION("a self-signed certificate fails verification") {
      RequestOptions o;
      o.url = tls.Url("/small");
      Result r = Fetch(l, multi, o);
      CHECK(r.kind == ErrorKind::kTls);
      INFO(r.message);
      CHECK(r.message.find("certificate") != std::string::npos);
    }
    SECTION("insecure skips verification") {
      RequestOptions o;
      o.url = tls.Url("/echo");
      o.method = "POST";
      o.body = "over tls";
      o.insecure = true;
      Result r = Fetch(l, multi, o);
      REQUIRE(r.kind == ErrorKind::kOk);
      CHECK(r.status == 200);
      CHECK(nlohmann::json::parse(r.body)["body"] == "over tls");
    }
  }
  Finish(l);
}

TEST_CASE("http: HTTP/2 is negotiated and concurrent requests share one connection", "[http]") {
  REQUIRE_SERVER();
  FixtureServer& h2 = FixtureServer::Http2();
  REQUIRE(h2.running());
  Loop l;
  {
    Multi multi(&l.loop);
    int ok = 0;
    std::string sessions;
    for (int i = 0; i < 20; ++i) {
      RequestOptions o;
      o.url = h2.Url("/p" + std::to_string(i));
      o.insecure = true;
      RequestCallbacks cb;
      cb.on_done = [&, i](Result&& r) {
        bool good = r.kind == ErrorKind::kOk && r.status == 200 && r.body == "h2 /p" + std::to_string(i) &&
                    HeaderValue(r.headers, "x-rep") == "a, b";
        ok += good;
        sessions += HeaderValue(r.headers, "x-sessions");
      };
      REQUIRE(multi.Start(std::move(o), std::move(cb), nullptr) != nullptr);
    }
    l.Run();
    CHECK(ok == 20);
    CHECK(sessions == std::string(20, '1'));  // all 20 streams multiplexed on the first connection
  }
  Finish(l);
}

TEST_CASE("http: max_body gives kind too_large", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    SECTION("Content-Length over the limit") {
      RequestOptions o = Get("/bytes/1000000");
      o.max_body = 1000;
      Result r = Fetch(l, multi, o);
      CHECK(r.kind == ErrorKind::kTooLarge);
      CHECK(r.message == "response body exceeds max_body (1000 bytes)");
    }
    SECTION("chunked body over the limit") {
      RequestOptions o = Get("/chunked/100000?size=4000");
      o.max_body = 1000;
      Result r = Fetch(l, multi, o);
      CHECK(r.kind == ErrorKind::kTooLarge);
      CHECK(r.message == "response body exceeds max_body (1000 bytes)");
      CHECK(r.body.size() <= 1000);
    }
    SECTION("exactly at the limit is fine") {
      RequestOptions o = Get("/chunked/1000?size=300");
      o.max_body = 1000;
      Result r = Fetch(l, multi, o);
      CHECK(r.kind == ErrorKind::kOk);
      CHECK(r.body == Pattern(1000));
    }
  }
  Finish(l);
}

TEST_CASE("http: redirects are followed up to 10 times on GET only", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    SECTION("3 hops") {
      int headers_calls = 0;
      RequestCallbacks cb;
      cb.on_headers = [&](int status, const Headers&) { headers_calls += status == 200 ? 1 : 100; };
      Result r = Fetch(l, multi, Get("/redirect/3"), cb);
      CHECK(r.kind == ErrorKind::kOk);
      CHECK(r.status == 200);
      CHECK(r.body == "redirected");
      CHECK(r.url == Url("/redirect/0"));
      CHECK(HeaderValue(r.headers, "location") == "<missing>");
      CHECK(headers_calls == 1);  // only the final response's headers
    }
    SECTION("10 hops") {
      Result r = Fetch(l, multi, Get("/redirect/10"));
      CHECK(r.kind == ErrorKind::kOk);
      CHECK(r.body == "redirected");
    }
    SECTION("11 hops is a protocol error") {
      Result r = Fetch(l, multi, Get("/redirect/11"));
      CHECK(r.kind == ErrorKind::kProtocol);
      CHECK(r.message.find("edirect") != std::string::npos);
    }
    SECTION("POST is not redirected") {
      RequestOptions o = Get("/redirect/1");
      o.method = "POST";
      o.body = "x";
      Result r = Fetch(l, multi, o);
      CHECK(r.kind == ErrorKind::kOk);
      CHECK(r.status == 302);
      CHECK(HeaderValue(r.headers, "location") == "/redirect/0");
    }
    SECTION("follow_redirects = false") {
      RequestOptions o = Get("/redirect/1");
      o.follow_redirects = false;
      Result r = Fetch(l, multi, o);
      CHECK(r.status == 302);
    }
  }
  Finish(l);
}

TEST_CASE("http: sequential requests reuse the connection", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    std::vector<int> ports;
    for (int i = 0; i < 3; ++i) {
      Result r = Fetch(l, multi, Get("/echo"));
      REQUIRE(r.kind == ErrorKind::kOk);
      ports.push_back(nlohmann::json::parse(r.body)["client_port"].get<int>());
    }
    CHECK(ports[0] == ports[1]);
    CHECK(ports[1] == ports[2]);
  }
  Finish(l);
}

TEST_CASE("http: an idle connection the server closes neither spins the loop nor fails the next request", "[http]") {
  // A kept-alive connection stays registered in the Multi's epoll set between requests (see multi.cpp). The
  // server's close makes the socket readable for good, so the first such event has to unregister it, or every
  // loop iteration would wake for it.
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    REQUIRE(Fetch(l, multi, Get("/idle-close")).kind == ErrorKind::kOk);
    int iterations = 0;
    uv_prepare_t counter;
    uv_prepare_init(&l.loop, &counter);
    counter.data = &iterations;
    uv_prepare_start(&counter, [](uv_prepare_t* h) { ++*static_cast<int*>(h->data); });
    uv_unref(reinterpret_cast<uv_handle_t*>(&counter));
    TestTimer::Start(&l.loop, 200, [](TestTimer* t) { t->Close(); });
    l.Run();  // 200 ms; the server closes the connection meanwhile
    uv_close(reinterpret_cast<uv_handle_t*>(&counter), nullptr);
    CHECK(iterations < 20);
    Result next = Fetch(l, multi, Get("/small"));
    CHECK(next.kind == ErrorKind::kOk);
    CHECK(next.body == Pattern(64));
  }
  Finish(l);
}

TEST_CASE("http: the after-callback follows every socket and timer callback and says which it was", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    struct Seen {
      int from_socket = 0, from_timer = 0;
      int done = 0;
      bool done_before_socket_after = false;  // an after-callback from a socket saw the completion already
    } seen;
    multi.SetAfterCallback(
        [](void* arg, bool from_socket) {
          auto* s = static_cast<Seen*>(arg);
          if (from_socket) {
            ++s->from_socket;
            if (s->done == 1) s->done_before_socket_after = true;
          } else {
            ++s->from_timer;
          }
        },
        &seen);
    RequestCallbacks callbacks;
    callbacks.on_done = [&](Result&& r) {
      CHECK(r.kind == ErrorKind::kOk);
      ++seen.done;
    };
    std::string error;
    REQUIRE(multi.Start(Get("/small"), std::move(callbacks), &error) != nullptr);
    l.Run();
    CHECK(seen.done == 1);
    CHECK(seen.from_timer >= 1);   // curl's 0 ms timer starts the transfer
    CHECK(seen.from_socket >= 1);  // the response is read from the socket
    CHECK(seen.done_before_socket_after);
  }
  Finish(l);
}

TEST_CASE("http: the loop busy-waits for quick responses and sleeps once they are slow", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    // A budget the fixture server answers within: every wait is a hit, and the loop spun.
    Multi::Options options;
    options.spin_us = 500000;
    Multi multi(&l.loop, options);
    for (int i = 0; i < 5; ++i) REQUIRE(Fetch(l, multi, Get("/small")).body == Pattern(64));
    Multi::SpinStats stats = multi.spin_stats();
    CHECK(stats.hits >= 1);  // (a response read in the same callback that sent its request ends no wait)
    CHECK(stats.misses == 0);
    CHECK(stats.waits >= 1);
    CHECK(stats.iterations >= 1);
  }
  {
    // Chunks 30 ms apart against a 2 ms budget: the first comes with the headers, each later one is a miss, and
    // after kMaxMisses of them the loop spins no more (no new spinning wait, not one more spun iteration).
    Multi::Options options;
    options.spin_us = 2000;
    Multi multi(&l.loop, options);
    std::vector<Multi::SpinStats> at_chunk;
    RequestCallbacks callbacks;
    callbacks.on_chunk = [&](const char*, size_t) {
      at_chunk.push_back(multi.spin_stats());
      return false;
    };
    Result r = Fetch(l, multi, Get("/slow?chunks=8&delay=0.03"), std::move(callbacks));
    REQUIRE(r.kind == ErrorKind::kOk);
    REQUIRE(at_chunk.size() == 8);
    Multi::SpinStats end = multi.spin_stats();
    CHECK(end.misses >= 7);
    const Multi::SpinStats& spent = at_chunk[luasync::http::SpinPolicy::kMaxMisses];
    CHECK(spent.misses >= luasync::http::SpinPolicy::kMaxMisses);
    CHECK(end.waits == spent.waits);
    CHECK(end.iterations == spent.iterations);
  }
  {
    Multi::Options options;
    options.spin_us = 0;
    Multi multi(&l.loop, options);
    for (int i = 0; i < 3; ++i) REQUIRE(Fetch(l, multi, Get("/small")).kind == ErrorKind::kOk);
    Multi::SpinStats stats = multi.spin_stats();
    CHECK(stats.hits == 0);
    CHECK(stats.misses == 0);
    CHECK(stats.waits == 0);
    CHECK(stats.iterations == 0);
  }
  Finish(l);
}

TEST_CASE("http: a reused easy handle carries no options of the previous request", "[http]") {
  // Requests one after another on one Multi share one pooled easy handle; a simple GET reuses it without
  // curl_easy_reset, setting only what differs, so every option must be undone when the next request lacks it.
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    auto echo = [&](RequestOptions o) {
      Result r = Fetch(l, multi, std::move(o));
      INFO(r.message);
      REQUIRE(r.kind == ErrorKind::kOk);
      REQUIRE(r.status == 200);
      return nlohmann::json::parse(r.body);
    };
    RequestOptions with = Get("/echo");
    with.headers = {{"X-A", "1"}};
    with.timeout_ms = 300;
    with.connect_timeout_ms = 200;
    with.max_body = 100000;
    CHECK(echo(with)["headers"]["x-a"] == "1");
    auto j = echo(Get("/echo"));
    CHECK(j["method"] == "GET");
    CHECK(j["headers"].contains("x-a") == false);
    CHECK(j["headers"]["user-agent"].get<std::string>().rfind("luasync", 0) == 0);
    RequestOptions agent = Get("/echo");
    agent.headers = {{"user-AGENT", "mine/1"}};
    CHECK(echo(agent)["headers"]["user-agent"] == "mine/1");  // replaces ours, not added to it
    RequestOptions other = Get("/echo");
    other.headers = {{"X-B", "2"}};
    j = echo(other);
    CHECK(j["headers"]["user-agent"].get<std::string>().rfind("luasync", 0) == 0);
    CHECK(j["headers"]["x-b"] == "2");

    Result slow = Fetch(l, multi, Get("/slow?chunks=3&delay=0.2"));  // ~0.6 s: longer than the old timeout
    CHECK(slow.kind == ErrorKind::kOk);
    CHECK(slow.body == "chunk 0\nchunk 1\nchunk 2\n");

    RequestOptions limited = Get("/bytes/10");
    limited.max_body = 20;
    CHECK(Fetch(l, multi, limited).body == Pattern(10));
    Result big = Fetch(l, multi, Get("/bytes/5000"));  // over the old max_body
    CHECK(big.kind == ErrorKind::kOk);
    CHECK(big.body == Pattern(5000));

    RequestOptions head = Get("/small");
    head.method = "HEAD";
    Result h = Fetch(l, multi, head);
    CHECK(h.status == 200);
    CHECK(h.body.empty());
    CHECK(Fetch(l, multi, Get("/small")).body == Pattern(64));

    RequestOptions post = Get("/echo");
    post.method = "POST";
    post.body = "xyz";
    CHECK(echo(post)["body"] == "xyz");
    RequestOptions post2 = Get("/echo?second");
    post2.method = "POST";
    post2.body = std::string(3000, 'p');
    post2.headers = {{"Content-Type", "text/plain"}};
    j = echo(post2);  // a POST reusing the POST's handle: new body, size and headers
    CHECK(j["method"] == "POST");
    CHECK(j["query"] == "second");
    CHECK(j["body"] == std::string(3000, 'p'));
    CHECK(j["headers"]["content-type"] == "text/plain");
    RequestOptions post3 = Get("/echo");
    post3.method = "POST";
    post3.body = "";
    j = echo(post3);
    CHECK(j["method"] == "POST");
    CHECK(j["body_length"] == 0);
    CHECK(j["headers"]["content-length"] == "0");
    CHECK(j["headers"].contains("content-type") == false);
    RequestOptions post_redirect = Get("/redirect/1");
    post_redirect.method = "POST";
    post_redirect.body = "x";
    Result pr = Fetch(l, multi, post_redirect);  // a POST does not follow (the GETs before it did)
    CHECK(pr.status == 302);
    j = echo(Get("/echo"));
    CHECK(j["method"] == "GET");
    CHECK(j["body_length"] == 0);
    CHECK(j["headers"].contains("content-length") == false);
    CHECK(Fetch(l, multi, post_redirect).status == 302);  // right after a GET that followed redirects

    RequestOptions redirect = Get("/redirect/2");
    Result r = Fetch(l, multi, redirect);
    CHECK(r.body == "redirected");
    CHECK(r.url == Url("/redirect/0"));
    r = Fetch(l, multi, Get("/small"));
    CHECK(r.url == Url("/small"));

    RequestOptions hang = Get("/hang");
    hang.timeout_ms = 200;
    Result t = Fetch(l, multi, hang);
    CHECK(t.kind == ErrorKind::kTimeout);
    RequestOptions refused;
    refused.url = "http://127.0.0.1:" + std::to_string(UnusedPort()) + "/";
    Result c = Fetch(l, multi, refused);
    CHECK(c.kind == ErrorKind::kConnect);
    CHECK(c.message.find("imed out") == std::string::npos);  // not the previous transfer's message
    CHECK(Fetch(l, multi, Get("/small")).body == Pattern(64));

    // Sockets closed under a kept poll handle: the next connection usually gets the same fd number.
    for (const char* path : {"/disconnect/10", "/reset", "/disconnect/10"}) {
      INFO(path);
      CHECK(Fetch(l, multi, Get(path)).kind == ErrorKind::kProtocol);
      Result again = Fetch(l, multi, Get("/small"));
      CHECK(again.kind == ErrorKind::kOk);
      CHECK(again.body == Pattern(64));
    }
  }
  Finish(l);
}

TEST_CASE("http: gzip bodies are decoded", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    Result r = Fetch(l, multi, Get("/gzip?n=50000"));
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(HeaderValue(r.headers, "content-encoding") == "gzip");
    CHECK(r.body == Pattern(50000));
  }
  Finish(l);
}

TEST_CASE("http: response headers are lower-cased and repeats joined", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    Result r = Fetch(l, multi, Get("/headers"));
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(HeaderValue(r.headers, "x-multi") == "a, b");
    CHECK(HeaderValue(r.headers, "x-folded") == "one two");
    CHECK(HeaderValue(r.headers, "x-case") == "Value");
    for (const auto& [name, value] : r.headers) {
      CHECK(name.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos);
    }
  }
  Finish(l);
}

TEST_CASE("http: statuses >= 400 complete normally", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    Result r = Fetch(l, multi, Get("/status/404"));
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(r.status == 404);
    CHECK(r.body == "status 404");
    r = Fetch(l, multi, Get("/status/503"));
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(r.status == 503);
  }
  Finish(l);
}

TEST_CASE("http: request method, headers and body reach the server", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    auto echo = [&](RequestOptions o) {
      Result r = Fetch(l, multi, std::move(o));
      REQUIRE(r.kind == ErrorKind::kOk);
      REQUIRE(r.status == 200);
      return nlohmann::json::parse(r.body);
    };
    SECTION("string body") {
      RequestOptions o = Get("/echo?q=1");
      o.method = "POST";
      o.headers = {{"X-Test", "yes"}, {"X-Rep", "1"}, {"X-Rep", "2"}, {"X-Empty", ""}};
      o.body = "hello body";
      auto j = echo(o);
      CHECK(j["method"] == "POST");
      CHECK(j["path"] == "/echo");
      CHECK(j["query"] == "q=1");
      CHECK(j["headers"]["x-test"] == "yes");
      CHECK(j["headers"]["x-rep"] == "1, 2");
      CHECK(j["headers"]["x-empty"] == "");
      CHECK(j["headers"]["content-length"] == "10");
      CHECK(j["headers"].contains("expect") == false);
      CHECK(j["headers"].contains("content-type") == false);  // curl's form type is not added
      CHECK(j["body"] == "hello body");
    }
    SECTION("other methods") {
      RequestOptions o = Get("/echo");
      o.method = "DELETE";
      CHECK(echo(o)["method"] == "DELETE");
      o.method = "PUT";
      o.body = "abc";
      o.headers = {{"Content-Type", "text/plain"}};
      auto j = echo(o);
      CHECK(j["method"] == "PUT");
      CHECK(j["body"] == "abc");
      CHECK(j["headers"]["content-type"] == "text/plain");
    }
    SECTION("streamed body, chunked, produced synchronously") {
      RequestOptions o = Get("/echo");
      o.method = "POST";
      int pulls = 0;
      o.body_source = [&](std::string& out) {
        if (pulls == 3) return BodyPull::kEnd;
        out = "part" + std::to_string(pulls++) + ";";
        return BodyPull::kData;
      };
      auto j = echo(o);
      CHECK(j["headers"]["transfer-encoding"] == "chunked");
      CHECK(j["body"] == "part0;part1;part2;");
      CHECK(pulls == 3);
    }
    SECTION("streamed body with a known size") {
      RequestOptions o = Get("/echo");
      o.method = "PUT";
      std::string big = Pattern(300000);
      size_t off = 0;
      o.body_size = static_cast<int64_t>(big.size());
      o.body_source = [&](std::string& out) {
        if (off == big.size()) return BodyPull::kEnd;
        out = big.substr(off, 10000);
        off += out.size();
        return BodyPull::kData;
      };
      auto j = echo(o);
      CHECK(j["method"] == "PUT");
      CHECK(j["headers"]["content-length"] == "300000");
      CHECK(j["body_length"] == 300000);
      CHECK(j["body"] == big);
    }
    SECTION("streamed body produced asynchronously (kWait + BodyReady)") {
      RequestOptions o = Get("/echo");
      o.method = "POST";
      // The source has nothing until a timer produces it; the timer produces only after the source waited.
      std::vector<std::string> ready;
      bool ended = false, waiting = false;
      int waits = 0;
      Request* request = nullptr;
      o.body_source = [&](std::string& out) {
        if (!ready.empty()) {
          out = ready.front();
          ready.erase(ready.begin());
          return BodyPull::kData;
        }
        if (ended) return BodyPull::kEnd;
        ++waits;
        waiting = true;
        return BodyPull::kWait;
      };
      int produced = 0;
      TestTimer::Start(&l.loop, 2, [&](TestTimer* t) {
        if (!waiting) return;
        waiting = false;
        if (produced < 4) {
          ready.push_back("async" + std::to_string(produced++) + ";");
        } else {
          ended = true;
          t->Close();
        }
        request->BodyReady();
      }, 2);
      Result result;
      RequestCallbacks cb;
      cb.on_done = [&](Result&& r) { result = std::move(r); };
      request = multi.Start(o, cb, nullptr);
      REQUIRE(request != nullptr);
      l.Run();
      REQUIRE(result.kind == ErrorKind::kOk);
      auto j = nlohmann::json::parse(result.body);
      CHECK(j["body"] == "async0;async1;async2;async3;");
      CHECK(waits == 5);  // before each of the 4 chunks and before the end
    }
    SECTION("a failing body source cancels the request") {
      RequestOptions o = Get("/echo");
      o.method = "POST";
      o.body_source = [&](std::string& out) {
        out = "producer broke";
        return BodyPull::kFail;
      };
      Result r = Fetch(l, multi, o);
      CHECK(r.kind == ErrorKind::kCancelled);
      CHECK(r.message == "request body: producer broke");
    }
  }
  Finish(l);
}

TEST_CASE("http: server-sent events arrive as a stream", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    std::string body;
    RequestCallbacks cb;
    cb.on_chunk = [&](const char* data, size_t len) {
      body.append(data, len);
      return false;
    };
    Result r = Fetch(l, multi, Get("/sse?n=3&delay=0.01"), cb);
    CHECK(r.kind == ErrorKind::kOk);
    CHECK(HeaderValue(r.headers, "content-type") == "text/event-stream");
    CHECK(body == "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n");
  }
  Finish(l);
}

TEST_CASE("http: 1000 concurrent requests all complete correctly", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    constexpr int kCount = 1000;
    int done = 0, correct = 0;
    for (int i = 0; i < kCount; ++i) {
      size_t size = 1 + static_cast<size_t>(i % 97) * 31;
      RequestCallbacks cb;
      cb.on_done = [&, size](Result&& r) {
        ++done;
        if (r.kind == ErrorKind::kOk && r.status == 200 && r.body == Pattern(size)) ++correct;
      };
      REQUIRE(multi.Start(Get("/bytes/" + std::to_string(size)), std::move(cb), nullptr) != nullptr);
    }
    CHECK(multi.active() == kCount);
    l.Run();
    CHECK(done == kCount);
    CHECK(correct == kCount);
    CHECK(multi.active() == 0);
  }
  Finish(l);
}

TEST_CASE("http: Abort cancels at once and no callback runs afterwards", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    int after_abort = 0;
    SECTION("from inside on_chunk") {
      int chunks = 0;
      bool aborted = false;
      Request* request = nullptr;
      RequestCallbacks cb;
      cb.on_headers = [&](int, const Headers&) { after_abort += aborted; };
      cb.on_chunk = [&](const char*, size_t) {
        after_abort += aborted;
        if (++chunks == 2) {
          request->Abort();
          aborted = true;
        }
        return false;
      };
      cb.on_done = [&](Result&&) { ++after_abort; };
      request = multi.Start(Get("/slow?chunks=20&delay=0.02"), cb, nullptr);
      REQUIRE(request != nullptr);
      l.Run();
      CHECK(chunks == 2);
      CHECK(aborted);
    }
    SECTION("from a timer, mid-transfer") {
      int chunks = 0, chunks_at_abort = -1;
      Request* request = nullptr;
      RequestCallbacks cb;
      cb.on_chunk = [&](const char*, size_t) {
        if (++chunks == 1) {  // abort from a timer 50 ms after the body started: mid-transfer, outside curl
          TestTimer::Start(&l.loop, 50, [&](TestTimer* t) {
            chunks_at_abort = chunks;
            request->Abort();
            CHECK(multi.active() == 0);  // freed at once
            t->Close();
          });
        }
        return false;
      };
      cb.on_done = [&](Result&&) { ++after_abort; };
      request = multi.Start(Get("/slow?chunks=50&delay=0.02"), cb, nullptr);
      REQUIRE(request != nullptr);
      l.Run();
      CHECK(chunks_at_abort > 0);
      CHECK(chunks == chunks_at_abort);
    }
    SECTION("right after Start, before the loop runs") {
      RequestCallbacks cb;
      cb.on_headers = [&](int, const Headers&) { ++after_abort; };
      cb.on_done = [&](Result&&) { ++after_abort; };
      Request* request = multi.Start(Get("/small"), cb, nullptr);
      REQUIRE(request != nullptr);
      request->Abort();
      CHECK(multi.active() == 0);
      l.Run();
    }
    SECTION("one request aborting another from its on_done") {
      Request* victim = nullptr;
      int victim_calls = 0;
      RequestCallbacks slow;
      slow.on_chunk = [&](const char*, size_t) {
        ++victim_calls;
        return false;
      };
      slow.on_done = [&](Result&&) { ++victim_calls; };
      victim = multi.Start(Get("/slow?chunks=50&delay=0.02"), slow, nullptr);
      RequestCallbacks quick;
      int quick_done = 0;
      quick.on_done = [&](Result&& r) {
        ++quick_done;
        CHECK(r.kind == ErrorKind::kOk);
        victim->Abort();
        victim_calls = 0;
      };
      multi.Start(Get("/small"), quick, nullptr);
      l.Run();
      CHECK(quick_done == 1);
      CHECK(victim_calls == 0);
    }
    CHECK(after_abort == 0);
    CHECK(multi.active() == 0);
    // The Multi still works afterwards.
    Result r = Fetch(l, multi, Get("/small"));
    CHECK(r.body == Pattern(64));
  }
  Finish(l);
}

TEST_CASE("http: Start from inside a callback is applied after curl returns", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    std::vector<std::string> bodies;
    RequestCallbacks second;
    second.on_done = [&](Result&& r) { bodies.push_back(r.body); };
    RequestCallbacks first;
    bool started = false;
    first.on_chunk = [&](const char*, size_t) {
      if (!started) started = multi.Start(Get("/bytes/10"), second, nullptr) != nullptr;
      return false;
    };
    first.on_done = [&](Result&& r) { bodies.push_back("first " + std::to_string(r.status)); };
    multi.Start(Get("/bytes/100"), first, nullptr);
    l.Run();
    CHECK(started);
    REQUIRE(bodies.size() == 2);
    CHECK(std::find(bodies.begin(), bodies.end(), Pattern(10)) != bodies.end());
    CHECK(std::find(bodies.begin(), bodies.end(), "first 200") != bodies.end());
  }
  Finish(l);
}

// Pauses after every 200 kB for 30 ms; nothing may be delivered while paused, and nothing may be lost.
void RunPauseResume(const std::string& path, const std::string& expected) {
  Loop l;
  {
    Multi multi(&l.loop);
    std::string body;
    bool paused = false;
    int chunks_while_paused = 0, pauses = 0;
    Request* request = nullptr;
    RequestCallbacks cb;
    cb.on_chunk = [&](const char* data, size_t len) {
      if (paused) ++chunks_while_paused;
      body.append(data, len);
      if (pauses < 5 && body.size() >= static_cast<size_t>(pauses + 1) * 200000) {
        ++pauses;
        paused = true;
        TestTimer::Start(&l.loop, 30, [&](TestTimer* t) {
          paused = false;
          request->Resume();
          t->Close();
        });
        return true;
      }
      return false;
    };
    Result result;
    cb.on_done = [&](Result&& r) { result = std::move(r); };
    double t0 = Now();
    request = multi.Start(Get(path), cb, nullptr);
    REQUIRE(request != nullptr);
    l.Run();
    double elapsed = Now() - t0;
    CHECK(result.kind == ErrorKind::kOk);
    CHECK(pauses == 5);
    CHECK(chunks_while_paused == 0);
    CHECK(body.size() == expected.size());
    CHECK(body == expected);
    CHECK(elapsed >= 0.15);
    // The easy handle goes back to the Multi's spares; the next request must not inherit the pause.
    Result again = Fetch(l, multi, Get("/bytes/300000"));
    CHECK(again.body == Pattern(300000));
  }
  Finish(l);
}

TEST_CASE("http: a streamed response can be paused from on_chunk and resumed later", "[http]") {
  REQUIRE_SERVER();
  SECTION("plain") { RunPauseResume("/bytes/2000000", Pattern(2000000)); }
  SECTION("chunked") { RunPauseResume("/chunked/2000000?size=50000", Pattern(2000000)); }
  SECTION("gzip") { RunPauseResume("/gzip?n=2000000", Pattern(2000000)); }
}

TEST_CASE("http: Pause from outside a callback holds delivery until Resume", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  {
    Multi multi(&l.loop);
    std::string body;
    bool paused = false;
    int chunks_while_paused = 0;
    RequestCallbacks cb;
    size_t size_at_pause = 0, size_at_resume = 0;
    Request* request = nullptr;
    // After the first chunk: Pause() from a timer (outside curl), Resume() 200 ms later from another timer.
    auto pause_then_resume = [&]() {
      TestTimer::Start(&l.loop, 0, [&](TestTimer* t) {
        request->Pause();
        CHECK(request->paused());
        paused = true;
        size_at_pause = body.size();
        t->Close();
        TestTimer::Start(&l.loop, 200, [&](TestTimer* t2) {
          size_at_resume = body.size();
          paused = false;
          request->Resume();  // held data comes from a later loop callback, not from inside Resume()
          CHECK(body.size() == size_at_resume);
          t2->Close();
        });
      });
    };
    cb.on_chunk = [&](const char* data, size_t len) {
      if (paused) ++chunks_while_paused;
      if (body.empty()) pause_then_resume();
      body.append(data, len);
      return false;
    };
    Result result;
    cb.on_done = [&](Result&& r) { result = std::move(r); };
    request = multi.Start(Get("/slow?chunks=10&delay=0.02"), cb, nullptr);
    REQUIRE(request != nullptr);
    l.Run();
    CHECK(result.kind == ErrorKind::kOk);
    CHECK(size_at_pause > 0);
    CHECK(size_at_resume == size_at_pause);
    CHECK(chunks_while_paused == 0);
    std::string expected;
    for (int i = 0; i < 10; ++i) expected += "chunk " + std::to_string(i) + "\n";
    CHECK(body == expected);
  }
  Finish(l);
}

TEST_CASE("http: destroying the Multi with transfers in flight frees everything", "[http]") {
  REQUIRE_SERVER();
  Loop l;
  int callbacks_after = 0;
  bool destroyed = false;
  {
    auto multi = std::make_unique<Multi>(&l.loop);
    int chunks = 0;
    for (int i = 0; i < 10; ++i) {
      RequestCallbacks cb;
      cb.on_chunk = [&](const char*, size_t) {
        callbacks_after += destroyed;
        if (++chunks == 1) {  // bodies are flowing: destroy the Multi 50 ms later, from a timer
          TestTimer::Start(&l.loop, 50, [&](TestTimer* t) {
            multi.reset();
            destroyed = true;
            t->Close();
          });
        }
        return false;
      };
      cb.on_done = [&](Result&&) { ++callbacks_after; };
      REQUIRE(multi->Start(Get(i % 2 ? "/hang" : "/slow?chunks=100&delay=0.02"), cb, nullptr) != nullptr);
    }
    l.Run();
    CHECK(destroyed);
    CHECK(chunks > 0);
  }
  CHECK(callbacks_after == 0);
  Finish(l);
}

TEST_CASE("http: a socket curl closed leaves no poll handle that could unregister its fd's next owner", "[http]") {
  // The Multi keeps a context per kept-alive connection between requests. One outliving its socket would, when
  // finally dropped, unregister whatever else got that fd number since (from its own epoll set; with a libuv
  // poll handle per socket, as before, from the loop's). Here the number goes to a socketpair the test watches.
  REQUIRE_SERVER();
  Loop l;
  int fds[2] = {-1, -1};
  uv_poll_t other;
  bool readable = false;
  {
    Multi multi(&l.loop);
    REQUIRE(Fetch(l, multi, Get("/small")).kind == ErrorKind::kOk);  // the connection is now idle, unwatched
    REQUIRE(Fetch(l, multi, Get("/disconnect/10")).kind == ErrorKind::kProtocol);  // curl closed that socket
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);  // likely reuses the closed socket's number
    REQUIRE(uv_poll_init_socket(&l.loop, &other, fds[0]) == 0);
    other.data = &readable;
    uv_poll_start(&other, UV_READABLE, [](uv_poll_t* h, int, int) {
      *static_cast<bool*>(h->data) = true;
      uv_poll_stop(h);
    });
    uv_run(&l.loop, UV_RUN_NOWAIT);  // registers fds[0] with epoll
  }  // ~Multi closes its remaining handles
  REQUIRE(write(fds[1], "x", 1) == 1);
  TestTimer* guard = TestTimer::Start(&l.loop, 2000, [&](TestTimer* t) {
    uv_poll_stop(&other);
    t->Close();
  });
  while (!readable && uv_run(&l.loop, UV_RUN_ONCE) != 0) {
  }
  CHECK(readable);
  if (readable) {
    uv_timer_stop(&guard->handle);
    guard->Close();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&other), nullptr);
  Finish(l);
  close(fds[0]);
  close(fds[1]);
}
