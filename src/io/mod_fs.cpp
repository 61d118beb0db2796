// luasync.native.fs: file system work in libuv's threadpool, behind
// lua/luasync/fs.lua. Each call runs one job (a whole readFile: open, read,
// close) in a worker thread and reports back once, from the loop:
//
//   fs.run(done, ctx, op, path [, arg]) ; later done(ctx, r1, r2, r3, r4)
//   failures: done(ctx, nil, code, message)
//
// Threadpool work never touches the lua_State; results travel in the job.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "io/reader.h"
#include "io/sink.h"
#include "io/waiter.h"
#include "lua/huge_blocks.h"
#include "lua/module.h"

namespace luasync::io {
namespace {

enum class Op { kReadFile, kWriteFile, kAppendFile, kStat, kExists, kList, kRemove, kMkdir, kRename };

// The bytes of a file read: a large buffer comes from huge pages (lua/huge_blocks.h), and read(2) writes into
// it directly (a std::string would be zero-filled first, or filled through a bounce buffer).
struct ReadBuffer {
  char* bytes = nullptr;
  size_t len = 0;
  size_t cap = 0;
  ReadBuffer() = default;
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() {
    if (bytes) huge::FreeBytes(bytes, cap);
  }
  bool Reserve(size_t n) {
    if (n <= cap) return true;
    auto* p = static_cast<char*>(huge::AllocBytes(n));
    if (!p) return false;
    if (len) std::memcpy(p, bytes, len);
    if (bytes) huge::FreeBytes(bytes, cap);
    bytes = p;
    cap = n;
    return true;
  }
};

struct Job {
  uv_work_t req;
  Runtime* rt;
  Op op;
  std::string path;
  std::string arg;        // data to write, or the new path of a rename
  bool recursive = false; // remove, mkdir
  int err = 0;            // a libuv error code (-errno) once done
  ReadBuffer data;                // a file read
  std::vector<std::string> names;
  struct stat st;
  bool exists = false;
  Waiter done;
};

int Errno() { return -errno; }

// Reads into *out, sized by fstat (one byte more, so that the end is seen without growing); a file that grows
// meanwhile, or has no size (a pipe, /proc), grows the buffer by doubling.
int ReadAll(const std::string& path, ReadBuffer* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno();
  struct stat st;
  size_t want = 64 * 1024;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) want = static_cast<size_t>(st.st_size) + 1;
  int err = 0;
  if (!out->Reserve(want)) err = -ENOMEM;
  while (err == 0) {
    if (out->len == out->cap && !out->Reserve(out->cap * 2)) {
      err = -ENOMEM;
      break;
    }
    ssize_t n = ::read(fd, out->bytes + out->len, out->cap - out->len);
    if (n > 0) {
      out->len += static_cast<size_t>(n);
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      err = Errno();
    }
  }
  ::close(fd);
  return err;
}

int WriteAll(const std::string& path, const std::string& data, bool append) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  int fd = ::open(path.c_str(), flags, 0666);
  if (fd < 0) return Errno();
  size_t off = 0;
  int err = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n >= 0) {
      off += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      err = Errno();
      break;
    }
  }
  if (::close(fd) != 0 && err == 0) err = Errno();
  return err;
}

int List(const std::string& path, std::vector<std::string>* names) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return Errno();
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names->emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names->begin(), names->end());
  return 0;
}

// Removes a file, a link or an empty directory; with recursive, a whole tree.
int Remove(const std::string& path, bool recursive) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Errno();
  if (!S_ISDIR(st.st_mode)) return ::unlink(path.c_str()) == 0 ? 0 : Errno();
  if (recursive) {
    std::vector<std::string> names;
    if (int err = List(path, &names)) return err;
    for (const std::string& n : names)
      if (int err = Remove(path + "/" + n, true)) return err;
  }
  return ::rmdir(path.c_str()) == 0 ? 0 : Errno();
}

int Mkdir(const std::string& path, bool recursive) {
  if (::mkdir(path.c_str(), 0777) == 0) return 0;
  int err = errno;
  if (!recursive) return -err;
  struct stat st;
  if (err == EEXIST) return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -EEXIST;
  if (err != ENOENT) return -err;
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return -err;
  if (int e = Mkdir(path.substr(0, slash), true)) return e;
  if (::mkdir(path.c_str(), 0777) == 0) return 0;
  if (errno == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return 0;
  return Errno();
}

void Work(uv_work_t* req) {
  auto* job = static_cast<Job*>(req->data);
  switch (job->op) {
    case Op::kReadFile: job->err = ReadAll(job->path, &job->data); break;
    case Op::kWriteFile: job->err = WriteAll(job->path, job->arg, false); break;
    case Op::kAppendFile: job->err = WriteAll(job->path, job->arg, true); break;
    case Op::kStat: job->err = ::lstat(job->path.c_str(), &job->st) == 0 ? 0 : Errno(); break;
    case Op::kExists: job->exists = ::stat(job->path.c_str(), &job->st) == 0; break;
    case Op::kList: job->err = List(job->path, &job->names); break;
    case Op::kRemove: job->err = Remove(job->path, job->recursive); break;
    case Op::kMkdir: job->err = Mkdir(job->path, job->recursive); break;
    case Op::kRename: job->err = ::rename(job->path.c_str(), job->arg.c_str()) == 0 ? 0 : Errno(); break;
  }
}

const char* TypeName(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "link";
  return "other";
}

// Pushes the results of a finished job; returns how many.
int PushResults(lua_State* L, Job* job) {
  if (job->err) return PushFail(L, job->err);
  switch (job->op) {
    case Op::kReadFile:
      lua_pushlstring(L, job->data.bytes ? job->data.bytes : "", job->data.len);
      return 1;
    case Op::kStat: {
      const struct stat& st = job->st;
      lua_pushnumber(L, static_cast<lua_Number>(st.st_size));
      lua_pushstring(L, TypeName(st.st_mode));
      lua_pushnumber(L, static_cast<lua_Number>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1e9);
      lua_pushinteger(L, static_cast<lua_Integer>(st.st_mode & 07777));
      return 4;
    }
    case Op::kExists:
      lua_pushboolean(L, job->exists);
      return 1;
    case Op::kList:
      lua_createtable(L, static_cast<int>(job->names.size()), 0);
      for (size_t i = 0; i < job->names.size(); i++) {
        lua_pushlstring(L, job->names[i].data(), job->names[i].size());
        lua_rawseti(L, -2, static_cast<int>(i + 1));
      }
      return 1;
    default:
      lua_pushboolean(L, 1);
      return 1;
  }
}

void AfterWork(uv_work_t* req, int status) {
  auto* job = static_cast<Job*>(req->data);
  if (status == UV_ECANCELED) job->err = UV_ECANCELED;
  Runtime* rt = job->rt;
  if (job->done.Push(rt)) {  // stack: done, ctx
    int n = PushResults(rt->L(), job);
    rt->Dispatch(1 + n);
  }
  delete job;
}

const char* const kOpNames[] = {"readFile", "writeFile", "appendFile", "stat", "exists",
                                "list",     "remove",    "mkdir",      "rename", nullptr};

// fs.run(done, ctx, op, path [, arg | recursive])
int l_fs_run(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  Op op = static_cast<Op>(luaL_checkoption(L, 3, nullptr, kOpNames));
  size_t plen;
  const char* path = luaL_checklstring(L, 4, &plen);
  size_t alen = 0;
  const char* arg = nullptr;
  bool recursive = false;
  if (op == Op::kWriteFile || op == Op::kAppendFile || op == Op::kRename)
    arg = luaL_checklstring(L, 5, &alen);
  else
    recursive = lua_toboolean(L, 5);
  Runtime* rt = Runtime::Get(L);
  auto* job = new Job;
  job->req.data = job;
  job->rt = rt;
  job->op = op;
  job->path.assign(path, plen);
  if (arg) job->arg.assign(arg, alen);
  job->recursive = recursive;
  int rc = uv_queue_work(rt->loop(), &job->req, Work, AfterWork);
  if (rc != 0) {
    delete job;
    return PushFail(L, rc);
  }
  job->done.Arm(rt, L, 1, 2);
  lua_pushboolean(L, 1);
  return 1;
}

// fs.reader(path, chunk) -> Reader
int l_fs_reader(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  lua_Integer chunk = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, chunk >= 0 && chunk <= (1 << 30), 2, "chunk size out of range");
  PushReader(L, NewFileReader(Runtime::Get(L), path, static_cast<size_t>(chunk)));
  return 1;
}

// fs.sink(path, append) -> Sink
int l_fs_sink(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  PushSink(L, NewFileSink(Runtime::Get(L), path, lua_toboolean(L, 2)));
  return 1;
}

int luaopen_fs(lua_State* L) {
  static const luaL_Reg fns[] = {
      {"run", l_fs_run}, {"reader", l_fs_reader}, {"sink", l_fs_sink}, {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, fns);
  return 1;
}

}  // namespace

LUASYNC_MODULE("luasync.native.fs", luaopen_fs);

}  // namespace luasync::io
