// One HTTP transfer (a curl easy handle) driven by a Multi. No Lua in here: the Lua binding
// (src/lua/mod_http.cpp) sits on top of this API.
//
// Ownership, in one place:
// - A Multi owns every Request it starts. Multi::Start() returns a non-owning Request* that stays valid until
//   (a) on_done has returned (the Multi frees the Request right after), or
//   (b) the caller calls Abort() (the Request is dead when Abort() returns, as far as the caller is concerned), or
//   (c) the Multi is destroyed (in-flight Requests are freed silently: no callback runs).
// - The Request owns its easy handle, its header list and copies of the options and callbacks.
//
// Callback rules (see docs/http-internals.md):
// - Callbacks run only from libuv callbacks (socket readiness, curl's timer, the Multi's deferred-work idle),
//   never from inside a Request or Multi method the caller is executing.
// - on_headers and on_chunk run while curl is on the stack. They may call Pause(), Resume(), BodyReady() and
//   Abort() on any Request, and Multi::Start(); those calls are applied after curl returns.
// - on_done runs once curl has finished with the transfer. It is called exactly once, unless the Request was
//   aborted (then never) or its Multi was destroyed first (then never).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace luasync::http {

class Multi;
class Request;

/// Failure classes of API.md section 7. kOk means the transfer completed (any HTTP status).
enum class ErrorKind { kOk, kTimeout, kConnect, kTls, kProtocol, kTooLarge, kCancelled };

/// "ok", "timeout", "connect", "tls", "protocol", "too_large", "cancelled".
const char* KindName(ErrorKind kind);

/// Ordered (name, value) pairs. Response names are lower-case and unique (repeats joined with ", ").
using Headers = std::vector<std::pair<std::string, std::string>>;

/// Returns "" if every name is an HTTP token and no value holds CR, LF or NUL, else what is wrong.
std::string CheckHeaders(const Headers& headers);

/// Request headers checked once (CheckHeaders, by whoever makes the set) and sent by many requests (an LLM
/// client's): curl's list of header lines is made once for requests with a body and once for those without,
/// instead of once per request.
class HeaderSet {
 public:
  explicit HeaderSet(Headers headers) : headers_(std::move(headers)) {}
  ~HeaderSet();
  HeaderSet(const HeaderSet&) = delete;
  HeaderSet& operator=(const HeaderSet&) = delete;
  const Headers& headers() const { return headers_; }
  /// The curl_slist* to send, made on first use; nullptr if out of memory.
  void* List(bool has_body) const;

 private:
  Headers headers_;
  mutable void* lists_[2] = {nullptr, nullptr};  // curl_slist*, owned: without, with a body
};

/// What a streamed request body source returns each time curl wants more bytes.
enum class BodyPull {
  kData,  ///< bytes were appended to `out`
  kEnd,   ///< the body is complete
  kWait,  ///< nothing yet: call Request::BodyReady() once data (or the end) is available
  kFail,  ///< abort the transfer; `out` holds the reason (on_done gets kCancelled with it)
};

/// Pull source for a streamed request body. `out` arrives empty. Runs while curl is on the stack.
using BodySource = std::function<BodyPull(std::string& out)>;

struct RequestOptions {
  std::string method = "GET";       ///< an HTTP token; GET is the only method that follows redirects
  std::string url;                  ///< http:// or https:// only
  Headers headers;                  ///< sent as given; CR, LF or NUL in a name or value is rejected
  std::shared_ptr<const HeaderSet> header_set;  ///< sent instead of `headers` when set (checked when made)
  std::string body;                 ///< request body, used when body_source is empty
  BodySource body_source;           ///< streamed request body; wins over `body`
  int64_t body_size = -1;           ///< size of a streamed body if known; -1 sends it chunked
  long timeout_ms = 0;              ///< whole transfer, 0 = none
  long connect_timeout_ms = 0;      ///< 0 = curl's default (300 s)
  int64_t max_body = -1;            ///< limit on the (decoded) response body, -1 = none
  bool insecure = false;            ///< skip TLS certificate and host verification
  bool follow_redirects = true;     ///< up to 10 hops, GET only
  long buffer_size = 0;             ///< CURLOPT_BUFFERSIZE, curl's receive buffer; 0 = the Multi's default
};

/// Returns "" if the options may be sent, else why not (bad method, URL, scheme or header). Multi::Start checks
/// this too; the Lua binding calls it first so that misuse raises at once.
std::string CheckOptions(const RequestOptions& options);

struct Result {
  ErrorKind kind = ErrorKind::kOk;
  std::string message;  ///< empty when kind == kOk
  int status = 0;       ///< final HTTP status; 0 if no complete header block arrived
  Headers headers;      ///< of the final response (after redirects)
  std::string body;     ///< the whole body, unless on_chunk was set
  std::string url;      ///< effective URL after redirects
};

struct RequestCallbacks {
  /// Once, when the final response's header block is complete (interim 1xx and followed redirects are skipped).
  /// Always before the first on_chunk and before a successful on_done.
  std::function<void(int status, const Headers& headers)> on_headers;
  /// Each piece of the (decoded) response body. Return true to pause delivery until Resume().
  /// If unset, the body is collected into Result::body instead.
  std::function<bool(const char* data, size_t len)> on_chunk;
  /// Exactly once at the end, success or failure (see the ownership rules above).
  std::function<void(Result&& result)> on_done;
};

/// The User-Agent header every request sends unless its headers have one.
#ifdef LUASYNC_VERSION
inline constexpr const char* kUserAgent = "User-Agent: luasync/" LUASYNC_VERSION;
#else
inline constexpr const char* kUserAgent = "User-Agent: luasync";
#endif

/// A curl easy handle kept by a Multi across requests, with the options last applied to it, so that a request
/// like the previous one sets only what differs (most GETs set just the URL). curl's callbacks and
/// CURLINFO_PRIVATE point at the slot, which points at its current Request. Internal to Multi and Request.
struct EasySlot {
  enum class State {
    kFresh,   ///< new or reset, base options applied (SetBase), nothing request-specific
    kGet,     ///< a plain GET completed on it; its variable options are recorded below
    kPost,    ///< a POST of a string body completed on it; likewise
    kDirty,   ///< anything else (other methods, streamed bodies, failures): curl_easy_reset before the next use
  };
  void* handle = nullptr;         ///< CURL*, owned by the Multi
  Request* request = nullptr;     ///< current user, or null while spare
  State state = State::kDirty;
  // Variable options as applied (curl's defaults while kFresh).
  long timeout_ms = 0;
  long connect_timeout_ms = 0;
  int64_t max_body = -1;
  bool insecure = false;
  bool pipewait = false;
  long buffer_size = 0;           ///< CURLOPT_BUFFERSIZE (0: curl's default, 16 KiB)
  const void* header_list = nullptr;  ///< CURLOPT_HTTPHEADER as applied (the Multi's User-Agent list, or a
                                      ///< Request's, possibly freed since: compared, never dereferenced)
  bool follow = false;            ///< FOLLOWLOCATION and MAXREDIRS applied
  void* url = nullptr;            ///< CURLU*, owned: url_text parsed, passed as CURLOPT_CURLU
  std::string url_text;           ///< the URL `url` holds, "" if none
  char error_buffer[256] = {};    ///< CURLOPT_ERRORBUFFER (CURL_ERROR_SIZE)
};

/// A transfer in flight. Made only by Multi::Start(); owned by the Multi.
class Request {
 public:
  ~Request();
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  /// Stop delivering on_chunk; curl keeps the next piece of data and stops reading the socket (TCP backpressure).
  void Pause();
  /// Undo Pause(). Held data is delivered from a later loop callback, never from inside this call.
  void Resume();
  /// Tell a waiting body source (it returned kWait) to be pulled again.
  void BodyReady();
  /// Cancel the transfer: the easy handle leaves the multi and is freed now (or, if curl is on the stack, as soon
  /// as it returns). No callback of this Request runs afterwards; the pointer must not be used again.
  /// A no-op inside this Request's own on_done.
  void Abort();

  bool paused() const { return pause_wanted_; }

 private:
  friend class Multi;
  enum class State { kPending, kActive, kDone, kAborted };

  Request(Multi* multi, RequestOptions options, RequestCallbacks callbacks);
  bool Setup(std::string* error);       // takes an easy handle and applies options_ to it
  void* easy() const { return slot_->handle; }
  static void SetCallbacks(EasySlot* slot);  // curl's header/write/read callbacks, pointed at the slot
  void ApplyPause();                    // deferred curl_easy_pause; only from the Multi's idle callback
  void Complete(int curl_code);         // builds the Result and calls on_done; only from Multi
  void DeliverHeaders();
  size_t OnHeaderLine(const char* data, size_t len);
  size_t OnBody(char* data, size_t len);
  size_t OnReadBody(char* buf, size_t cap);
  struct Glue;                          // curl's C callbacks (request.cpp)

  Multi* multi_;
  EasySlot* slot_ = nullptr;        // owned by the Multi, lent to us: handed back (ReturnEasy) in ~Request
  void* header_list_ = nullptr;     // curl_slist*, owned: must outlive the easy handle's use of it
                                    // (a header_set's list lives in options_.header_set)
  RequestOptions options_;
  RequestCallbacks callbacks_;
  State state_ = State::kPending;
  Request* prev_ = nullptr;         // Multi::requests_ (intrusive list)
  Request* next_ = nullptr;
  EasySlot::State kind_ = EasySlot::State::kDirty;  // kGet or kPost: the slot may be reused without a reset
  bool completed_ok_ = false;       // curl finished the transfer with CURLE_OK

  // Response side.
  int status_ = 0;
  Headers headers_;
  bool headers_delivered_ = false;
  std::string body_;
  int64_t received_ = 0;
  bool too_large_ = false;
  bool pause_wanted_ = false;       // the user asked to pause
  bool recv_paused_ = false;        // we returned CURL_WRITEFUNC_PAUSE; curl holds data for us

  // Request body side (streamed).
  std::string upload_;
  size_t upload_off_ = 0;
  bool upload_ended_ = false;
  bool send_paused_ = false;        // we returned CURL_READFUNC_PAUSE
  bool body_ready_ = false;         // BodyReady() since the last kWait
  bool source_failed_ = false;
  std::string source_error_;

  bool in_multi_ = false;           // the easy handle is added to the multi
  bool deferred_ = false;           // queued in Multi::deferred_ for ApplyPause()
};

}  // namespace luasync::http
