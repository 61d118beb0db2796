#include "io/sink.h"

#include <fcntl.h>
#include <unistd.h>

namespace luasync::io {

size_t Sink::Write(const char* p, size_t n) {
  buf_.append(p, n);
  Pump();
  return buf_.size();
}

void Sink::End() {
  ending_ = true;
  Pump();
}

void Sink::Release() {
  released_ = true;
  waiter_.Disarm(rt_);
  End();
  FreeIfDone();
}

void Sink::FreeIfDone() {
  if (released_ && closed_ && in_callback_ == 0) delete this;
}

// Starts the next write or the close. Never runs Lua.
void Sink::Pump() {
  if (busy_ || closing_) return;
  if (err_ == 0 && !Ready()) return;
  if (err_ == 0 && !buf_.empty()) {
    inflight_.swap(buf_);
    buf_.clear();
    int rc = StartWrite();
    if (rc == 0) {
      busy_ = true;
      return;
    }
    err_ = rc;
  }
  if (err_ != 0 || ending_) {
    closing_ = true;
    if (StartClose()) closed_ = true;
  }
}

void Sink::Written(int status, size_t n) {
  busy_ = false;
  if (status < 0) {
    err_ = status;
  } else if (n < inflight_.size()) {  // a short write to a file: write the rest
    inflight_.erase(0, n);
    if (StartWrite() == 0) {
      busy_ = true;
      return;
    }
  }
  inflight_.clear();
  in_callback_++;
  Pump();
  waiter_.Fire(rt_);
  in_callback_--;
  FreeIfDone();
}

void Sink::Opened(int status) {
  if (status < 0) err_ = status;
  in_callback_++;
  Pump();
  waiter_.Fire(rt_);
  in_callback_--;
  FreeIfDone();
}

void Sink::Closed() {
  closed_ = true;
  in_callback_++;
  waiter_.Fire(rt_);
  in_callback_--;
  FreeIfDone();
}

namespace {

class FileSink : public Sink {
 public:
  FileSink(Runtime* rt, const std::string& path, bool append) : Sink(rt) {
    req_.data = this;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int rc = uv_fs_open(rt->loop(), &req_, path.c_str(), flags, 0666, OnOpen);
    if (rc != 0) {
      uv_fs_req_cleanup(&req_);
      open_err_ = rc;
    } else {
      opening_ = true;
    }
  }

 protected:
  bool Ready() const override { return fd_ >= 0 || open_err_ != 0; }
  int StartWrite() override {
    if (fd_ < 0) return open_err_;
    uv_buf_t buf = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
    int rc = uv_fs_write(rt_->loop(), &req_, fd_, &buf, 1, -1, OnWrite);
    if (rc != 0) uv_fs_req_cleanup(&req_);
    return rc;
  }
  bool StartClose() override {
    if (opening_) return false;  // OnOpen closes
    if (fd_ < 0) return true;
    int rc = uv_fs_close(rt_->loop(), &req_, fd_, OnClose);
    fd_ = -1;
    if (rc != 0) {
      uv_fs_req_cleanup(&req_);
      return true;
    }
    return false;
  }

 private:
  static void OnOpen(uv_fs_t* req) {
    auto* self = static_cast<FileSink*>(req->data);
    int result = static_cast<int>(req->result);
    uv_fs_req_cleanup(req);
    self->opening_ = false;
    if (result >= 0)
      self->fd_ = result;
    else
      self->open_err_ = result;
    self->Opened(result < 0 ? result : 0);
  }
  static void OnWrite(uv_fs_t* req) {
    auto* self = static_cast<FileSink*>(req->data);
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    self->Written(n < 0 ? static_cast<int>(n) : 0, n < 0 ? 0 : static_cast<size_t>(n));
  }
  static void OnClose(uv_fs_t* req) {
    auto* self = static_cast<FileSink*>(req->data);
    uv_fs_req_cleanup(req);
    self->Closed();
  }

  uv_fs_t req_;
  int fd_ = -1;
  int open_err_ = 0;
  bool opening_ = false;
};

class PipeSink : public Sink {
 public:
  PipeSink(Runtime* rt, uv_pipe_t* pipe) : Sink(rt), pipe_(pipe) {
    pipe_->data = this;
    write_req_.data = this;
    shutdown_req_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(pipe_));  // pending writes keep the loop alive
  }

 protected:
  bool Ready() const override { return true; }
  int StartWrite() override {
    uv_buf_t buf = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
    return uv_write(&write_req_, stream(), &buf, 1, OnWrite);
  }
  bool StartClose() override {
    // Half-close first so the child sees end of input, then free the handle.
    if (uv_shutdown(&shutdown_req_, stream(), OnShutdown) != 0) CloseHandle();
    return false;
  }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(pipe_); }
  void CloseHandle() {
    uv_close(reinterpret_cast<uv_handle_t*>(pipe_), [](uv_handle_t* h) {
      auto* self = static_cast<PipeSink*>(h->data);
      delete reinterpret_cast<uv_pipe_t*>(h);
      self->Closed();
    });
  }
  static void OnWrite(uv_write_t* req, int status) {
    auto* self = static_cast<PipeSink*>(req->data);
    self->Written(status, status < 0 ? 0 : self->inflight_.size());
  }
  static void OnShutdown(uv_shutdown_t* req, int) { static_cast<PipeSink*>(req->data)->CloseHandle(); }

  uv_pipe_t* pipe_;
  uv_write_t write_req_;
  uv_shutdown_t shutdown_req_;
};

}  // namespace

Sink* NewFileSink(Runtime* rt, const std::string& path, bool append) { return new FileSink(rt, path, append); }
Sink* NewPipeSink(Runtime* rt, uv_pipe_t* pipe) { return new PipeSink(rt, pipe); }

// ---------------------------------------------------------------------------
// Lua binding

namespace {

constexpr const char* kMeta = "luasync.Sink";

Sink* CheckSink(lua_State* L) { return CheckBox<Sink>(L, 1, kMeta, "write"); }

// w:write(s) -> buffered | nil, code, message
int l_sink_write(lua_State* L) {
  Sink* s = CheckSink(L);
  size_t n;
  const char* p = luaL_checklstring(L, 2, &n);
  if (s->error()) return PushFail(L, s->error());
  lua_pushnumber(L, static_cast<lua_Number>(s->Write(p, n)));
  return 1;
}

// w:finish()
int l_sink_finish(lua_State* L) {
  CheckSink(L)->End();
  return 0;
}

// w:status() -> buffered, closed, code | nil, message | nil
int l_sink_status(lua_State* L) {
  Sink* s = CheckSink(L);
  lua_pushnumber(L, static_cast<lua_Number>(s->buffered()));
  lua_pushboolean(L, s->closed());
  if (!s->error()) return 2;
  lua_pushstring(L, uv_err_name(s->error()));
  lua_pushstring(L, uv_strerror(s->error()));
  return 4;
}

// w:wait(fn, arg)
int l_sink_wait(lua_State* L) {
  Sink* s = CheckSink(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 3);
  s->Wait(L, 2, 3);
  return 0;
}

int l_sink_unwait(lua_State* L) {
  CheckSink(L)->Unwait();
  return 0;
}

int l_sink_gc(lua_State* L) {
  auto** box = static_cast<Sink**>(luaL_checkudata(L, 1, kMeta));
  if (*box) {
    Sink* s = *box;
    *box = nullptr;
    s->Release();
  }
  return 0;
}

}  // namespace

void PushSink(lua_State* L, Sink* s) {
  auto** box = static_cast<Sink**>(lua_newuserdata(L, sizeof(Sink*)));
  *box = s;
  if (luaL_newmetatable(L, kMeta)) {
    static const luaL_Reg methods[] = {{"write", l_sink_write},   {"finish", l_sink_finish},
                                       {"status", l_sink_status}, {"wait", l_sink_wait},
                                       {"unwait", l_sink_unwait}, {nullptr, nullptr}};
    lua_newtable(L);
    luaL_register(L, nullptr, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_sink_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
}

}  // namespace luasync::io
