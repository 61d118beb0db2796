// luasync's C++ HTTP transport (src/http: Multi + Request) with no Lua: the same workloads as floor.c, so the
// difference between the two is the cost of the transport layer, and the difference to the Lua binding (later)
// is the cost of Lua.
//
//   transport URL N C [--ttfb] [--buffer N]   prints floor.c's key=value lines; exits 1 on any failure
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "http/multi.h"

using namespace luasync::http;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Cpu() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Bench {
  Multi* multi;
  std::string url;
  long total = 0, started = 0, done = 0, errors = 0;
  double bytes = 0;
  bool ttfb_mode = false;
  std::vector<double> ttfb;

  void StartOne() {
    ++started;
    RequestOptions options;
    options.url = url;
    RequestCallbacks callbacks;
    double t0 = Now();
    auto first = std::make_shared<bool>(true);
    callbacks.on_chunk = [this, t0, first](const char*, size_t len) {
      if (*first) {
        *first = false;
        if (ttfb_mode) ttfb.push_back(Now() - t0);
      }
      bytes += static_cast<double>(len);
      return false;
    };
    callbacks.on_done = [this](Result&& r) {
      if (r.kind != ErrorKind::kOk || r.status != 200) {
        if (errors++ < 5) std::fprintf(stderr, "transport: %s %s (%d)\n", KindName(r.kind), r.message.c_str(), r.status);
      }
      ++done;
      if (started < total) StartOne();
    };
    std::string error;
    if (!multi->Start(std::move(options), std::move(callbacks), &error)) {
      std::fprintf(stderr, "transport: %s\n", error.c_str());
      std::exit(2);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: transport URL N C [--ttfb] [--buffer N]\n");
    return 2;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  Bench b;
  b.url = argv[1];
  b.total = std::atol(argv[2]);
  long conc = std::min(std::atol(argv[3]), b.total);
  Multi::Options options;
  for (int i = 4; i < argc; ++i) {
    b.ttfb_mode |= std::strcmp(argv[i], "--ttfb") == 0;
    if (std::strcmp(argv[i], "--buffer") == 0 && i + 1 < argc) options.buffer_size = std::atol(argv[++i]);
  }
  double elapsed = 0, cpu = 0;
  {
    Multi multi(&loop, options);
    b.multi = &multi;
    double t0 = Now(), c0 = Cpu();
    for (long i = 0; i < conc; ++i) b.StartOne();
    uv_run(&loop, UV_RUN_DEFAULT);
    elapsed = Now() - t0;
    cpu = Cpu() - c0;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  std::printf("requests=%ld\nconcurrency=%ld\nelapsed_ms=%.1f\nreq_per_s=%.0f\nmb_per_s=%.1f\ncpu_us_per_req=%.1f\nerrors=%ld\n",
              b.done, conc, elapsed * 1e3, static_cast<double>(b.done) / elapsed, b.bytes / elapsed / 1e6,
              cpu / static_cast<double>(b.done) * 1e6, b.errors);
  if (b.ttfb_mode && !b.ttfb.empty()) {
    std::vector<double>& t = b.ttfb;
    double sum = 0;
    for (double x : t) sum += x;
    std::sort(t.begin(), t.end());
    std::printf("ttfb_us_mean=%.1f\nttfb_us_p50=%.1f\nttfb_us_p99=%.1f\n", sum / static_cast<double>(t.size()) * 1e6,
                t[t.size() / 2] * 1e6, t[t.size() * 99 / 100] * 1e6);
  }
  int closed = uv_loop_close(&loop);
  return b.errors || b.done != b.total || closed != 0 ? 1 : 0;
}
