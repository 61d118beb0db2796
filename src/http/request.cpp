// One transfer: builds the easy handle from RequestOptions and turns curl's header/write/read callbacks into
// on_headers/on_chunk/body-source calls. Everything that needs the multi handle goes through Multi.
#include "http/request.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <string_view>

#include "http/multi.h"

namespace luasync::http {

namespace {

bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return IsTokenChar(c); });
}

bool HasLineBreakOrNul(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return LowerAscii(x) == LowerAscii(y);
         });
}

bool HasHeader(const Headers& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return EqualsNoCase(h.first, name); });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "HTTP/1.1 200 OK" and "HTTP/2 200" -> 200; 0 if malformed.
int ParseStatus(std::string_view line) {
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos || line.size() < sp + 4) return 0;
  int status = 0;
  for (size_t i = sp + 1; i < sp + 4; ++i) {
    if (line[i] < '0' || line[i] > '9') return 0;
    status = status * 10 + (line[i] - '0');
  }
  return status;
}

ErrorKind Classify(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return ErrorKind::kOk;
    case CURLE_OPERATION_TIMEDOUT:
      return ErrorKind::kTimeout;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return ErrorKind::kConnect;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return ErrorKind::kTls;
    case CURLE_FILESIZE_EXCEEDED:
      return ErrorKind::kTooLarge;
    default:
      // Dropped connections (RECV_ERROR, SEND_ERROR, PARTIAL_FILE, GOT_NOTHING), malformed replies
      // (WEIRD_SERVER_REPLY, BAD_CONTENT_ENCODING, HTTP2*), TOO_MANY_REDIRECTS, unsupported redirect targets.
      return ErrorKind::kProtocol;
  }
}

// "" if text is an http or https URL that curl can parse, else why not.
std::string CheckUrl(const std::string& text) {
  CURLU* url = curl_url();
  if (!url) return "out of memory";
  std::string error;
  char* scheme = nullptr;
  if (curl_url_set(url, CURLUPART_URL, text.c_str(), 0) != CURLUE_OK) {
    error = "invalid URL \"" + text + "\"";
  } else if (curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             !(EqualsNoCase(scheme, "http") || EqualsNoCase(scheme, "https"))) {
    error = "unsupported URL scheme \"" + std::string(scheme ? scheme : "") + "\" (only http and https)";
  }
  curl_free(scheme);
  curl_url_cleanup(url);
  return error;
}

// The URL goes to curl parsed (CURLOPT_CURLU), in a CURLU kept with the easy handle: curl then copies its parts
// instead of parsing the text on every transfer (~10k of the ~65k instructions curl spends on a small GET), and a
// handle reused for the same URL (the usual case: spare handles are taken last in, first out) parses nothing. A URL
// this parse refuses (CheckUrl has accepted it with the same flags, so only when out of memory) goes as text.
void ApplyUrl(EasySlot* slot, const std::string& url) {
  auto* easy = static_cast<CURL*>(slot->handle);
  if (url != slot->url_text) {
    auto* parsed = static_cast<CURLU*>(slot->url);
    if (!parsed) slot->url = parsed = curl_url();
    slot->url_text.clear();
    if (!parsed || curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
      curl_easy_setopt(easy, CURLOPT_CURLU, nullptr);
      curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
      return;
    }
    slot->url_text = url;
    // curl 7.88 names the transfer (redirects, CURLINFO_EFFECTIVE_URL) by the URL text of the handle's previous
    // transfer unless CURLOPT_URL is cleared; later versions clear it when CURLOPT_CURLU is set.
    curl_easy_setopt(easy, CURLOPT_URL, nullptr);
  }
  curl_easy_setopt(easy, CURLOPT_CURLU, slot->url);  // again after curl_easy_reset, which forgets it
}
}  // namespace

const char* KindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk: return "ok";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kTls: return "tls";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kTooLarge: return "too_large";
    case ErrorKind::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::string CheckOptions(const RequestOptions& options) {
  if (options.method != "GET" && !IsToken(options.method)) return "invalid method \"" + options.method + "\"";
  if (HasLineBreakOrNul(options.url)) return "invalid URL: contains CR, LF or NUL";
  // Parsing a URL costs about 7k instructions (a tenth of a whole small request), and clients tend to call the
  // same few URLs again and again: remember the last ones that passed.
  static thread_local std::string good_urls[4];
  static thread_local unsigned next_good = 0;
  bool url_known = false;
  for (const std::string& u : good_urls) url_known = url_known || (!u.empty() && u == options.url);
  std::string error = url_known ? "" : CheckUrl(options.url);
  if (!error.empty()) return error;
  if (!url_known) good_urls[next_good++ % 4] = options.url;
  return CheckHeaders(options.headers);
}

std::string CheckHeaders(const Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (!IsToken(name)) return "invalid header name \"" + name + "\"";
    if (HasLineBreakOrNul(value)) return "invalid value for header \"" + name + "\": contains CR, LF or NUL";
  }
  return "";
}

namespace {

// The header lines curl sends for `headers`: those given, then our defaults unless given (User-Agent; with a
// body, no "Expect: 100-continue" round trip and no form Content-Type the caller did not ask for). nullptr if
// out of memory.
curl_slist* MakeHeaderList(const Headers& headers, bool has_body) {
  curl_slist* list = nullptr;
  auto append = [&](const char* line) {
    curl_slist* next = curl_slist_append(list, line);
    if (next) list = next;
    return next != nullptr;
  };
  bool ok = true;
  for (const auto& [name, value] : headers) {
    // "Name;" is curl's spelling for a header with an empty value ("Name:" would remove it).
    ok = ok && append((value.empty() ? name + ";" : name + ": " + value).c_str());
  }
  if (!HasHeader(headers, "user-agent")) ok = ok && append(kUserAgent);
  if (has_body && !HasHeader(headers, "expect")) ok = ok && append("Expect:");
  if (has_body && !HasHeader(headers, "content-type")) ok = ok && append("Content-Type:");
  if (ok) return list;
  curl_slist_free_all(list);
  return nullptr;
}

}  // namespace

HeaderSet::~HeaderSet() {
  for (void* list : lists_) {
    if (list) curl_slist_free_all(static_cast<curl_slist*>(list));
  }
}

void* HeaderSet::List(bool has_body) const {
  void*& list = lists_[has_body ? 1 : 0];
  if (!list) list = MakeHeaderList(headers_, has_body);
  return list;
}


// Callbacks given to curl. They run only inside curl_multi_socket_action / curl_easy_pause, which Multi calls
// from libuv callbacks with in_curl_ set. noexcept: a throwing user callback terminates rather than unwinding
// through C frames. Their data pointer is the EasySlot, whose request is the current Request.
struct Request::Glue {
  static size_t Header(char* data, size_t size, size_t n, void* slot) noexcept {
    return static_cast<EasySlot*>(slot)->request->OnHeaderLine(data, size * n);
  }
  static size_t Write(char* data, size_t size, size_t n, void* slot) noexcept {
    return static_cast<EasySlot*>(slot)->request->OnBody(data, size * n);
  }
  static size_t Read(char* buf, size_t size, size_t n, void* slot) noexcept {
    return static_cast<EasySlot*>(slot)->request->OnReadBody(buf, size * n);
  }
};

void Request::SetCallbacks(EasySlot* slot) {
  auto* easy = static_cast<CURL*>(slot->handle);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Glue::Header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, slot);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Glue::Write);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, slot);
}

Request::Request(Multi* multi, RequestOptions options, RequestCallbacks callbacks)
    : multi_(multi), options_(std::move(options)), callbacks_(std::move(callbacks)) {}

Request::~Request() {
  // The Multi has removed the easy handle from the multi (curl_multi_remove_handle) before deleting us, and is
  // still alive (it deletes Requests only from its own methods and destructor).
  if (slot_) multi_->ReturnEasy(slot_, kind_ != EasySlot::State::kDirty && completed_ok_);
  curl_slist_free_all(static_cast<curl_slist*>(header_list_));
}

bool Request::Setup(std::string* error) {
  const RequestOptions& o = options_;
  const bool is_get = o.method == "GET";
  const bool has_body = o.body_source || !o.body.empty() || o.method == "POST" || o.method == "PUT" ||
                        o.method == "PATCH";
  // A plain GET, or a POST of a string, leaves the handle reusable as it is: the next request of the same kind
  // sets only the URL, its body and what differs.
  if (is_get && !has_body && o.follow_redirects) kind_ = EasySlot::State::kGet;
  else if (o.method == "POST" && !o.body_source) kind_ = EasySlot::State::kPost;
  EasySlot* slot = multi_->TakeEasy(kind_);
  if (!slot) {
    *error = "curl_easy_init failed";
    return false;
  }
  slot_ = slot;
  slot->request = this;
  slot->error_buffer[0] = '\0';  // curl does not clear it between transfers
  auto* easy = static_cast<CURL*>(slot->handle);
  ApplyUrl(slot, o.url);
  // For https, wait for a connection being set up rather than opening a second one, so h2 streams share it.
  bool pipewait = o.url.size() > 5 && EqualsNoCase(std::string_view(o.url).substr(0, 6), "https:");
  if (pipewait != slot->pipewait) {
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, pipewait ? 1L : 0L);
    slot->pipewait = pipewait;
  }
  if (o.timeout_ms != slot->timeout_ms) {
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, o.timeout_ms > 0 ? o.timeout_ms : 0L);
    slot->timeout_ms = o.timeout_ms;
  }
  if (o.connect_timeout_ms != slot->connect_timeout_ms) {
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms > 0 ? o.connect_timeout_ms : 0L);
    slot->connect_timeout_ms = o.connect_timeout_ms;
  }
  // Fails early (CURLE_FILESIZE_EXCEEDED) when Content-Length says so; OnBody counts for chunked replies.
  int64_t max_body = o.max_body >= 0 ? o.max_body : -1;
  if (max_body != slot->max_body) {
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_body >= 0 ? max_body : 0));
    slot->max_body = max_body;
  }
  // curl allocates the buffer for each transfer (and frees it when the transfer is done), so it may differ.
  long buffer_size = o.buffer_size > 0 ? o.buffer_size : multi_->options_.buffer_size;
  if (buffer_size != slot->buffer_size) {
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, buffer_size);  // 0: curl's default
    slot->buffer_size = buffer_size;
  }
  if (o.insecure != slot->insecure) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, o.insecure ? 0L : 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, o.insecure ? 0L : 2L);
    slot->insecure = o.insecure;
  }

  if (o.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else if (has_body) {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    if (o.body_source) {
      curl_easy_setopt(easy, CURLOPT_READFUNCTION, &Glue::Read);
      curl_easy_setopt(easy, CURLOPT_READDATA, slot);
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(o.body_size));
    } else {
      // No copy: options_.body lives as long as the easy handle.
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(o.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, o.body.data());
    }
    if (o.method != "POST") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, o.method.c_str());
  } else if (!is_get) {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, o.method.c_str());
  }
  if (is_get && o.follow_redirects && !slot->follow) {
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
    slot->follow = true;
  }
  // Unless this transfer completes well and was of a reusable kind, the handle is reset before its next use.
  slot->state = kind_;

  const Headers& headers = o.header_set ? o.header_set->headers() : o.headers;
  if (headers.empty() && !has_body) {
    if (slot->header_list != multi_->agent_list()) {
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(multi_->agent_list()));
      slot->header_list = multi_->agent_list();
    }
    return true;
  }
  void* list = o.header_set ? o.header_set->List(has_body) : (header_list_ = MakeHeaderList(headers, has_body));
  if (!list) {
    *error = "out of memory";
    return false;
  }
  // The same list as the handle's last request (a header set's), or a new one at a freed one's address: either
  // way curl's pointer is right already.
  if (slot->header_list != list) {
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(list));
    slot->header_list = list;
  }
  return true;
}

void Request::Pause() {
  if (state_ == State::kActive || state_ == State::kPending) pause_wanted_ = true;
}

void Request::Resume() {
  pause_wanted_ = false;
  if (state_ == State::kActive && recv_paused_) multi_->Defer(this);
}

void Request::BodyReady() {
  body_ready_ = true;
  if (state_ == State::kActive && send_paused_) multi_->Defer(this);
}

void Request::Abort() {
  if (state_ != State::kActive && state_ != State::kPending) return;
  state_ = State::kAborted;
  multi_->Discard(this);
}

void Request::ApplyPause() {
  if (state_ != State::kActive) return;
  int mask = 0;
  if (recv_paused_) {
    if (pause_wanted_) mask |= CURLPAUSE_RECV;
    else recv_paused_ = false;  // cleared first: curl may call OnBody (and pause again) inside curl_easy_pause
  }
  if (send_paused_) {
    if (!body_ready_) mask |= CURLPAUSE_SEND;
    else send_paused_ = false;
  }
  curl_easy_pause(static_cast<CURL*>(easy()), mask);
}

void Request::DeliverHeaders() {
  headers_delivered_ = true;
  if (callbacks_.on_headers) callbacks_.on_headers(status_, headers_);
}

size_t Request::OnHeaderLine(const char* data, size_t len) {
  if (state_ != State::kActive) return 0;  // aborted from a callback: make curl stop
  if (headers_delivered_) return len;      // trailers after a chunked body are not exposed
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {      // a new header block: interim, redirect hop or final
    status_ = ParseStatus(line);
    headers_.clear();
    headers_.reserve(8);
    return len;
  }
  if (line.empty()) {                      // end of a header block
    if (status_ >= 100 && status_ < 200) return len;
    // curl follows any 3xx with a Location when FOLLOWLOCATION is on, and skips that response's body.
    bool followed = options_.follow_redirects && options_.method == "GET" && status_ >= 300 && status_ < 400 &&
                    status_ != 304 && HasHeader(headers_, "location");
    if (followed) return len;
    DeliverHeaders();
    return state_ == State::kActive ? len : 0;
  }
  if (line.front() == ' ' || line.front() == '\t') {  // obsolete line folding: continues the previous value
    if (!headers_.empty()) {
      std::string& value = headers_.back().second;
      value += ' ';
      value += Trim(line);
    }
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string name(Trim(line.substr(0, colon)));
  for (char& c : name) c = LowerAscii(c);
  std::string_view value = Trim(line.substr(colon + 1));
  auto it = std::find_if(headers_.begin(), headers_.end(), [&](const auto& h) { return h.first == name; });
  if (it == headers_.end()) {
    headers_.emplace_back(std::move(name), std::string(value));
  } else {
    it->second += ", ";
    it->second += value;
  }
  return len;
}

size_t Request::OnBody(char* data, size_t len) {
  if (state_ != State::kActive) return 0;
  if (pause_wanted_) {
    // curl keeps these bytes and hands them to us again after curl_easy_pause unpauses receiving.
    recv_paused_ = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (!headers_delivered_) {
    DeliverHeaders();
    if (state_ != State::kActive) return 0;
  }
  received_ += static_cast<int64_t>(len);
  if (options_.max_body >= 0 && received_ > options_.max_body) {
    too_large_ = true;
    return 0;  // CURLE_WRITE_ERROR, reported as too_large
  }
  if (!callbacks_.on_chunk) {
    body_.append(data, len);
    return len;
  }
  bool pause = callbacks_.on_chunk(data, len);
  if (state_ != State::kActive) return 0;
  if (pause) pause_wanted_ = true;  // takes effect with the next piece, so this one is never delivered twice
  return len;
}

size_t Request::OnReadBody(char* buf, size_t cap) {
  if (state_ != State::kActive) return CURL_READFUNC_ABORT;
  while (upload_off_ == upload_.size()) {
    if (upload_ended_) return 0;
    upload_.clear();
    upload_off_ = 0;
    body_ready_ = false;
    BodyPull pull = options_.body_source(upload_);
    if (state_ != State::kActive) return CURL_READFUNC_ABORT;
    switch (pull) {
      case BodyPull::kData:
        break;  // an empty chunk just pulls again
      case BodyPull::kEnd:
        upload_.clear();
        upload_ended_ = true;
        return 0;
      case BodyPull::kWait:
        upload_.clear();
        if (body_ready_) break;  // BodyReady() was called inside the source: pull again now
        send_paused_ = true;
        return CURL_READFUNC_PAUSE;
      case BodyPull::kFail:
        source_failed_ = true;
        source_error_ = upload_.empty() ? std::string("body source failed") : upload_;
        upload_.clear();
        return CURL_READFUNC_ABORT;
    }
  }
  size_t n = std::min(cap, upload_.size() - upload_off_);
  std::memcpy(buf, upload_.data() + upload_off_, n);
  upload_off_ += n;
  return n;
}

void Request::Complete(int curl_code) {
  auto code = static_cast<CURLcode>(curl_code);
  Result result;
  if (too_large_) {
    result.kind = ErrorKind::kTooLarge;
  } else if (source_failed_) {
    result.kind = ErrorKind::kCancelled;
  } else {
    result.kind = Classify(code);
  }
  if (result.kind == ErrorKind::kOk) {
    if (!headers_delivered_) DeliverHeaders();
  } else if (result.kind == ErrorKind::kTooLarge) {
    result.message = "response body exceeds max_body (" + std::to_string(options_.max_body) + " bytes)";
  } else if (source_failed_) {
    result.message = "request body: " + source_error_;
  } else {
    result.message = slot_->error_buffer[0] ? slot_->error_buffer : curl_easy_strerror(code);
  }
  result.status = headers_delivered_ ? status_ : 0;
  result.headers = std::move(headers_);
  result.body = std::move(body_);
  completed_ok_ = code == CURLE_OK && !too_large_ && !source_failed_;
  char* url = nullptr;
  if (curl_easy_getinfo(static_cast<CURL*>(easy()), CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url) {
    if (options_.url == url) result.url = std::move(options_.url);  // no redirect: no copy
    else result.url = url;
  }
  if (callbacks_.on_done) callbacks_.on_done(std::move(result));
}

}  // namespace luasync::http
