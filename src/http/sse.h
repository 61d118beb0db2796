// Incremental parser for text/event-stream (Server-Sent Events).
//
// Follows the WHATWG HTML "event stream interpretation" rules: CR, LF and CRLF
// line ends (a CRLF split across two Feed() calls counts once), one optional
// leading UTF-8 BOM, comment lines starting with ':', the fields event/data/id/
// retry with one leading space of the value removed, multi-line data joined with
// "\n", dispatch on a blank line and no dispatch when the data buffer is empty.
// An event left incomplete when the stream ends is discarded.
//
// Pure: no I/O, no Lua. Complete lines inside a chunk are parsed in place; only a
// line cut by a chunk boundary is copied, into a buffer that keeps its capacity.
// Bytes are passed through as they are (no UTF-8 validation or replacement).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace luasync::http {

/// One dispatched event. The views point into the parser's buffers and are
/// valid only during the callback.
struct SseEvent {
  std::string_view type;  ///< the `event:` field, "message" when absent or empty
  std::string_view data;  ///< `data:` lines joined with "\n" (a lone `data` line gives "")
  std::string_view id;    ///< last event ID: persists across events, as in the spec
  int64_t retry_ms;       ///< last valid `retry:` value so far (saturating), -1 if none
};

class SseParser {
 public:
  using EventFn = std::function<void(const SseEvent&)>;
  static constexpr size_t kDefaultMaxSize = 16u << 20;

  /// `max_size` bounds both one line and one event's data; going over it puts
  /// the parser in the error state instead of growing the buffers.
  explicit SseParser(EventFn on_event, size_t max_size = kDefaultMaxSize);

  /// Parses the next piece of the stream, calling on_event for each complete
  /// event. Returns false once the parser is in the error state (further input
  /// is ignored). The callback must not call back into this parser.
  bool Feed(const char* p, size_t n);
  bool Feed(std::string_view s) { return Feed(s.data(), s.size()); }

  /// Ends the stream: a partial line or undispatched event is dropped. Call
  /// Reset() before parsing another stream.
  /// Returns true when nothing was dropped and no error happened.
  bool Finish();

  /// Back to the initial state (BOM allowed again, last event ID and retry
  /// forgotten), keeping buffer capacity.
  void Reset();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  int64_t retry_ms() const { return retry_ms_; }
  const std::string& last_event_id() const { return id_; }

 private:
  void Consume(const char* p, size_t n);
  void ProcessLine(std::string_view line);
  void Dispatch();
  void Fail(const char* what);

  EventFn on_event_;
  size_t max_size_;
  std::string line_;      // a line cut by a chunk boundary
  std::string data_;      // data buffer; each data line adds value + "\n"
  std::string type_;      // event type buffer
  std::string id_;        // last event ID buffer
  std::string error_;
  int64_t retry_ms_ = -1;
  uint8_t bom_seen_ = 0;  // leading bytes matched against EF BB BF so far
  bool bom_done_ = false;
  bool skip_lf_ = false;  // the previous piece ended with CR
};

}  // namespace luasync::http
