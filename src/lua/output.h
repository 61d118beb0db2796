// Ordered, buffered output to a file descriptor (stdout or stderr).
//
// print, io.write and stdout:write all append here, so their output keeps the
// order in which the script produced it. Nothing else writes to the fd.
//
// Unattached (stderr, regular files, before the loop runs) the buffer is written
// with blocking write() at the high-water mark and by Flush()/Kick().
// Attached to a loop (stdout on a pipe, TTY or socket), a writer thread does the
// blocking write()s, so a slow reader never stalls the loop: Kick() hands the
// buffer over (double buffering), and the thread reports back through a
// uv_async_t. We never set O_NONBLOCK on the fd: its file description is shared
// with other processes (the shell, a pipeline's neighbours).
//
// Ownership: the writer thread and the uv_async_t are created by Attach() and
// stopped by Detach() (also run by the destructor); the uv_async_t's memory is
// freed in its close callback.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

struct uv_loop_s;
struct uv_async_s;

namespace luasync {

class Output {
 public:
  Output(int fd, size_t high_water) : fd_(fd), high_water_(high_water) {}
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  /// Appends in order. At the high-water mark starts writing; blocks only when
  /// kHardCap bytes wait behind a write that is still in progress.
  void Write(const char* p, size_t n);
  /// Writes everything buffered and waits for the writer thread: blocking.
  /// Returns false once the reader is gone (EPIPE).
  bool Flush();
  /// Starts writing what is buffered without blocking (attached), else Flush().
  void Kick();

  /// Moves the blocking writes to a thread, unless fd is a regular file.
  /// on_written runs on the loop after each write the thread finished
  /// (the runtime checks broken() there and kicks the next buffer).
  void Attach(uv_loop_s* loop, std::function<void()> on_written);
  /// Waits for the thread to finish its write, stops it, closes the async handle.
  void Detach();
  bool attached() const { return async_ != nullptr; }
  /// Runs on the loop after each completed background write, after on_written.
  void SetDrainListener(std::function<void()> fn) { on_drain_ = std::move(fn); }

  /// True after a write failed with EPIPE (or another error): the reader is gone.
  bool broken() const { return broken_; }
  /// Bytes not yet written (buffered + in the thread's hands).
  size_t pending() const { return buf_.size() + inflight_.size(); }
  /// Bytes buffered behind the write in progress.
  size_t buffered() const { return buf_.size(); }
  size_t high_water() const { return high_water_; }
  /// Running totals: bytes appended / bytes written (or dropped once broken).
  uint64_t appended() const { return appended_; }
  uint64_t written() const { return written_; }
  int fd() const { return fd_; }

  /// Buffered bytes that make Write() wait for the thread.
  static constexpr size_t kHardCap = 1 << 20;

 private:
  void StartJob();          // hands buf_ to the thread; requires !in_flight_
  void Reap(bool wait);     // collects the thread's finished job, if any
  void ThreadMain();
  static void OnAsync(uv_async_s* a);

  int fd_;
  size_t high_water_;
  bool broken_ = false;
  std::string buf_;
  uint64_t appended_ = 0;
  uint64_t written_ = 0;

  // Writer thread state. inflight_ belongs to the thread while in_flight_.
  std::string inflight_;
  bool in_flight_ = false;
  uv_async_s* async_ = nullptr;
  std::function<void()> on_written_;
  std::function<void()> on_drain_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;       // job posted / stop requested
  std::condition_variable done_cv_;  // job finished
  bool job_ = false;                 // guarded by mu_
  bool done_ = false;                // guarded by mu_
  bool failed_ = false;              // guarded by mu_
  bool stop_ = false;                // guarded by mu_
};

}  // namespace luasync
