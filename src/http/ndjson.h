// Incremental line framer for newline-delimited JSON (Ollama's /api/chat stream).
//
// Lines end with LF; one CR before the LF is dropped (CRLF tolerated). Lines that
// hold only JSON whitespace (space, tab, CR) are skipped. A final line without a
// newline is delivered by Finish(). The framer does not parse JSON: each line is
// handed to the callback as it is.
//
// Pure: no I/O, no Lua. Lines complete inside one chunk are delivered in place;
// only a line cut by a chunk boundary is copied, into a buffer that keeps its capacity.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace luasync::http {

class NdjsonFramer {
 public:
  /// `line` is valid only during the call.
  using LineFn = std::function<void(std::string_view line)>;
  static constexpr size_t kDefaultMaxSize = 16u << 20;

  /// A line longer than `max_size` puts the framer in the error state instead
  /// of growing the buffer.
  explicit NdjsonFramer(LineFn on_line, size_t max_size = kDefaultMaxSize);

  /// Frames the next piece, calling on_line for each complete non-blank line.
  /// Returns false once in the error state (further input is ignored). The
  /// callback must not call back into this framer.
  bool Feed(const char* p, size_t n);
  bool Feed(std::string_view s) { return Feed(s.data(), s.size()); }

  /// Ends the stream, delivering a last line that had no newline.
  /// Returns false if the framer is in the error state.
  bool Finish();

  /// Back to the initial state, keeping buffer capacity.
  void Reset();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  void Deliver(std::string_view line);

  LineFn on_line_;
  size_t max_size_;
  std::string line_;  // a line cut by a chunk boundary
  std::string error_;
};

}  // namespace luasync::http
