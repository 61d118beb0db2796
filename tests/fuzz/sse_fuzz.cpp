// libFuzzer target for SseParser.
//
// Input: byte 0 picks the size limit (high bit set: the 16 MiB default, else
// 0..127 bytes), byte 1 seeds where the stream is cut, the rest is the stream.
// Invariants checked:
//  - feeding the stream whole, in two pieces, in several pieces and one byte at
//    a time gives the same events, the same Finish() result and the same error;
//  - all of them equal a separate, deliberately naive reference that first
//    splits the whole text into lines, then applies the WHATWG rules.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/sse.h"
#include "split_driver.h"

using luasync::http::SseEvent;
using luasync::http::SseParser;

using luasync::fuzz::Check;
using luasync::fuzz::CheckSplits;
using luasync::fuzz::FeedInPieces;

namespace {

struct Ev {
  std::string type, data, id;
  int64_t retry;
  bool operator==(const Ev& o) const {
    return type == o.type && data == o.data && id == o.id && retry == o.retry;
  }
};

struct Result {
  std::vector<Ev> events;
  bool clean = false;
  std::string error;
  bool operator==(const Result& o) const {
    return events == o.events && clean == o.clean && error == o.error;
  }
};

Result RunParser(std::string_view s, size_t max, const std::vector<size_t>& cuts) {
  Result r;
  SseParser parser(
      [&](const SseEvent& e) {
        if (e.type.empty()) abort();
        r.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id), e.retry_ms});
      },
      max);
  FeedInPieces(parser, s, cuts);
  r.clean = parser.Finish();
  r.error = parser.error();
  return r;
}

int64_t ParseRetry(const std::string& v) {
  size_t i = v.find_first_not_of('0');
  std::string digits = i == std::string::npos ? "0" : v.substr(i);
  const std::string kMax = "9223372036854775807";
  if (digits.size() > kMax.size() || (digits.size() == kMax.size() && digits > kMax)) return INT64_MAX;
  return std::stoll(digits);
}

Result Reference(std::string s, size_t max) {
  Result r;
  const std::string size = " (" + std::to_string(max) + " bytes)";
  if (s.compare(0, 3, "\xEF\xBB\xBF") == 0) s.erase(0, 3);
  std::vector<std::string> lines;
  std::string tail;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' || s[i] == '\n') {
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      lines.push_back(tail);
      tail.clear();
    } else {
      tail += s[i];
    }
  }
  std::string data, type, id;
  int64_t retry = -1;
  for (const std::string& line : lines) {
    if (line.size() > max) {
      r.error = "sse: line longer than max size" + size;
      return r;
    }
    if (line.empty()) {
      if (!data.empty()) {
        data.pop_back();
        r.events.push_back({type.empty() ? "message" : type, data, id, retry});
      }
      data.clear();
      type.clear();
      continue;
    }
    if (line[0] == ':') continue;
    size_t colon = line.find(':');
    std::string field = line.substr(0, colon), value;
    if (colon != std::string::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    }
    if (field == "data") {
      data += value + "\n";
      if (data.size() > max) {
        r.error = "sse: event data larger than max size" + size;
        return r;
      }
    } else if (field == "event") {
      type = value;
    } else if (field == "id") {
      if (value.find('\0') == std::string::npos) id = value;
    } else if (field == "retry") {
      if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos) retry = ParseRetry(value);
    }
  }
  if (tail.size() > max) {
    r.error = "sse: line longer than max size" + size;
    return r;
  }
  r.clean = tail.empty() && data.empty() && type.empty();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {
  if (n < 2) return 0;
  size_t max = (d[0] & 0x80) ? SseParser::kDefaultMaxSize : (d[0] & 0x7F);
  uint32_t seed = d[1];
  std::string_view s(reinterpret_cast<const char*>(d + 2), n - 2);

  Result whole = RunParser(s, max, {});
  Check(whole == Reference(std::string(s), max), "whole parse equals the reference");
  CheckSplits(s, seed, whole, [&](const std::vector<size_t>& cuts) { return RunParser(s, max, cuts); });
  return 0;
}
