// The SSE parser alone (src/http/sse.cpp) on the benchmark's events: ns per event, fed in 300-byte pieces.
//
//   g++ -O2 -std=c++17 -Isrc -o /tmp/sse_parse bench/llm/sse_parse.cpp src/http/sse.cpp && /tmp/sse_parse
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "http/sse.h"

int main() {
  std::string stream;
  for (int i = 0; i < 1000; i++) {
    char event[400];
    std::snprintf(event, sizeof event,
                  "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                  "\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok%d\"},"
                  "\"finish_reason\":null}]}\n\n",
                  i);
    stream += event;
  }
  size_t events = 0, bytes = 0;
  luasync::http::SseParser parser([&](const luasync::http::SseEvent& e) {
    ++events;
    bytes += e.data.size();
  });
  auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 300; round++) {
    for (size_t at = 0; at < stream.size(); at += 300) {
      parser.Feed(stream.data() + at, std::min<size_t>(300, stream.size() - at));
    }
  }
  double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  std::printf("events=%zu\ndata_bytes=%zu\nns_per_event=%.1f\n", events, bytes, ns / static_cast<double>(events));
  return events == 300000 ? 0 : 1;
}
