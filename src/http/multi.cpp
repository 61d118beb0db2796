// curl multi <-> libuv, in the shape of curl's docs/examples/multi-uv.c, with three differences:
// - a 0 ms curl timeout starts a 0 ms uv timer (it runs in the next loop iteration, without sleeping); turning it
//   into 1 ms, as the example does, adds about a millisecond to every request's time to first byte;
// - curl is never called from inside a curl callback: user requests made there (Abort, Resume, Start) are queued
//   and applied right after the curl call returns (AfterCurl) or from an idle callback (Defer);
// - completed transfers are finished (on_done) only from libuv callbacks, never inside a user's call.
#include "http/multi.h"

#include <curl/curl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace luasync::http {

// Sockets are watched in an epoll set of the Multi's own (epfd_), which the loop watches with one uv_poll_t:
// libuv's uv_poll_t per socket cost an ioctl and two epoll_ctl to create, and an epoll_ctl for every start, stop
// and change of events (uv_poll_start unregisters the fd first), seven system calls per connection in all. Here a
// connection costs three: EPOLL_CTL_ADD when curl first wants it, EPOLL_CTL_MOD when it turns from writing the
// request to reading the response, EPOLL_CTL_DEL before curl closes it.
//
// One SocketContext per file descriptor curl has asked us to watch (or opened a connection on), owned by the Multi
// (by_fd_) until curl closes the socket. When curl stops watching a socket (CURL_POLL_REMOVE: a kept-alive
// connection goes back to the cache after each request) the context stays, still registered, and serves the
// socket again when the next request picks the connection up: that request mostly wants the same events and
// costs no system call. If the idle connection becomes readable (the server closed it), the first event
// unregisters it; curl checks the connection before reusing it. An idle connection does not keep the loop running
// (the loop's poll handle is referenced only while curl watches some socket). Only sockets curl opened for
// connections (Glue::SockOpt) stay registered: curl closes those through Glue::CloseSocket. Others (the threaded
// resolver's wake-up pipe) are closed without a word, so they are unregistered as soon as curl lets go.
//
// An event carries its socket's fd and the context's generation: the context of a socket closed while a batch of
// events is dispatched is gone, and a socket opened meanwhile may have the same fd number.
struct Multi::SocketContext {
  curl_socket_t fd;
  uint32_t generation = 0;
  uint32_t events = 0;      // EPOLLIN/EPOLLOUT the fd is registered with in epfd_; 0 when not registered
  bool watched = false;     // curl knows it (socketp); else idle, waiting for its fd number to come back
  bool connection = false;  // opened by curl for a connection: closed through Glue::CloseSocket
  SocketContext* prev = nullptr;  // the Multi's list of registered contexts (events != 0)
  SocketContext* next = nullptr;
};

namespace {

constexpr size_t kMinSpare = 64;         // spare easy handles kept in any case
constexpr int kMaxEvents = 256;          // ready sockets taken per wake-up (more wake the loop again at once)
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
  // The context for fd (created, not registered, if there is none).
  static SocketContext* ContextFor(Multi* m, curl_socket_t fd) {
    size_t slot = static_cast<size_t>(fd);
    if (slot >= m->by_fd_.size()) m->by_fd_.resize(slot + 1, nullptr);
    SocketContext* context = m->by_fd_[slot];
    if (context) return context;
    context = new SocketContext;
    context->fd = fd;
    context->generation = ++m->generation_;
    m->by_fd_[slot] = context;
    return context;
  }

  // Registers the context's fd in epfd_ for `events` (0: unregisters it). False if epoll refused.
  static bool Watch(Multi* m, SocketContext* context, uint32_t events) {
    if (events == context->events) return true;  // registered with these already: no system call
    int rc = 0;
    if (events == 0) {
      epoll_ctl(m->epfd_, EPOLL_CTL_DEL, context->fd, nullptr);  // ENOENT: the kernel dropped it at a close
    } else {
      epoll_event ev{};
      ev.events = events;
      ev.data.u64 = (static_cast<uint64_t>(context->generation) << 32) | static_cast<uint32_t>(context->fd);
      int op = context->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
      rc = epoll_ctl(m->epfd_, op, context->fd, &ev);
      if (rc != 0 && errno == (op == EPOLL_CTL_MOD ? ENOENT : EEXIST)) {  // the fd's number was closed, or reused
        rc = epoll_ctl(m->epfd_, op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, context->fd, &ev);
      }
      if (rc != 0) events = 0;
    }
    if (!context->events != !events) {  // joins or leaves the list of registered contexts
      if (events) {
        context->prev = nullptr;
        context->next = m->registered_;
        if (m->registered_) m->registered_->prev = context;
        m->registered_ = context;
        ++m->registered_count_;
      } else {
        if (context->prev) context->prev->next = context->next;
        else m->registered_ = context->next;
        if (context->next) context->next->prev = context->prev;
        context->prev = context->next = nullptr;
        --m->registered_count_;
      }
    }
    context->events = events;
    return rc == 0;
  }

  // Counts a socket curl watches; the loop's poll handle is referenced while there is one.
  static void SetWatched(Multi* m, SocketContext* context, bool watched) {
    if (context->watched == watched) return;
    context->watched = watched;
    auto* handle = reinterpret_cast<uv_handle_t*>(m->poll_);
    if (watched) {
      if (m->watched_++ == 0) uv_ref(handle);
    } else if (--m->watched_ == 0) {
      uv_unref(handle);
    }
  }

  // CURLMOPT_SOCKETFUNCTION: runs inside curl calls; only (un)registers sockets.
  static int Socket(CURL*, curl_socket_t fd, int what, void* self, void* socketp) noexcept {
    auto* m = static_cast<Multi*>(self);
    auto* context = static_cast<SocketContext*>(socketp);
    if (what == CURL_POLL_REMOVE) {
      if (context) {  // curl forgets socketp together with the socket
        SetWatched(m, context, false);
        if (!context->connection) Watch(m, context, 0);  // before curl may close the fd
      }
      return 0;
    }
    if (!context) {
      if (fd < 0) return -1;
      context = ContextFor(m, fd);
      SetWatched(m, context, true);
      curl_multi_assign(static_cast<CURLM*>(m->multi_), fd, context);
    }
    uint32_t events = 0;
    if (what & CURL_POLL_IN) events |= EPOLLIN;
    if (what & CURL_POLL_OUT) events |= EPOLLOUT;
    return Watch(m, context, events) ? 0 : -1;
  }

  // CURLOPT_SOCKOPTFUNCTION: curl made a socket for a connection (see SocketContext).
  static int SockOpt(void* self, curl_socket_t fd, curlsocktype purpose) noexcept {
    if (purpose != CURLSOCKTYPE_IPCXN || fd < 0) return CURL_SOCKOPT_OK;
    auto* m = static_cast<Multi*>(self);
    SocketContext* context = ContextFor(m, fd);
    // A context found here belonged to an earlier socket with this number, closed since without our callback
    // (curl told us to stop watching it first, so this is a no-op unless that changes).
    Watch(m, context, 0);
    SetWatched(m, context, false);
    context->generation = ++m->generation_;
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

  // The loop found epfd_ readable: hand each ready socket to curl, in the order epoll lists them.
  static void Poll(uv_poll_t* poll, int, int) noexcept {
    auto* m = static_cast<Multi*>(poll->data);
    if (m->spin_prepare_ && SpinPolicy::Concerns(m->active_)) m->spin_.Arrived(uv_hrtime());
    PollReady(m);
    m->MarkActivity();
  }

  static void PollReady(Multi* m) {
    // One socket registered, waiting to read (one request waiting for its response): it is the ready one, and
    // curl's read finds data, the end or the error. That saves the epoll_wait below on every sequential request.
    if (m->registered_count_ == 1 && m->registered_->watched && m->registered_->events == EPOLLIN) {
      m->SocketAction(m->registered_->fd, CURL_CSELECT_IN);
      if (m->after_fn_) m->after_fn_(m->after_arg_, true);
      return;
    }
    epoll_event ready[kMaxEvents];
    int n = epoll_wait(m->epfd_, ready, kMaxEvents, 0);
    for (int i = 0; i < n; ++i) {
      auto fd = static_cast<curl_socket_t>(ready[i].data.u64 & 0xffffffffu);
      auto generation = static_cast<uint32_t>(ready[i].data.u64 >> 32);
      if (static_cast<size_t>(fd) >= m->by_fd_.size()) continue;
      SocketContext* context = m->by_fd_[static_cast<size_t>(fd)];
      if (!context || context->generation != generation || !context->events) continue;  // closed meanwhile
      if (!context->watched) {  // an idle kept-alive connection got data or was closed: curl checks it on reuse
        Watch(m, context, 0);
        continue;
      }
      // As libuv's uv_poll_t: an error is reported alone and unregisters the socket (level-triggered, it would
      // wake every iteration); a hang-up counts as the events asked for.
      uint32_t got = ready[i].events;
      int flags = 0;
      if (got & EPOLLERR) {
        flags = CURL_CSELECT_ERR;
        Watch(m, context, 0);
      } else {
        if (got & EPOLLHUP) got |= context->events;
        if (got & context->events & EPOLLIN) flags |= CURL_CSELECT_IN;
        if (got & context->events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
      }
      m->SocketAction(fd, flags);  // may close this or other sockets (their contexts are deleted)
      if (m->after_fn_) m->after_fn_(m->after_arg_, true);
    }
  }

  static void TimerFired(uv_timer_t* timer) noexcept {
    auto* m = static_cast<Multi*>(timer->data);
    m->SocketAction(CURL_SOCKET_TIMEOUT, 0);
    if (m->after_fn_) m->after_fn_(m->after_arg_, false);
    m->MarkActivity();
  }

  static void SpinPrepare(uv_prepare_t* prepare) noexcept { static_cast<Multi*>(prepare->data)->SpinDecide(); }

  // Runs once per loop iteration while the loop spins. Yielding lets a server on this CPU go first (it may be the
  // one we wait for); with the CPU to ourselves it returns at once.
  static void SpinIdle(uv_idle_t* idle) noexcept {
    ++static_cast<Multi*>(idle->data)->spin_iterations_;
    sched_yield();
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

  static void PollClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_poll_t*>(handle); }
  static void TimerClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_timer_t*>(handle); }
  static void IdleClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_idle_t*>(handle); }
  static void PrepareClosed(uv_handle_t* handle) noexcept { delete reinterpret_cast<uv_prepare_t*>(handle); }
};

Multi::Multi(uv_loop_s* loop, const Options& options)
    : loop_(loop), options_(options), spin_(std::min(options.spin_us, SpinPolicy::kMaxBudgetUs)) {
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
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    curl_slist_free_all(static_cast<curl_slist*>(agent_list_));
    curl_multi_cleanup(multi);
    throw std::runtime_error("epoll_create1 failed");
  }
  poll_ = new uv_poll_t;
  uv_poll_init(loop, poll_, epfd_);
  poll_->data = this;
  uv_poll_start(poll_, UV_READABLE, &Glue::Poll);
  uv_unref(reinterpret_cast<uv_handle_t*>(poll_));  // referenced while curl watches a socket (Glue::SetWatched)
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  idle_ = new uv_idle_t;
  uv_idle_init(loop, idle_);
  idle_->data = this;
  if (spin_.enabled()) {
    spin_prepare_ = new uv_prepare_t;
    uv_prepare_init(loop, spin_prepare_);
    spin_prepare_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(spin_prepare_));
    spin_idle_ = new uv_idle_t;
    uv_idle_init(loop, spin_idle_);
    spin_idle_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(spin_idle_));
  }
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
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), &Glue::PollClosed);  // unregisters epfd_ from the loop
  close(epfd_);
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), &Glue::TimerClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(idle_), &Glue::IdleClosed);
  if (spin_prepare_) {
    uv_close(reinterpret_cast<uv_handle_t*>(spin_prepare_), &Glue::PrepareClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(spin_idle_), &Glue::IdleClosed);
  }
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
  MarkActivity();
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
  slot->buffer_size = 0;
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

// ---------------------------------------------------------------------------
// Busy-waiting
//
// A response that comes back within microseconds (a server on this machine) reaches a loop asleep in epoll_wait:
// waking the thread, and its CPU from idle, costs more than the server took, and the code that then handles the
// response runs from cold caches. Measured on a 2-CPU VM, sequential small GETs with the server on the other CPU
// (bench/README-http.md, "Busy-waiting"): time to first byte 45 us sleeping, 38 us spinning (the C floor, which
// sleeps: 40 us). So after each event the loop polls without sleeping for a short budget, as spin_policy.h
// decides: only with a few transfers in flight, and only while recent responses came within the budget (a remote
// server's take milliseconds: after a few such waits the loop sleeps at once again).

// With more transfers in flight than the policy concerns itself with, neither marks nor scores read the clock:
// a stale mark then means no spinning until the next activity with few transfers left.
void Multi::MarkActivity() {
  if (!spin_prepare_) return;
  if (SpinPolicy::Concerns(active_)) spin_.Mark(uv_hrtime());
  if (!spin_watching_ && active_ > 0) {
    spin_watching_ = true;
    uv_prepare_start(spin_prepare_, &Glue::SpinPrepare);
  }
}

void Multi::SpinDecide() {
  bool spin = SpinPolicy::Concerns(active_) && spin_.ShouldSpin(uv_hrtime(), active_);
  if (spin != spinning_) {
    spinning_ = spin;
    if (spin) {
      ++spin_waits_;
      uv_idle_start(spin_idle_, &Glue::SpinIdle);
    } else {
      uv_idle_stop(spin_idle_);
    }
  }
  if (active_ == 0) {  // nothing to wait for: stop looking until a transfer starts
    spin_watching_ = false;
    uv_prepare_stop(spin_prepare_);
  }
}

void Multi::CloseSocket(SocketContext* context) {
  by_fd_[static_cast<size_t>(context->fd)] = nullptr;
  // Before curl closes the fd: a copy of it in a child process would otherwise keep it registered.
  Glue::Watch(this, context, 0);
  Glue::SetWatched(this, context, false);
  delete context;
}

}  // namespace luasync::http
