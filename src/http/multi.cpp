// curl multi <-> libuv, in the shape of curl's docs/examples/multi-uv.c, with three differences:
// - a 0 ms curl timeout starts a 0 ms uv timer (it runs in the next loop iteration, without sleeping); turning it
//   into 1 ms, as the example does, adds about a millisecond to every request's time to first byte;
// - curl is never called from inside a curl callback: user requests made there (Abort, Resume, Start) are queued
//   and applied right after the curl call returns (AfterCurl) or from an idle callback (Defer);
// - completed transfers are finished (on_done) only from libuv callbacks, never inside a user's call.
#include "http/multi.h"

#include <curl/curl.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace luasync::http {

// One per file descriptor curl has asked us to watch (or opened a connection on). Owned by the Multi (by_fd_)
// until CloseSocket hands it to uv_close, whose callback deletes it.
//
// When curl stops watching a socket (CURL_POLL_REMOVE: a kept-alive connection goes back to the cache after
// each request) the context stays and serves the socket again when the next request picks the connection up.
// Closing and re-creating the handle instead cost an ioctl and about four epoll_ctl calls per request. The
// context goes when curl closes the socket (CURLOPT_CLOSESOCKETFUNCTION): libuv's uv_poll_stop removes the fd
// from epoll, so a context must never outlive its socket, or stopping it later could unregister another handle
// that got the same fd number.
//
// A connection socket's handle even stays started while idle: the next request on it mostly wants the same
// events, and each uv_poll_stop or uv_poll_start costs an epoll_ctl (three system calls per keep-alive request,
// one of them between the response's last byte and Lua). If the idle connection becomes readable (the server
// closed it), the first event stops the handle; curl checks the connection before reusing it. Only sockets curl
// opened for connections (Glue::SockOpt) stay started, unreferenced (an idle connection does not keep the loop
// running): curl closes those through Glue::CloseSocket. Others (the threaded resolver's wake-up pipe) are closed
// without a word, so they are stopped as soon as curl lets go.
struct Multi::SocketContext {
  uv_poll_t poll;
  Multi* multi;
  curl_socket_t fd;
  int events = 0;           // UV_READABLE/UV_WRITABLE the handle is started with; 0 when stopped
  bool watched = false;     // curl knows it (socketp); else idle, waiting for its fd number to come back
  bool connection = false;  // opened by curl for a connection: closed through Glue::CloseSocket
};

namespace {

constexpr size_t kMinSpare = 64;         // spare easy handles kept in any case
constexpr uint64_t kPeakWindowMs = 30000;  // how long a peak of concurrent requests sizes the spare pool

template <typename T>
void EraseValue(std::vector<T>& v, const T& value) {
  v.erase(std::remove(v.begin(), v.end(), value), v.end());
}

// curl looks for a proxy in the environment on every transfer (five getenv calls, ~1.6k instructions of a small
// GET). These are the variables it reads for http and https URLs (an empty one counts as unset).
bool ProxyInEnvironment() {
  for (const char* name : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value && *value) return true;
  }
  return false;
}

// Frees a spare easy handle, then the CURLU it pointed at.
void DestroySlot(EasySlot* slot) {
  curl_easy_cleanup(static_cast<CURL*>(slot->handle));
  curl_url_cleanup(static_cast<CURLU*>(slot->url));
  delete slot;
}

}  // namespace

void InitCurl() {
  // Lazily, on the first Multi (or a preload thread, see curl_preload.h): curl_global_init loads TLS
  // libraries, which costs startup time.
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  });
}

struct Multi::Glue {
  // The context for fd (created, not started, if there is none); nullptr if libuv refuses the fd.
  static SocketContext* ContextFor(Multi* m, curl_socket_t fd) {
    size_t slot = static_cast<size_t>(fd);
    if (slot >= m->by_fd_.size()) m->by_fd_.resize(slot + 1, nullptr);
    SocketContext* context = m->by_fd_[slot];
    if (context) return context;
    context = new SocketContext;
    context->multi = m;
    context->fd = fd;
    if (uv_poll_init_socket(m->loop_, &context->poll, fd) != 0) {
      delete context;  // libuv: not initialised, nothing to close
      return nullptr;
    }
    context->poll.data = context;
    m->by_fd_[slot] = context;
    return context;
  }

  static void Watch(SocketContext* context, int events) {
    if (events == context->events) return;  // started with these already: no epoll_ctl
    if (events) uv_poll_start(&context->poll, events, &Glue::Poll);
    else uv_poll_stop(&context->poll);
    context->events = events;
  }

  // CURLMOPT_SOCKETFUNCTION: runs inside curl calls; only (un)registers uv_poll handles.
  static int Socket(CURL*, curl_socket_t fd, int what, void* self, void* socketp) noexcept {
    auto* m = static_cast<Multi*>(self);
    auto* context = static_cast<SocketContext*>(socketp);
    if (what == CURL_POLL_REMOVE) {
      if (context) {  // curl forgets socketp together with the socket
        context->watched = false;
        if (context->connection) uv_unref(reinterpret_cast<uv_handle_t*>(&context->poll));  // idle: not a reason to run
        else Watch(context, 0);  // before curl may close the fd
      }
      return 0;
    }
    if (!context) {
      if (fd < 0 || !(context = ContextFor(m, fd))) return -1;
      context->watched = true;
      uv_ref(reinterpret_cast<uv_handle_t*>(&context->poll));
      curl_multi_assign(static_cast<CURLM*>(m->multi_), fd, context);
    }
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    Watch(context, events);
    return 0;
  }

  // CURLOPT_SOCKOPTFUNCTION: curl made a socket for a connection (see SocketContext).
  static int SockOpt(void* self, curl_socket_t fd, curlsocktype purpose) noexcept {
    if (purpose != CURLSOCKTYPE_IPCXN || fd < 0) return CURL_SOCKOPT_OK;
    SocketContext* context = ContextFor(static_cast<Multi*>(self), fd);
    if (!context) return CURL_SOCKOPT_ERROR;
    // A context found here belonged to an earlier socket with this number, closed since without our callback
    // (curl told us to stop watching it first, so this stop is a no-op unless that changes).
    Watch(context, 0);
    context->watched = false;
    context->connection = true;
    return CURL_SOCKOPT_OK;
  }

  // CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "as soon as possible" and is kept as 0.
  static int Timer(CURLM*, long timeout_ms, void* self) noexcept {
    auto* m = static_cast<Multi*>(self);
    if (timeout_ms < 0) uv_timer_stop(m->timer_);
    else uv_timer_start(m->timer_, &Glue::TimerFired, static_cast<uint64_t>(timeout_ms), 0);
    return 0;
  }

  static void Poll(uv_poll_t* poll, int status, int events) noexcept {
    auto* context = static_cast<SocketContext*>(poll->data);
    if (!context->watched) {  // an idle kept-alive connection got data or was closed: curl checks it on reuse
      Watch(context, 0);
      return;
    }
    int flags = 0;
    if (status < 0) {
      flags = CURL_CSELECT_ERR;
    } else {
      if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
      if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    Multi* m = context->multi;
    m->SocketAction(context->fd, flags);  // may close (not yet free) this context
    if (m->after_fn_) m->after_fn_(m->after_arg_, true);
  }

  static void TimerFired(uv_timer_t* timer) noexcept {
    auto* m = static_cast<Multi*>(timer->data);
    m->SocketAction(CURL_SOCKET_TIMEOUT, 0);
    if (m->after_fn_) m->after_fn_(m->after_arg_, false);
  }

  static void Idle(uv_idle_t* idle) noexcept { static_cast<Multi*>(idle->data)->RunDeferred(); }

  // CURLOPT_CLOSESOCKETFUNCTION: curl has already told us to stop watching (Curl_multi_closed runs first).
  static int CloseSocket(void* self, curl_socket_t fd) noexcept {
    auto* m = static_cast<Multi*>(self);
    if (fd >= 0 && static_cast<size_t>(fd) < m->by_fd_.size()) {
      if (SocketContext* context = m->by_fd_[static_cast<size_t>(fd)]) m->CloseSocket(context);  // while fd is open
    }
    return close(fd);
  }

  static void SocketClosed(uv_handle_t* handle) noexcept { delete static_cast<SocketContext*>(handle->data); }
  static void TimerClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_timer_t*>(handle); }
  static void IdleClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_idle_t*>(handle); }
};

Multi::Multi(uv_loop_s* loop, const Options& options) : loop_(loop), options_(options) {
  InitCurl();
  CURLM* multi = curl_multi_init();
  if (!multi) throw std::runtime_error("curl_multi_init failed");
  multi_ = multi;
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Glue::Socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Glue::Timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_host_connections);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_total_connections);
  proxy_env_ = ProxyInEnvironment();
  agent_list_ = curl_slist_append(nullptr, kUserAgent);
  if (!agent_list_) throw std::runtime_error("out of memory");
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  idle_ = new uv_idle_t;
  uv_idle_init(loop, idle_);
  idle_->data = this;
}

Multi::~Multi() {
  assert(!in_curl_ && dispatching_ == 0 && "a Multi must not be destroyed from inside its callbacks");
  while (Request* request = requests_) {
    if (request->in_multi_) curl_multi_remove_handle(static_cast<CURLM*>(multi_), request->easy());
    request->in_multi_ = false;
    request->state_ = Request::State::kAborted;
    Unlink(request);
    delete request;  // no callbacks; its easy handle comes back to spare_easy_
  }
  pending_add_.clear();
  reap_.clear();
  deferred_.clear();
  for (EasySlot* slot : spare_easy_) {
    DestroySlot(slot);
  }
  spare_easy_.clear();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));  // closes cached connections; may still call Glue::Socket
  curl_slist_free_all(static_cast<curl_slist*>(agent_list_));  // after the last easy handle that used it
  for (SocketContext* context : by_fd_) {
    if (context) CloseSocket(context);
  }
  by_fd_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), &Glue::TimerClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(idle_), &Glue::IdleClosed);
}

Request* Multi::Start(RequestOptions options, RequestCallbacks callbacks, std::string* error) {
  std::string why = CheckOptions(options);
  if (!why.empty()) {
    if (error) *error = std::move(why);
    return nullptr;
  }
  auto* request = new Request(this, std::move(options), std::move(callbacks));
  if (!request->Setup(error ? error : &why)) {
    delete request;
    return nullptr;
  }
  Link(request);
  if (in_curl_) {  // called from a callback: curl would refuse (CURLM_RECURSIVE_API_CALL)
    pending_add_.push_back(request);
    return request;
  }
  CURLMcode rc = curl_multi_add_handle(static_cast<CURLM*>(multi_), request->easy());
  if (rc != CURLM_OK) {
    if (error) *error = curl_multi_strerror(rc);
    Unlink(request);
    delete request;
    return nullptr;
  }
  request->in_multi_ = true;
  request->state_ = Request::State::kActive;
  return request;
}

void Multi::SocketAction(int fd, int events) {
  int running = 0;
  in_curl_ = true;
  curl_multi_socket_action(static_cast<CURLM*>(multi_), fd, events, &running);
  in_curl_ = false;
  AfterCurl();
}

void Multi::AfterCurl() {
  // Reap first: curl_multi_remove_handle also drops the transfer's queued CURLMSG_DONE, so an aborted
  // Request is never completed.
  while (!reap_.empty()) {
    Request* request = reap_.back();
    reap_.pop_back();
    Free(request);
  }
  while (!pending_add_.empty()) {
    Request* request = pending_add_.front();
    pending_add_.erase(pending_add_.begin());
    if (curl_multi_add_handle(static_cast<CURLM*>(multi_), request->easy()) == CURLM_OK) {
      request->in_multi_ = true;
      request->state_ = Request::State::kActive;
    } else {
      request->state_ = Request::State::kDone;
      ++dispatching_;
      request->Complete(CURLE_OUT_OF_MEMORY);
      --dispatching_;
      Free(request);
    }
  }
  FinishCompleted();
}

void Multi::FinishCompleted() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(static_cast<CURLM*>(multi_), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    CURLcode code = msg->data.result;  // msg is invalid after the next curl call
    EasySlot* slot = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&slot));
    Request* request = slot->request;
    curl_multi_remove_handle(static_cast<CURLM*>(multi_), easy);
    request->in_multi_ = false;
    request->state_ = Request::State::kDone;  // Abort() is a no-op from here on
    ++dispatching_;
    request->Complete(code);  // on_done may Start, Abort others, Pause/Resume others
    --dispatching_;
    Free(request);
  }
}

void Multi::Discard(Request* request) {
  if (in_curl_) {
    reap_.push_back(request);  // curl may still hold pointers into it until the current call returns
    return;
  }
  Free(request);
}

void Multi::Free(Request* request) {
  if (request->in_multi_) curl_multi_remove_handle(static_cast<CURLM*>(multi_), request->easy());
  request->in_multi_ = false;
  if (!pending_add_.empty()) EraseValue(pending_add_, request);
  if (request->deferred_) EraseValue(deferred_, request);
  Unlink(request);
  delete request;  // ~Request: ReturnEasy
}

void Multi::Link(Request* request) {
  request->prev_ = nullptr;
  request->next_ = requests_;
  if (requests_) requests_->prev_ = request;
  requests_ = request;
  ++active_;
  // The spare pool keeps as many easy handles as the highest number of requests in flight lately (the last
  // kPeakWindowMs): a burst of N completions followed by N new requests then creates no handle.
  uint64_t now = uv_now(loop_);
  if (active_ >= peak_) {
    peak_ = active_;
    peak_at_ = now;
  } else if (now - peak_at_ > kPeakWindowMs) {
    peak_ = active_;
    peak_at_ = now;
    while (spare_easy_.size() > std::max(kMinSpare, peak_)) {
      EasySlot* slot = spare_easy_.back();
      spare_easy_.pop_back();
      DestroySlot(slot);
    }
  }
  // curl's connection cache holds 4 connections per easy handle added at the time a connection comes back.
  // Finished transfers leave the multi before the next ones are added (those come from Lua, later in the loop
  // iteration), so under a steady load of N that count dips and curl closed connections it needed again a
  // moment later (911 connects for 5,000 GETs at 256 in flight). Size the cache for the peak instead.
  if (active_ * 4 > max_connects_ && !in_curl_) {  // (curl refuses setopt from inside its callbacks)
    if (curl_multi_setopt(static_cast<CURLM*>(multi_), CURLMOPT_MAXCONNECTS, static_cast<long>(active_ * 8)) ==
        CURLM_OK) {
      max_connects_ = active_ * 8;
    }
  }
}

void Multi::Unlink(Request* request) {
  if (request->prev_) request->prev_->next_ = request->next_;
  else requests_ = request->next_;
  if (request->next_) request->next_->prev_ = request->prev_;
  request->prev_ = request->next_ = nullptr;
  --active_;
}

void Multi::Defer(Request* request) {
  if (request->deferred_) return;
  request->deferred_ = true;
  deferred_.push_back(request);
  uv_idle_start(idle_, &Glue::Idle);
}

void Multi::RunDeferred() {
  // Only the entries queued so far: a callback that re-queues its own Request waits for the next iteration.
  for (size_t n = deferred_.size(); n > 0 && !deferred_.empty(); --n) {
    Request* request = deferred_.front();
    deferred_.erase(deferred_.begin());
    request->deferred_ = false;
    in_curl_ = true;
    request->ApplyPause();  // curl may deliver held data (on_chunk) right here
    in_curl_ = false;
    AfterCurl();
  }
  if (deferred_.empty()) uv_idle_stop(idle_);
}

EasySlot* Multi::TakeEasy(EasySlot::State kind) {
  if (spare_easy_.empty()) {
    CURL* easy = curl_easy_init();
    if (!easy) return nullptr;
    auto* slot = new EasySlot;
    slot->handle = easy;
    SetBase(slot);
    return slot;
  }
  EasySlot* slot = spare_easy_.back();
  spare_easy_.pop_back();
  if (slot->state != EasySlot::State::kFresh && (slot->state != kind || kind == EasySlot::State::kDirty)) {
    curl_easy_reset(static_cast<CURL*>(slot->handle));  // all options back to defaults; caches stay with the multi
    SetBase(slot);
  }
  return slot;
}

void Multi::SetBase(EasySlot* slot) {
  auto* easy = static_cast<CURL*>(slot->handle);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, slot);
  Request::SetCallbacks(slot);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &Glue::CloseSocket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, &Glue::SockOpt);
  curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, this);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  static_assert(sizeof(slot->error_buffer) >= CURL_ERROR_SIZE, "CURLOPT_ERRORBUFFER needs CURL_ERROR_SIZE bytes");
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, slot->error_buffer);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // every decoder this libcurl has (gzip, deflate, ...)
  curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  if (options_.buffer_size > 0) curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, options_.buffer_size);
  if (!proxy_env_) {  // no proxy variable when the Multi was made: say so once instead of curl reading them again
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "");
  }
  slot->state = EasySlot::State::kFresh;
  slot->timeout_ms = 0;
  slot->connect_timeout_ms = 0;
  slot->max_body = -1;
  slot->insecure = false;
  slot->pipewait = false;
  slot->header_list = nullptr;
  slot->follow = false;
}

void Multi::ReturnEasy(EasySlot* slot, bool reusable) {
  slot->request = nullptr;
  if (!reusable) slot->state = EasySlot::State::kDirty;
  if (spare_easy_.size() < std::max(kMinSpare, peak_)) {
    spare_easy_.push_back(slot);
    return;
  }
  DestroySlot(slot);
}

void Multi::CloseSocket(SocketContext* context) {
  by_fd_[static_cast<size_t>(context->fd)] = nullptr;
  uv_poll_stop(&context->poll);  // before curl closes the fd, so epoll never sees a stale registration
  context->events = 0;
  uv_close(reinterpret_cast<uv_handle_t*>(&context->poll), &Glue::SocketClosed);
}

}  // namespace luasync::http
