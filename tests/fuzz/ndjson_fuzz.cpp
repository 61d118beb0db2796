// libFuzzer target for NdjsonFramer.
//
// Input: byte 0 picks the size limit (high bit set: the 16 MiB default, else
// 0..127 bytes), byte 1 seeds where the stream is cut, the rest is the stream.
// Invariants checked:
//  - feeding the stream whole, in two pieces, in several pieces and one byte at
//    a time gives the same lines, the same Finish() result and the same error;
//  - all of them equal a naive reference that splits the whole text on LF.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/ndjson.h"
#include "split_driver.h"

using luasync::http::NdjsonFramer;

using luasync::fuzz::Check;
using luasync::fuzz::CheckSplits;
using luasync::fuzz::FeedInPieces;

namespace {

struct Result {
  std::vector<std::string> lines;
  bool finished = false;
  std::string error;
  bool operator==(const Result& o) const {
    return lines == o.lines && finished == o.finished && error == o.error;
  }
};

Result RunFramer(std::string_view s, size_t max, const std::vector<size_t>& cuts) {
  Result r;
  NdjsonFramer framer([&](std::string_view line) { r.lines.emplace_back(line); }, max);
  FeedInPieces(framer, s, cuts);
  r.finished = framer.Finish();
  r.error = framer.error();
  return r;
}

Result Reference(const std::string& s, size_t max) {
  Result r;
  size_t start = 0;
  while (start <= s.size()) {
    size_t nl = s.find('\n', start);
    size_t end = nl == std::string::npos ? s.size() : nl;
    std::string line = s.substr(start, end - start);
    if (line.size() > max) {
      r.error = "ndjson: line longer than max size (" + std::to_string(max) + " bytes)";
      return r;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t\r") != std::string::npos) r.lines.push_back(line);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  r.finished = true;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  if (n < 2) return 0;
  size_t max = (d[0] & 0x80) ? NdjsonFramer::kDefaultMaxSize : (d[0] & 0x7F);
  uint32_t seed = d[1];
  std::string_view s(reinterpret_cast<const char*>(d + 2), n - 2);

  Result whole = RunFramer(s, max, {});
  Check(whole == Reference(std::string(s), max), "whole input equals the reference");
  CheckSplits(s, seed, whole, [&](const std::vector<size_t>& cuts) { return RunFramer(s, max, cuts); });
  return 0;
}
