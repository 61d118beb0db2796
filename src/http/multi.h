// One libcurl multi handle driven by a libuv loop: curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION)
// and when to wake it (CURLMOPT_TIMERFUNCTION); we answer with curl_multi_socket_action from a uv_poll_t (on an
// epoll set holding curl's sockets) and a uv_timer_t callback. All of a runtime's transfers share one Multi, so
// connections are reused and HTTP/2 streams are multiplexed.
//
// Ownership: the Multi owns its CURLM, every Request it starts (see request.h), its easy handles (EasySlot: lent
// to a Request while it runs, kept spare between requests), an epoll set watched by one heap uv_poll_t, one heap
// uv_timer_t, one heap uv_idle_t and one SocketContext per file descriptor curl has asked us to watch (kept when
// curl stops watching, until it closes the socket: see multi.cpp). libuv handle memory is freed only in close
// callbacks, so after ~Multi the loop must run once more (uv_run) before uv_loop_close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/request.h"
#include "http/spin_policy.h"

struct uv_loop_s;
struct uv_timer_s;
struct uv_idle_s;
struct uv_poll_s;
struct uv_prepare_s;

namespace luasync::http {

/// curl_global_init, once per process, from any thread (a second caller waits for the first). Throws
/// std::runtime_error if it fails; the next call tries again.
void InitCurl();

class Multi {
 public:
  struct Options {
    long max_host_connections = 0;   ///< CURLMOPT_MAX_HOST_CONNECTIONS, 0 = unlimited
    long max_total_connections = 0;  ///< CURLMOPT_MAX_TOTAL_CONNECTIONS, 0 = unlimited
    /// CURLOPT_BUFFERSIZE of a transfer whose options do not say (RequestOptions::buffer_size), 0 = curl's
    /// 16 KiB. 64 KiB halves the CPU cost of large downloads but costs that much memory per concurrent transfer.
    long buffer_size = 0;
    /// Busy-wait budget in microseconds (spin_policy.h; multi.cpp, "Busy-waiting"): after each socket or timer
    /// event the loop polls without sleeping for up to this long while a few transfers are in flight and recent
    /// responses came within it. 0 turns busy-waiting off.
    long spin_us = 50;
  };

  /// How busy-waiting went: responses within the budget of their wait (hits) or later (misses), waits during
  /// which the loop spun, and the loop iterations it spun.
  struct SpinStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t waits = 0;
    uint64_t iterations = 0;
  };

  /// Calls curl_global_init on first use in the process (never at startup).
  explicit Multi(uv_loop_s* loop) : Multi(loop, Options{}) {}
  Multi(uv_loop_s* loop, const Options& options);
  /// Frees every in-flight Request without calling its callbacks, then the multi handle, and closes the libuv
  /// handles (their memory goes in their close callbacks). Must not run inside one of our callbacks.
  ~Multi();
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;

  /// Validates the options and starts the transfer. On invalid options (bad URL or scheme, bad method, CR/LF in a
  /// header) returns nullptr and sets *error; nothing is sent and no callback runs.
  Request* Start(RequestOptions options, RequestCallbacks callbacks, std::string* error);

  /// fn(arg, from_socket) runs at the end of each of the Multi's socket and timer callbacks, once curl has
  /// returned and completed transfers are finished: a place to act on what the callbacks recorded without
  /// waiting for a later loop phase. It may call any Multi method (it runs from a libuv callback, not inside
  /// curl). `from_socket` is true after a socket's event, false after curl's timer.
  void SetAfterCallback(void (*fn)(void*, bool from_socket), void* arg) {
    after_fn_ = fn;
    after_arg_ = arg;
  }

  /// Requests started and not yet finished or aborted.
  size_t active() const { return active_; }

  uv_loop_s* loop() const { return loop_; }

  SpinStats spin_stats() const {
    return SpinStats{spin_.hits(), spin_.misses(), spin_waits_, spin_iterations_};
  }

 private:
  friend class Request;
  struct SocketContext;

  void SocketAction(int fd, int events);     // curl_multi_socket_action plus AfterCurl()
  void AfterCurl();                          // reap aborted, add pending, then finish completed transfers
  void FinishCompleted();
  void Discard(Request* request);            // Abort(): free now, or after curl returns
  void Free(Request* request);               // remove from curl and from requests_; deletes it
  void Defer(Request* request);              // schedule request->ApplyPause() from the idle callback
  void RunDeferred();                        // the idle callback: ApplyPause() each queued Request
  void CloseSocket(SocketContext* context);
  void MarkActivity();                       // an event was handled or a transfer started: a wait begins
  void SpinDecide();                         // before each poll: sleep, or poll again at once
  // A spare easy handle, or a new one (nullptr if out of memory). Base options are in place; a slot whose last
  // request was of another reusable kind than `kind` (kGet, kPost), or of none, is reset first.
  EasySlot* TakeEasy(EasySlot::State kind);
  void ReturnEasy(EasySlot* slot, bool reusable);  // keep it for the next Request, or free it
  void SetBase(EasySlot* slot);              // the options every request has (callbacks, protocols, ...)
  void* agent_list() const { return agent_list_; }
  void Link(Request* request);               // into requests_
  void Unlink(Request* request);             // out of requests_ (does not delete)

  struct Glue;                               // the C callbacks (multi.cpp); a nested type may use our privates

  uv_loop_s* loop_;
  Options options_;
  void* multi_ = nullptr;                    // CURLM*, owned
  uv_timer_s* timer_ = nullptr;              // owned; freed in its close callback
  uv_idle_s* idle_ = nullptr;                // owned; runs only while deferred_ or reap_ work is queued
  Request* requests_ = nullptr;              // owned: intrusive list of started Requests (Request::prev_/next_)
  size_t active_ = 0;
  size_t max_connects_ = 0;                  // CURLMOPT_MAXCONNECTS as set (0: curl's default)
  size_t peak_ = 0;                          // most requests in flight since peak_at_ (sizes spare_easy_)
  uint64_t peak_at_ = 0;                     // uv_now() when peak_ was set
  std::vector<Request*> pending_add_;        // started while curl was on the stack
  std::vector<Request*> reap_;               // aborted while curl was on the stack
  std::vector<Request*> deferred_;           // waiting for ApplyPause()
  std::vector<SocketContext*> by_fd_;        // owned, indexed by fd: every socket context (see multi.cpp)
  int epfd_ = -1;                            // owned: the epoll set of curl's sockets
  uv_poll_s* poll_ = nullptr;                // owned; watches epfd_; freed in its close callback
  size_t watched_ = 0;                       // sockets curl watches (poll_ is referenced while there are any)
  SocketContext* registered_ = nullptr;      // list of the contexts registered in epfd_ (see multi.cpp)
  size_t registered_count_ = 0;
  uint32_t generation_ = 0;                  // numbers socket contexts, to tell a closed fd's events from its reuse
  // Owned: finished handles kept for reuse (a new one costs ~8k instructions, freeing it ~5k). At most
  // max(kMinSpare, peak_) are kept, so a steady load of N concurrent requests never creates handles.
  std::vector<EasySlot*> spare_easy_;
  // CURLOPT_HTTPHEADER of a request without headers of its own: just "User-Agent: luasync/VERSION". Sent as a
  // header rather than CURLOPT_USERAGENT, which curl formats with its printf on every request (~4k instructions).
  void* agent_list_ = nullptr;               // curl_slist*, owned
  bool proxy_env_ = false;                   // a proxy variable was set when the Multi was made (curl reads them)
  bool in_curl_ = false;                     // a curl_multi_* / curl_easy_pause call is on the stack
  void (*after_fn_)(void*, bool) = nullptr;  // SetAfterCallback
  void* after_arg_ = nullptr;
  int dispatching_ = 0;                      // inside on_done
  // Busy-waiting: while transfers are in flight spin_prepare_ runs before each poll and starts spin_idle_ (an
  // active idle handle keeps the poll from sleeping) while spin_ says so. Both owned (freed in their close
  // callbacks), unreferenced, null when spinning is off.
  SpinPolicy spin_;
  uv_prepare_s* spin_prepare_ = nullptr;
  uv_idle_s* spin_idle_ = nullptr;
  bool spin_watching_ = false;               // spin_prepare_ is started
  bool spinning_ = false;                    // spin_idle_ is started
  uint64_t spin_waits_ = 0;
  uint64_t spin_iterations_ = 0;
};

}  // namespace luasync::http
