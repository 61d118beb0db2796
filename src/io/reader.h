// Byte sources pulled by Lua streams: stdin, files, a child's stdout/stderr.
//
// A Reader buffers what its backend produced, up to a limit; at the limit the
// backend pauses (uv_read_stop, no further uv_fs_read), and taking data resumes
// it. The backend is referenced (keeps the loop alive) only while a consumer
// waits, so a script that stops reading does not hang the loop; the read-ahead
// meanwhile continues unreferenced.
//
// Lua side (metatable "luasync.Reader"):
//   r:read([max]) -> string | false (nothing yet) | nil (end) | nil, code, message
//   r:wait(fn, arg)  after read() returned false: fn(arg) runs once from the loop
//                    when read() has something to say (data, end or error)
//   r:unwait()       cancels wait()
//   r:close()        releases the source (idempotent; also __gc)
//
// Ownership: the userdata holds a pointer; the Reader frees itself once its
// backend is done with its memory (a close callback, or the last fs request).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "io/waiter.h"

namespace luasync::io {

class Reader {
 public:
  Reader(Runtime* rt, size_t chunk, size_t limit) : rt_(rt), chunk_(chunk), limit_(limit) {}
  virtual ~Reader() = default;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  enum Status { kData, kPending, kEnd, kError };
  /// Takes up to max bytes (0 = the chunk size) into *p/*n, valid until the next call.
  Status Take(size_t max, const char** p, size_t* n);
  int error() const { return err_; }
  void Wait(lua_State* L, int fn_idx, int arg_idx);
  void Unwait();
  /// Called once by close()/__gc; the object deletes itself later.
  void Close();

 protected:
  virtual void Resume() = 0;             // produce (idempotent)
  virtual void Pause() = 0;              // stop producing (idempotent)
  virtual void SetRef(bool waited) = 0;  // keep the loop alive while waited on
  virtual void Release() = 0;            // free the source, then `delete this`

  void Deliver(const char* p, size_t n);  // the backend produced bytes
  void Finish(int err);                   // end of data (0) or a libuv error
  /// A synchronous failure inside Resume(): recorded, reported by Take(); no Lua runs.
  void Fail(int err) { err == 0 ? (void)(ended_ = true) : (void)(err_ = err); }
  size_t available() const { return buf_.size() - head_; }
  bool done() const { return ended_ || err_ != 0; }
  bool full() const { return available() >= limit_; }

  Runtime* rt_;
  size_t chunk_;
  size_t limit_;
  bool closed_ = false;

 private:
  std::string buf_;
  size_t head_ = 0;
  bool ended_ = false;
  int err_ = 0;
  Waiter waiter_;
};

/// The process's stdin, read through the right backend for what fd 0 is.
Reader* NewStdinReader(Runtime* rt);
/// A file opened (asynchronously) for reading; open errors surface on read.
Reader* NewFileReader(Runtime* rt, const std::string& path, size_t chunk);
/// Takes ownership of an initialised pipe (a child's stdout/stderr).
Reader* NewPipeReader(Runtime* rt, uv_pipe_t* pipe);

/// Pushes a userdata owning r.
void PushReader(lua_State* L, Reader* r);

}  // namespace luasync::io
