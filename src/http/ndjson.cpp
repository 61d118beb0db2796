#include "http/ndjson.h"

#include <cstring>
#include <utility>

namespace luasync::http {

NdjsonFramer::NdjsonFramer(LineFn on_line, size_t max_size)
    : on_line_(std::move(on_line)), max_size_(max_size) {}

bool NdjsonFramer::Feed(const char* p, size_t n) {
  if (failed()) return false;
  const char* end = p + n;
  while (p < end) {
    const char* nl = static_cast<const char*>(memchr(p, '\n', end - p));
    size_t len = (nl ? nl : end) - p;
    // The limit counts the line's bytes before the LF, a trailing CR included,
    // so the outcome does not depend on where the chunks were cut.
    if (line_.size() + len > max_size_) {
      error_ = "ndjson: line longer than max size (" + std::to_string(max_size_) + " bytes)";
      line_.clear();
      return false;
    }
    if (!nl) {
      line_.append(p, len);
      break;
    }
    if (line_.empty()) {
      Deliver(std::string_view(p, len));
    } else {
      line_.append(p, len);
      Deliver(line_);
      line_.clear();
    }
    p = nl + 1;
  }
  return true;
}

void NdjsonFramer::Deliver(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r') {
      on_line_(line);
      return;
    }
  }
}

bool NdjsonFramer::Finish() {
  if (failed()) return false;
  if (!line_.empty()) {
    Deliver(line_);
    line_.clear();
  }
  return true;
}

void NdjsonFramer::Reset() {
  line_.clear();
  error_.clear();
}

}  // namespace luasync::http
