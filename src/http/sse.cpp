#include "http/sse.h"

#include <cstring>
#include <string>
#include <utility>

namespace luasync::http {

namespace {

constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};

// Index of the first CR or LF in [i, n), or n. An LLM event's line is a few hundred bytes and CRs are rare: two
// vectorised scans (for the LF, then for a CR before it) cost a third of a loop over the bytes.
size_t FindLineEnd(const char* p, size_t i, size_t n) {
  const void* lf = std::memchr(p + i, '\n', n - i);
  size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - p) : n;
  const void* cr = std::memchr(p + i, '\r', end - i);
  return cr ? static_cast<size_t>(static_cast<const char*>(cr) - p) : end;
}

}  // namespace

SseParser::SseParser(EventFn on_event, size_t max_size)
    : on_event_(std::move(on_event)), max_size_(max_size) {}

bool SseParser::Feed(const char* p, size_t n) {
  if (failed()) return false;
  if (!bom_done_) {
    // The BOM may itself be split across pieces: hold its prefix until decided.
    size_t k = 0;
    while (k < n && bom_seen_ < 3 && static_cast<unsigned char>(p[k]) == kBom[bom_seen_]) {
      ++bom_seen_;
      ++k;
    }
    if (bom_seen_ == 3) {
      bom_done_ = true;
      p += k;
      n -= k;
    } else if (k == n) {
      return true;
    } else {
      // Not a BOM after all: replay the prefix bytes held from earlier pieces,
      // then this whole piece.
      bom_done_ = true;
      Consume(reinterpret_cast<const char*>(kBom), bom_seen_ - k);
      if (failed()) return false;
    }
  }
  Consume(p, n);
  return !failed();
}

void SseParser::Consume(const char* p, size_t n) {
  size_t i = 0;
  if (skip_lf_ && n > 0) {
    skip_lf_ = false;
    if (p[0] == '\n') i = 1;  // second half of a CRLF cut by the chunk boundary
  }
  while (i < n) {
    size_t j = FindLineEnd(p, i, n);
    size_t len = j - i;
    if (line_.size() + len > max_size_) return Fail("sse: line longer than max size");
    if (j == n) {
      line_.append(p + i, len);
      return;
    }
    if (line_.empty()) {
      ProcessLine(std::string_view(p + i, len));
    } else {
      line_.append(p + i, len);
      ProcessLine(line_);
      line_.clear();
    }
    if (failed()) return;
    if (p[j] == '\r') {
      if (j + 1 == n) skip_lf_ = true;
      else if (p[j + 1] == '\n') ++j;
    }
    i = j + 1;
  }
}

void SseParser::ProcessLine(std::string_view line) {
  if (line.empty()) return Dispatch();
  if (line[0] == ':') return;  // comment
  std::string_view field = line, value;
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > max_size_) return Fail("sse: event data larger than max size");
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) id_.assign(value);
  } else if (field == "retry") {
    if (value.empty()) return;
    int64_t ms = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return;  // only ASCII digits count; otherwise ignored
      int d = c - '0';
      ms = ms > (INT64_MAX - d) / 10 ? INT64_MAX : ms * 10 + d;  // saturates
    }
    retry_ms_ = ms;
  }
  // Any other field is ignored.
}

void SseParser::Dispatch() {
  if (data_.empty()) {
    type_.clear();
    return;
  }
  data_.pop_back();  // the "\n" added after the last data line
  SseEvent ev{type_.empty() ? std::string_view("message") : std::string_view(type_), data_, id_,
              retry_ms_};
  on_event_(ev);
  data_.clear();
  type_.clear();
}

bool SseParser::Finish() {
  // A held BOM prefix is a partial line; check it here rather than while holding,
  // so the outcome does not depend on how the BOM was split.
  if (!bom_done_ && bom_seen_ > max_size_) Fail("sse: line longer than max size");
  bool clean = line_.empty() && data_.empty() && type_.empty() && (bom_done_ || bom_seen_ == 0);
  line_.clear();
  data_.clear();
  type_.clear();
  skip_lf_ = false;
  if (!bom_done_) bom_seen_ = 0;
  return clean && !failed();
}

void SseParser::Reset() {
  line_.clear();
  data_.clear();
  type_.clear();
  id_.clear();
  error_.clear();
  retry_ms_ = -1;
  bom_seen_ = 0;
  bom_done_ = false;
  skip_lf_ = false;
}

void SseParser::Fail(const char* what) {
  error_ = std::string(what) + " (" + std::to_string(max_size_) + " bytes)";
  line_.clear();
  data_.clear();
}

}  // namespace luasync::http
