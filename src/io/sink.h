// Byte sinks written by Lua writables: fs.writeStream and a child's stdin.
//
// Writes are coalesced in a buffer; one write is in flight at a time (double
// buffering). The Lua wrapper makes write() wait while buffered() is past its
// high-water mark, which bounds memory and gives pipeTo its backpressure.
//
// Lua side (metatable "luasync.Sink"):
//   w:write(s)     -> bytes buffered behind the write in flight | nil, code, message
//   w:finish()     flush what is buffered, then close (idempotent)
//   w:status()     -> buffered, closed (bool), code | nil, message | nil
//   w:wait(fn, arg)  fn(arg) runs once from the loop after the next write,
//                    close or error; w:unwait() cancels it
//   __gc           finish, then free once closed
//
// Notifications come only from loop callbacks: after a call the Lua wrapper
// checks status() before it waits.
#pragma once

#include <string>

#include "io/waiter.h"

namespace luasync::io {

class Sink {
 public:
  explicit Sink(Runtime* rt) : rt_(rt) {}
  virtual ~Sink() = default;
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  size_t Write(const char* p, size_t n);
  void End();
  /// The Lua side is gone: finish, and free the object once closed.
  void Release();
  size_t buffered() const { return buf_.size(); }
  bool closed() const { return closed_; }
  int error() const { return err_; }
  void Wait(lua_State* L, int fn_idx, int arg_idx) { waiter_.Arm(rt_, L, fn_idx, arg_idx); }
  void Unwait() { waiter_.Disarm(rt_); }

 protected:
  virtual bool Ready() const = 0;  // false while the file is still being opened
  /// Starts writing inflight_; 0, or a libuv error (then no callback comes).
  virtual int StartWrite() = 0;
  /// Starts closing; calls Closed() later, or returns true if closed already.
  virtual bool StartClose() = 0;

  // From loop callbacks only (they may run Lua).
  void Written(int status, size_t n);
  void Opened(int status);
  void Closed();

  Runtime* rt_;
  std::string inflight_;

 private:
  void Pump();
  void FreeIfDone();

  std::string buf_;
  bool busy_ = false;
  bool ending_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool released_ = false;
  int in_callback_ = 0;
  int err_ = 0;
  Waiter waiter_;
};

/// A file opened asynchronously for writing (truncated, or appended to).
Sink* NewFileSink(Runtime* rt, const std::string& path, bool append);
/// Takes ownership of an initialised pipe (a child's stdin).
Sink* NewPipeSink(Runtime* rt, uv_pipe_t* pipe);

void PushSink(lua_State* L, Sink* s);

}  // namespace luasync::io
