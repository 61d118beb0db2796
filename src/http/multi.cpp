// curl multi <-> libuv, in the shape of curl's docs/examples/multi-uv.c, with three differences:
// - a 0 ms curl timeout starts a 0 ms uv timer (it runs in the next loop iteration, without sleeping); turning it
//   into 1 ms, as the example does, adds about a millisecond to every request's time to first byte;
// - curl is never called from inside a curl callback: user requests made there (Abort, Resume, Start) are queued
//   and applied right after the curl call returns (AfterCurl) or from an idle callback (Defer);
// - completed transfers are finished (on_done) only from libuv callbacks, never inside a user's call.
#include "http/multi.h"

#include <curl/curl.h>
#include <uv.h>

#include <algorithm>
#include <cassert>
#include <mutex>
#include <stdexcept>

namespace luasync::http {

// One per socket curl asks us to watch. Owned by the Multi (sockets_) until CloseSocket hands it to uv_close,
// whose callback deletes it.
struct Multi::SocketContext {
  uv_poll_t poll;
  Multi* multi;
  curl_socket_t fd;
};

namespace {

constexpr size_t kMaxSpareEasy = 64;

template <typename T>
void EraseValue(std::vector<T>& v, const T& value) {
  v.erase(std::remove(v.begin(), v.end(), value), v.end());
}

void InitCurlOnce() {
  // Lazily, on the first Multi: curl_global_init loads TLS libraries, which costs startup time.
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  });
}

}  // namespace

struct Multi::Glue {
  // CURLMOPT_SOCKETFUNCTION: runs inside curl calls; only (un)registers uv_poll handles.
  static int Socket(CURL*, curl_socket_t fd, int what, void* self, void* socketp) noexcept {
    auto* m = static_cast<Multi*>(self);
    auto* context = static_cast<SocketContext*>(socketp);
    if (what == CURL_POLL_REMOVE) {
      if (context) m->CloseSocket(context);  // curl forgets socketp together with the socket
      return 0;
    }
    if (!context) {
      context = new SocketContext;
      context->multi = m;
      context->fd = fd;
      if (uv_poll_init_socket(m->loop_, &context->poll, fd) != 0) {
        delete context;  // libuv: not initialised, nothing to close
        return -1;
      }
      context->poll.data = context;
      m->sockets_.insert(context);
      curl_multi_assign(static_cast<CURLM*>(m->multi_), fd, context);
    }
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    if (events) uv_poll_start(&context->poll, events, &Glue::Poll);
    else uv_poll_stop(&context->poll);
    return 0;
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
    int flags = 0;
    if (status < 0) {
      flags = CURL_CSELECT_ERR;
    } else {
      if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
      if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    context->multi->SocketAction(context->fd, flags);  // may close (not yet free) this context
  }

  static void TimerFired(uv_timer_t* timer) noexcept {
    static_cast<Multi*>(timer->data)->SocketAction(CURL_SOCKET_TIMEOUT, 0);
  }

  static void Idle(uv_idle_t* idle) noexcept { static_cast<Multi*>(idle->data)->RunDeferred(); }

  static void SocketClosed(uv_handle_t* handle) noexcept { delete static_cast<SocketContext*>(handle->data); }
  static void TimerClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_timer_t*>(handle); }
  static void IdleClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_idle_t*>(handle); }
};

Multi::Multi(uv_loop_s* loop, const Options& options) : loop_(loop), options_(options) {
  InitCurlOnce();
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
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  idle_ = new uv_idle_t;
  uv_idle_init(loop, idle_);
  idle_->data = this;
}

Multi::~Multi() {
  assert(!in_curl_ && dispatching_ == 0 && "a Multi must not be destroyed from inside its callbacks");
  for (auto& request : requests_) {
    if (request->in_multi_) curl_multi_remove_handle(static_cast<CURLM*>(multi_), request->easy_);
    request->in_multi_ = false;
    request->state_ = Request::State::kAborted;
  }
  requests_.clear();  // no callbacks; their easy handles come back to spare_easy_
  pending_add_.clear();
  reap_.clear();
  deferred_.clear();
  for (void* easy : spare_easy_) curl_easy_cleanup(static_cast<CURL*>(easy));
  spare_easy_.clear();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));  // closes cached connections; may still call Glue::Socket
  while (!sockets_.empty()) CloseSocket(*sockets_.begin());
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), &Glue::TimerClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(idle_), &Glue::IdleClosed);
}

Request* Multi::Start(RequestOptions options, RequestCallbacks callbacks, std::string* error) {
  std::string why = CheckOptions(options);
  if (!why.empty()) {
    if (error) *error = std::move(why);
    return nullptr;
  }
  std::unique_ptr<Request> owned(new Request(this, std::move(options), std::move(callbacks)));
  Request* request = owned.get();
  if (!request->Setup(error ? error : &why)) return nullptr;
  requests_.push_front(std::move(owned));
  request->self_ = requests_.begin();
  if (in_curl_) {  // called from a callback: curl would refuse (CURLM_RECURSIVE_API_CALL)
    pending_add_.push_back(request);
    return request;
  }
  CURLMcode rc = curl_multi_add_handle(static_cast<CURLM*>(multi_), request->easy_);
  if (rc != CURLM_OK) {
    if (error) *error = curl_multi_strerror(rc);
    requests_.erase(request->self_);
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
    if (curl_multi_add_handle(static_cast<CURLM*>(multi_), request->easy_) == CURLM_OK) {
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
    Request* request = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&request));
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
  if (request->in_multi_) curl_multi_remove_handle(static_cast<CURLM*>(multi_), request->easy_);
  request->in_multi_ = false;
  EraseValue(pending_add_, request);
  EraseValue(deferred_, request);
  requests_.erase(request->self_);  // ~Request: curl_easy_cleanup
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

void* Multi::TakeEasy() {
  if (spare_easy_.empty()) return curl_easy_init();
  void* easy = spare_easy_.back();
  spare_easy_.pop_back();
  curl_easy_reset(static_cast<CURL*>(easy));  // all options back to defaults; caches stay with the multi
  return easy;
}

void Multi::ReturnEasy(void* easy) {
  if (spare_easy_.size() < kMaxSpareEasy) spare_easy_.push_back(easy);
  else curl_easy_cleanup(static_cast<CURL*>(easy));
}

void Multi::CloseSocket(SocketContext* context) {
  sockets_.erase(context);
  uv_poll_stop(&context->poll);  // before curl closes the fd, so epoll never sees a stale registration
  uv_close(reinterpret_cast<uv_handle_t*>(&context->poll), &Glue::SocketClosed);
}

}  // namespace luasync::http
