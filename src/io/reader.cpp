#include "io/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace luasync::io {

// ---------------------------------------------------------------------------
// Reader: the buffer shared by every backend.

Reader::Status Reader::Take(size_t max, const char** p, size_t* n) {
  if (head_ == buf_.size()) {
    buf_.clear();
    head_ = 0;
  }
  if (available() > 0) {
    if (max == 0) max = chunk_;
    size_t k = std::min(max, available());
    *p = buf_.data() + head_;
    *n = k;
    head_ += k;
    if (!done() && !closed_ && !full()) Resume();  // read ahead while Lua works on this chunk
    return kData;
  }
  if (err_) return kError;
  if (ended_) return kEnd;
  Resume();
  if (err_) return kError;  // the backend failed synchronously
  return ended_ ? kEnd : kPending;
}

void Reader::Wait(lua_State* L, int fn_idx, int arg_idx) {
  waiter_.Arm(rt_, L, fn_idx, arg_idx);
  SetRef(true);
}

void Reader::Unwait() {
  waiter_.Disarm(rt_);
  SetRef(false);
}

void Reader::Close() {
  if (closed_) return;
  closed_ = true;
  waiter_.Disarm(rt_);
  Pause();
  Release();
}

void Reader::Deliver(const char* p, size_t n) {
  if (head_ > 0 && (head_ == buf_.size() || head_ >= buf_.size() / 2)) {
    buf_.erase(0, head_);
    head_ = 0;
  }
  buf_.append(p, n);
  if (full()) Pause();
  SetRef(false);
  waiter_.Fire(rt_);
}

void Reader::Finish(int err) {
  if (err == 0)
    ended_ = true;
  else
    err_ = err;
  Pause();
  SetRef(false);
  waiter_.Fire(rt_);
}

namespace {

template <typename H>
uv_handle_t* AsHandle(H* h) {
  return reinterpret_cast<uv_handle_t*>(h);
}

// ---------------------------------------------------------------------------
// fd 0 when it is a pipe, a TTY or a socket: readiness from a uv_poll_t, then a
// plain read(). uv_poll_init makes the fd non-blocking; we restore its flags at
// once, since the file description is shared with other processes (a
// non-blocking stdin breaks the `cat` that runs after us).

class PollReader : public Reader {
 public:
  PollReader(Runtime* rt, int fd, uv_poll_t* poll, size_t chunk)
      : Reader(rt, chunk, chunk), fd_(fd), poll_(poll), scratch_(new char[chunk]) {
    poll_->data = this;
    uv_unref(AsHandle(poll_));
  }

 protected:
  void Resume() override {
    if (polling_) return;
    polling_ = uv_poll_start(poll_, UV_READABLE, OnPoll) == 0;
  }
  void Pause() override {
    if (!polling_) return;
    uv_poll_stop(poll_);
    polling_ = false;
  }
  void SetRef(bool waited) override { waited ? uv_ref(AsHandle(poll_)) : uv_unref(AsHandle(poll_)); }
  void Release() override {
    uv_close(AsHandle(poll_), [](uv_handle_t* h) {
      delete static_cast<PollReader*>(h->data);
      delete reinterpret_cast<uv_poll_t*>(h);
    });
  }

 private:
  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* self = static_cast<PollReader*>(h->data);
    if (status < 0) return self->Finish(status);
    ssize_t n = ::read(self->fd_, self->scratch_.get(), self->chunk_);
    if (n > 0) return self->Deliver(self->scratch_.get(), static_cast<size_t>(n));
    if (n == 0) return self->Finish(0);
    if (errno == EAGAIN || errno == EINTR) return;  // spurious readiness
    self->Finish(-errno);
  }

  int fd_;
  uv_poll_t* poll_;
  bool polling_ = false;
  std::unique_ptr<char[]> scratch_;
};

// ---------------------------------------------------------------------------
// A libuv pipe (a child's stdout/stderr): uv_read_start/uv_read_stop.

class PipeReader : public Reader {
 public:
  PipeReader(Runtime* rt, uv_pipe_t* pipe, size_t chunk)
      : Reader(rt, chunk, chunk), pipe_(pipe), scratch_(new char[chunk]) {
    pipe_->data = this;
    uv_unref(AsHandle(pipe_));  // the process handle keeps the loop alive until exit
  }

 protected:
  void Resume() override {
    if (reading_) return;
    auto* s = reinterpret_cast<uv_stream_t*>(pipe_);
    int rc = uv_read_start(s, OnAlloc, OnRead);
    if (rc == 0)
      reading_ = true;
    else if (rc != UV_EALREADY)
      Fail(rc == UV_EINVAL ? 0 : rc);  // EINVAL: the pipe is already closed for reading
  }
  void Pause() override {
    if (!reading_) return;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(pipe_));
    reading_ = false;
  }
  void SetRef(bool waited) override { waited ? uv_ref(AsHandle(pipe_)) : uv_unref(AsHandle(pipe_)); }
  void Release() override {
    uv_close(AsHandle(pipe_), [](uv_handle_t* h) {
      delete static_cast<PipeReader*>(h->data);
      delete reinterpret_cast<uv_pipe_t*>(h);
    });
  }

 private:
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<PipeReader*>(h->data);
    *buf = uv_buf_init(self->scratch_.get(), static_cast<unsigned>(self->chunk_));
  }
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* self = static_cast<PipeReader*>(s->data);
    if (n > 0) return self->Deliver(self->scratch_.get(), static_cast<size_t>(n));
    if (n == UV_EOF) return self->Finish(0);
    if (n < 0) self->Finish(static_cast<int>(n));
  }

  uv_pipe_t* pipe_;
  bool reading_ = false;
  std::unique_ptr<char[]> scratch_;
};

// ---------------------------------------------------------------------------
// A regular file (fs.readStream, or stdin redirected from a file): one
// uv_fs_read in flight at a time, in the threadpool. The object may only be
// freed when no request is in flight and we are not inside its callback.

class FileReader : public Reader {
 public:
  // With fd >= 0 the reader owns fd and reads at the current position;
  // otherwise it opens path and reads from offset 0 on.
  FileReader(Runtime* rt, std::string path, int fd, size_t chunk)
      : Reader(rt, chunk, chunk), path_(std::move(path)), fd_(fd), positional_(fd < 0),
        scratch_(new char[chunk]) {
    req_.data = this;
  }

 protected:
  void Resume() override {
    paused_ = false;
    if (!busy_ && !done() && !closed_) Issue();
  }
  void Pause() override { paused_ = true; }
  void SetRef(bool) override {}  // requests in flight are always referenced, and short
  void Release() override {
    if (!busy_ && !in_callback_) Free();
  }

 private:
  void Issue() {
    int rc;
    if (fd_ < 0) {
      rc = uv_fs_open(rt_->loop(), &req_, path_.c_str(), O_RDONLY | O_CLOEXEC, 0, OnOpen);
    } else {
      uv_buf_t buf = uv_buf_init(scratch_.get(), static_cast<unsigned>(chunk_));
      rc = uv_fs_read(rt_->loop(), &req_, fd_, &buf, 1, positional_ ? offset_ : -1, OnRead);
    }
    if (rc == 0) {
      busy_ = true;
    } else {
      uv_fs_req_cleanup(&req_);
      Fail(rc);
    }
  }

  static void OnOpen(uv_fs_t* req) {
    auto* self = static_cast<FileReader*>(req->data);
    int result = static_cast<int>(req->result);
    uv_fs_req_cleanup(req);
    self->busy_ = false;
    if (self->closed_) {
      if (result >= 0) self->fd_ = result;
      return self->Free();
    }
    self->in_callback_ = true;
    if (result < 0) {
      self->Finish(result);
    } else {
      self->fd_ = result;
      if (!self->paused_) self->Issue();
    }
    self->in_callback_ = false;
    if (self->closed_ && !self->busy_) self->Free();
  }

  static void OnRead(uv_fs_t* req) {
    auto* self = static_cast<FileReader*>(req->data);
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    self->busy_ = false;
    if (self->closed_) return self->Free();
    self->in_callback_ = true;
    if (n < 0) {
      self->Finish(static_cast<int>(n));
    } else if (n == 0) {
      self->Finish(0);
    } else {
      self->offset_ += n;
      self->Deliver(self->scratch_.get(), static_cast<size_t>(n));  // may run Lua
      if (!self->closed_ && !self->paused_ && !self->busy_ && !self->done()) self->Issue();
    }
    self->in_callback_ = false;
    if (self->closed_ && !self->busy_) self->Free();
  }

  void Free() {
    if (fd_ >= 0) ::close(fd_);  // a regular file: close() does not block
    delete this;
  }

  std::string path_;
  int fd_;
  bool positional_;
  int64_t offset_ = 0;
  uv_fs_t req_;
  bool busy_ = false;
  bool paused_ = false;
  bool in_callback_ = false;
  std::unique_ptr<char[]> scratch_;
};

// stdin that is closed or unusable: ends at once.
class EmptyReader : public Reader {
 public:
  explicit EmptyReader(Runtime* rt) : Reader(rt, 1, 1) { Finish(0); }

 protected:
  void Resume() override {}
  void Pause() override {}
  void SetRef(bool) override {}
  void Release() override { delete this; }
};

constexpr size_t kChunk = 64 * 1024;

}  // namespace

Reader* NewStdinReader(Runtime* rt) {
  uv_handle_type type = uv_guess_handle(0);
  if (type == UV_FILE) {
    int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (fd >= 0) return new FileReader(rt, "<stdin>", fd, kChunk);
  } else if (type != UV_UNKNOWN_HANDLE) {
    int flags = ::fcntl(0, F_GETFL);
    auto* poll = new uv_poll_t;
    int rc = uv_poll_init(rt->loop(), poll, 0);
    if (flags >= 0 && ::fcntl(0, F_GETFL) != flags) ::fcntl(0, F_SETFL, flags);
    if (rc == 0) return new PollReader(rt, 0, poll, kChunk);
    delete poll;
    int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (fd >= 0) return new FileReader(rt, "<stdin>", fd, kChunk);
  }
  return new EmptyReader(rt);
}

Reader* NewFileReader(Runtime* rt, const std::string& path, size_t chunk) {
  return new FileReader(rt, path, -1, chunk ? chunk : kChunk);
}

Reader* NewPipeReader(Runtime* rt, uv_pipe_t* pipe) { return new PipeReader(rt, pipe, kChunk); }

// ---------------------------------------------------------------------------
// Lua binding

namespace {

constexpr const char* kMeta = "luasync.Reader";

Reader* CheckReader(lua_State* L) { return CheckBox<Reader>(L, 1, kMeta, "stream.read"); }

// r:read([max]) -> string | false | nil | nil, code, message
int l_reader_read(lua_State* L) {
  Reader* r = CheckReader(L);
  size_t max = static_cast<size_t>(luaL_optinteger(L, 2, 0));
  const char* p = nullptr;
  size_t n = 0;
  switch (r->Take(max, &p, &n)) {
    case Reader::kData:
      lua_pushlstring(L, p, n);
      return 1;
    case Reader::kPending:
      lua_pushboolean(L, 0);
      return 1;
    case Reader::kEnd:
      lua_pushnil(L);
      return 1;
    case Reader::kError:
      return PushFail(L, r->error());
  }
  return 0;
}

// r:wait(fn, arg): fn(arg) runs once from the loop when read() has news
int l_reader_wait(lua_State* L) {
  Reader* r = CheckReader(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 3);
  r->Wait(L, 2, 3);
  return 0;
}

// r:unwait()
int l_reader_unwait(lua_State* L) {
  CheckReader(L)->Unwait();
  return 0;
}

// r:close() (idempotent)
int l_reader_close(lua_State* L) {
  auto** box = static_cast<Reader**>(luaL_checkudata(L, 1, kMeta));
  if (*box) {
    Reader* r = *box;
    *box = nullptr;
    r->Close();
  }
  return 0;
}

}  // namespace

void PushReader(lua_State* L, Reader* r) {
  auto** box = static_cast<Reader**>(lua_newuserdata(L, sizeof(Reader*)));
  *box = r;
  if (luaL_newmetatable(L, kMeta)) {
    static const luaL_Reg methods[] = {{"read", l_reader_read},
                                       {"wait", l_reader_wait},
                                       {"unwait", l_reader_unwait},
                                       {"close", l_reader_close},
                                       {nullptr, nullptr}};
    lua_newtable(L);
    luaL_register(L, nullptr, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_reader_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
}

}  // namespace luasync::io
