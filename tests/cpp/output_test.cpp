// Output (src/lua/output.h): the ordered stdout buffer, blocking and with its writer thread.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "lua/output.h"

using luasync::Output;

namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string Numbered(int from, int to) {
  std::string s;
  for (int i = from; i < to; i++) s += std::to_string(i) + "\n";
  return s;
}

}  // namespace

TEST_CASE("Output unattached writes in order at the high-water mark and on Flush", "[output]") {
  Pipe p;
  {
    Output out(p.w, 16);
    out.Write("abc", 3);
    CHECK(out.pending() == 3);
    out.Write("0123456789abcdef", 16);  // crosses the mark: written at once
    CHECK(out.pending() == 0);
    out.Write("tail", 4);
    CHECK(out.Flush());
    CHECK(out.written() == 23);
    CHECK(out.appended() == 23);
    CHECK_FALSE(out.attached());
  }
  ::close(p.w);
  p.w = -1;
  CHECK(ReadAll(p.r) == "abc0123456789abcdeftail");
}

TEST_CASE("Output attached to a pipe writes through its thread, in order, without blocking", "[output]") {
  Pipe p;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  std::string got;
  std::thread reader;
  {
    Output out(p.w, 4096);
    int events = 0;
    out.Attach(&loop, [&] {
      events++;
      out.Kick();
    });
    REQUIRE(out.attached());
    std::string want;
    for (int i = 0; i < 200; i++) {
      // Nobody reads for the first half (about 500 KB): the pipe fills, so writes must go through the thread,
      // and the loop must not block meanwhile.
      if (i == 100) reader = std::thread([&] { got = ReadAll(p.r); });
      std::string part = Numbered(i * 1000, i * 1000 + 1000);
      want += part;
      out.Write(part.data(), part.size());
      out.Kick();
      uv_run(&loop, UV_RUN_NOWAIT);
    }
    out.Kick();
    while (out.pending() > 0) {
      uv_run(&loop, UV_RUN_ONCE);  // the async handle is referenced while a write is in flight
      out.Kick();
    }
    CHECK(events > 0);
    CHECK(out.written() == want.size());
    CHECK_FALSE(out.broken());
    out.Detach();
    CHECK_FALSE(out.attached());
    uv_run(&loop, UV_RUN_DEFAULT);  // the async handle's close callback
    ::close(p.w);
    p.w = -1;
    reader.join();
    CHECK(got == want);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("Output notices a reader that went away", "[output]") {
  ::signal(SIGPIPE, SIG_IGN);
  Pipe p;
  ::close(p.r);
  p.r = -1;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Output out(p.w, 1024);
    int events = 0;
    out.Attach(&loop, [&] { events++; });
    std::string big(200000, 'x');
    out.Write(big.data(), big.size());  // handed to the thread, which gets EPIPE
    while (!out.broken() && events < 100) {
      uv_run(&loop, UV_RUN_ONCE);
      out.Kick();
    }
    CHECK(out.broken());
    out.Write("more", 4);  // dropped quietly
    CHECK_FALSE(out.Flush());
    out.Detach();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("Output on a regular file stays unattached (blocking writes)", "[output]") {
  char path[] = "/tmp/luasync-output-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    Output out(fd, 8);
    out.Attach(&loop, [] {});
    CHECK_FALSE(out.attached());
    out.Write("hello, file", 11);
    CHECK(out.Flush());
  }
  ::lseek(fd, 0, SEEK_SET);
  CHECK(ReadAll(fd) == "hello, file");
  ::close(fd);
  ::unlink(path);
  CHECK(uv_loop_close(&loop) == 0);
}
