#include "lua/output.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

namespace luasync {
namespace {

// Blocking write of everything; false once the reader is gone (EPIPE and friends).
bool WriteAll(int fd, const char* p, size_t n) {
  size_t off = 0;
  while (off < n) {
    ssize_t w = ::write(fd, p + off, n - off);
    if (w >= 0) {
      off += static_cast<size_t>(w);
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN) {
      // Someone else made the shared file description non-blocking: wait for room.
      pollfd pfd{fd, POLLOUT, 0};
      ::poll(&pfd, 1, -1);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

Output::~Output() {
  // Normally Detach() ran at shutdown, while the loop was still open. If not,
  // stop the thread but leave the async handle alone: its loop may be gone.
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
}

void Output::Write(const char* p, size_t n) {
  if (broken_) return;
  buf_.append(p, n);
  appended_ += n;
  if (buf_.size() < high_water_) return;
  if (!attached()) {
    Flush();
    return;
  }
  Reap(false);
  if (in_flight_ && buf_.size() >= kHardCap) Reap(true);  // bound memory: wait for the reader
  if (broken_) {
    // A script printing in a loop may not return to the loop for a long time: end now.
    if (on_written_) on_written_();
    return;
  }
  if (!in_flight_) StartJob();
}

bool Output::Flush() {
  Reap(true);
  if (!broken_ && !buf_.empty()) {
    if (!WriteAll(fd_, buf_.data(), buf_.size())) broken_ = true;
  }
  written_ += buf_.size();
  buf_.clear();
  return !broken_;
}

void Output::Kick() {
  if (!attached()) {
    Flush();
    return;
  }
  Reap(false);
  if (broken_) {
    written_ += buf_.size();
    buf_.clear();
    return;
  }
  if (in_flight_ || buf_.empty()) return;
  // A little output and room in the pipe: a write of at most PIPE_BUF bytes
  // then completes at once, so skip the thread (and never start it for a
  // script that prints a few lines).
  if (buf_.size() <= PIPE_BUF) {
    pollfd pfd{fd_, POLLOUT, 0};
    if (::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT)) {
      if (!WriteAll(fd_, buf_.data(), buf_.size())) broken_ = true;
      written_ += buf_.size();
      buf_.clear();
      return;
    }
  }
  StartJob();
}

void Output::StartJob() {
  if (!thread_.joinable()) {  // started on first use
    try {
      thread_ = std::thread([this] { ThreadMain(); });
    } catch (const std::exception&) {  // no thread to be had: write in place
      if (!WriteAll(fd_, buf_.data(), buf_.size())) broken_ = true;
      written_ += buf_.size();
      buf_.clear();
      return;
    }
  }
  inflight_.swap(buf_);
  buf_.clear();
  if (buf_.capacity() > kHardCap) std::string().swap(buf_);  // after one huge write
  in_flight_ = true;
  uv_ref(reinterpret_cast<uv_handle_t*>(async_));  // the loop waits for the write
  {
    std::lock_guard<std::mutex> lk(mu_);
    job_ = true;
    done_ = false;
  }
  cv_.notify_one();
}

void Output::Reap(bool wait) {
  if (!in_flight_) return;
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (wait) done_cv_.wait(lk, [this] { return done_; });
    if (!done_) return;
    done_ = false;
    if (failed_) broken_ = true;
  }
  in_flight_ = false;
  written_ += inflight_.size();
  inflight_.clear();
  if (async_) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  if (broken_) {
    written_ += buf_.size();
    buf_.clear();
  }
}

void Output::ThreadMain() {
  // Signals are the loop thread's business (libuv's signal pipe).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return job_ || stop_; });
    if (!job_) return;  // stop requested and nothing to write
    job_ = false;
    lk.unlock();
    bool ok = WriteAll(fd_, inflight_.data(), inflight_.size());
    lk.lock();
    if (!ok) failed_ = true;
    done_ = true;
    done_cv_.notify_all();
    uv_async_send(async_);  // async-signal and thread safe
  }
}

void Output::OnAsync(uv_async_t* a) {
  auto* self = static_cast<Output*>(a->data);
  self->Reap(false);
  if (self->on_written_) self->on_written_();
  if (self->on_drain_ && !self->broken_) self->on_drain_();
}

void Output::Attach(uv_loop_t* loop, std::function<void()> on_written) {
  if (attached()) return;
  struct stat st;
  if (::fstat(fd_, &st) != 0 || S_ISREG(st.st_mode)) return;  // files: blocking writes are fine
  auto* a = new uv_async_t;
  if (uv_async_init(loop, a, OnAsync) != 0) {
    delete a;
    return;
  }
  a->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(a));
  async_ = a;
  on_written_ = std::move(on_written);
  stop_ = false;
}

void Output::Detach() {
  if (!attached()) return;
  Reap(true);
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
  on_written_ = nullptr;
  on_drain_ = nullptr;
}

}  // namespace luasync
