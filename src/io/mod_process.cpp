// luasync.native.process: child processes (uv_spawn), signals and the
// environment, behind lua/luasync/process.lua.
//
//   process.spawn(file, args, opts, on_exit, ctx)
//     -> proc, pid, stdin Sink | false, stdout Reader | false, stderr Reader | false
//     |  nil, code, message
//     opts: cwd, env (array of "K=V"; nil = inherit), stdin/stdout/stderr
//     ("pipe" | "inherit" | "ignore"). on_exit(ctx, exit_status, signum) runs once.
//   proc:kill(signum) -> true | nil, code, message
//   process.signum(name | number) -> number | nil
//   process.signame(number) -> "SIGTERM" | nil
//   process.watch_signal(signum, fn | nil): fn(signum) from the loop; nil stops
//   process.environ() -> { "K=V", ... }
//
// Ownership: a Child frees itself in the close callback that follows its exit.
// Children still running at shutdown get SIGTERM (rt->AtShutdown).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "io/reader.h"
#include "io/sink.h"
#include "io/waiter.h"
#include "lua/module.h"
#include "lua/output.h"

extern char** environ;

namespace luasync::io {
namespace {

struct Child {
  uv_process_t handle;
  Runtime* rt;
  Waiter on_exit;
  Child** box = nullptr;  // the userdata's slot, cleared when we go
  bool exited = false;
};

std::set<Child*> g_live;  // spawned and not yet exited

const struct {
  const char* name;
  int num;
} kSignals[] = {
    {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT},   {"SIGILL", SIGILL},
    {"SIGTRAP", SIGTRAP}, {"SIGABRT", SIGABRT},   {"SIGBUS", SIGBUS},     {"SIGFPE", SIGFPE},
    {"SIGKILL", SIGKILL}, {"SIGUSR1", SIGUSR1},   {"SIGSEGV", SIGSEGV},   {"SIGUSR2", SIGUSR2},
    {"SIGPIPE", SIGPIPE}, {"SIGALRM", SIGALRM},   {"SIGTERM", SIGTERM},   {"SIGCHLD", SIGCHLD},
    {"SIGCONT", SIGCONT}, {"SIGSTOP", SIGSTOP},   {"SIGTSTP", SIGTSTP},   {"SIGTTIN", SIGTTIN},
    {"SIGTTOU", SIGTTOU}, {"SIGURG", SIGURG},     {"SIGXCPU", SIGXCPU},   {"SIGXFSZ", SIGXFSZ},
    {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGWINCH", SIGWINCH}, {"SIGIO", SIGIO},
    {"SIGSYS", SIGSYS},
};

const char* SigName(int num) {
  for (const auto& s : kSignals)
    if (s.num == num) return s.name;
  return nullptr;
}

int SigNum(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    int n = static_cast<int>(lua_tointeger(L, idx));
    return n > 0 && n < 65 ? n : 0;
  }
  const char* name = lua_tostring(L, idx);
  if (!name) return 0;
  std::string full = std::strncmp(name, "SIG", 3) == 0 ? name : std::string("SIG") + name;
  for (const auto& s : kSignals)
    if (full == s.name) return s.num;
  return 0;
}

void OnExit(uv_process_t* h, int64_t status, int signum) {
  auto* child = static_cast<Child*>(h->data);
  child->exited = true;
  g_live.erase(child);
  Runtime* rt = child->rt;
  if (child->on_exit.Push(rt)) {  // stack: on_exit, ctx
    lua_pushnumber(rt->L(), static_cast<lua_Number>(status));
    lua_pushinteger(rt->L(), signum);
    rt->Dispatch(3);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* hh) {
    auto* c = static_cast<Child*>(hh->data);
    if (c->box) *c->box = nullptr;
    c->on_exit.Disarm(c->rt);
    delete c;
  });
}

enum class Mode { kPipe, kInherit, kIgnore };

Mode CheckMode(lua_State* L, int opts, const char* field, Mode def) {
  lua_getfield(L, opts, field);
  Mode m = def;
  if (!lua_isnil(L, -1)) {
    const char* s = lua_tostring(L, -1);
    if (s && std::strcmp(s, "pipe") == 0)
      m = Mode::kPipe;
    else if (s && std::strcmp(s, "inherit") == 0)
      m = Mode::kInherit;
    else if (s && std::strcmp(s, "ignore") == 0)
      m = Mode::kIgnore;
    else
      luaL_error(L, "process.spawn: %s must be \"pipe\", \"inherit\" or \"ignore\"", field);
  }
  lua_pop(L, 1);
  return m;
}

std::vector<std::string> StringList(lua_State* L, int idx) {
  std::vector<std::string> out;
  if (lua_isnil(L, idx)) return out;
  int n = static_cast<int>(lua_objlen(L, idx));
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, i);
    size_t len;
    const char* s = lua_tolstring(L, -1, &len);
    if (s) out.emplace_back(s, len);
    lua_pop(L, 1);
  }
  return out;
}

std::vector<char*> CPtrs(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

constexpr const char* kProcMeta = "luasync.Process";

// proc:kill(signum) -> true | nil, code, message
int l_proc_kill(lua_State* L) {
  auto** box = static_cast<Child**>(luaL_checkudata(L, 1, kProcMeta));
  int sig = static_cast<int>(luaL_checkinteger(L, 2));
  if (!*box || (*box)->exited) return PushFail(L, UV_ESRCH);
  int rc = uv_process_kill(&(*box)->handle, sig);
  if (rc != 0) return PushFail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

int l_proc_gc(lua_State* L) {
  auto** box = static_cast<Child**>(luaL_checkudata(L, 1, kProcMeta));
  if (*box) (*box)->box = nullptr;
  *box = nullptr;
  return 0;
}

void PushProc(lua_State* L, Child* c) {
  auto** box = static_cast<Child**>(lua_newuserdata(L, sizeof(Child*)));
  *box = c;
  c->box = box;
  if (luaL_newmetatable(L, kProcMeta)) {
    lua_newtable(L);
    lua_pushcfunction(L, l_proc_kill);
    lua_setfield(L, -2, "kill");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_proc_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
}

// process.spawn(file, args, opts, on_exit, ctx)
// A child gets its three stdio fds and nothing else. Most fds luasync opens are close-on-exec already, but libcurl
// opens its sockets without the flag: a child would hold the script's HTTP connections open (the server sees no
// close until the child exits). So every fd above 2 is marked close-on-exec before each spawn (libuv sets up the
// child's stdio with dup2, which clears the flag on those).
void CloseOnExecAbove2() {
#ifdef CLOSE_RANGE_CLOEXEC
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;  // Linux 5.11
#endif
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* entry = readdir(dir)) {
    int fd = std::atoi(entry->d_name);
    if (fd > 2 && fd != dirfd(dir)) fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  }
  closedir(dir);
}

int l_process_spawn(lua_State* L) {
  const char* file = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  Mode modes[3] = {CheckMode(L, 3, "stdin", Mode::kPipe), CheckMode(L, 3, "stdout", Mode::kPipe),
                   CheckMode(L, 3, "stderr", Mode::kPipe)};
  lua_getfield(L, 3, "cwd");
  const char* cwd = lua_tostring(L, -1);  // kept alive by opts
  lua_pop(L, 1);
  lua_getfield(L, 3, "env");
  bool custom_env = lua_istable(L, -1);
  std::vector<std::string> env = StringList(L, lua_gettop(L));
  lua_pop(L, 1);
  std::vector<std::string> args = StringList(L, 2);
  args.insert(args.begin(), file);
  std::vector<char*> argv = CPtrs(args);
  std::vector<char*> envp = CPtrs(env);

  Runtime* rt = Runtime::Get(L);
  // Whatever we printed must come out before what the child prints to the same fds.
  if (modes[1] == Mode::kInherit || modes[2] == Mode::kInherit) {
    rt->out().Flush();
    rt->err().Flush();
  }
  uv_stdio_container_t stdio[3];
  uv_pipe_t* pipes[3] = {nullptr, nullptr, nullptr};
  for (int i = 0; i < 3; i++) {
    if (modes[i] == Mode::kPipe) {
      pipes[i] = new uv_pipe_t;
      uv_pipe_init(rt->loop(), pipes[i], 0);
      int dir = i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE;  // as the child sees it
      stdio[i].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | dir);
      stdio[i].data.stream = reinterpret_cast<uv_stream_t*>(pipes[i]);
    } else if (modes[i] == Mode::kInherit) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    } else {
      stdio[i].flags = UV_IGNORE;
    }
  }
  uv_process_options_t o;
  std::memset(&o, 0, sizeof o);
  o.exit_cb = OnExit;
  o.file = file;
  o.args = argv.data();
  o.env = custom_env ? envp.data() : nullptr;
  o.cwd = cwd;
  o.stdio_count = 3;
  o.stdio = stdio;

  auto* child = new Child;
  child->rt = rt;
  child->handle.data = child;
  CloseOnExecAbove2();
  int rc = uv_spawn(rt->loop(), &child->handle, &o);
  if (rc != 0) {
    // libuv initialised the handle and the pipes: close them all (memory goes in the callbacks).
    uv_close(reinterpret_cast<uv_handle_t*>(&child->handle),
             [](uv_handle_t* h) { delete static_cast<Child*>(h->data); });
    for (uv_pipe_t* p : pipes)
      if (p) uv_close(reinterpret_cast<uv_handle_t*>(p), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    return PushFail(L, rc);
  }
  g_live.insert(child);
  child->on_exit.Arm(rt, L, 4, 5);
  PushProc(L, child);
  lua_pushinteger(L, child->handle.pid);
  if (pipes[0]) PushSink(L, NewPipeSink(rt, pipes[0])); else lua_pushboolean(L, 0);
  if (pipes[1]) PushReader(L, NewPipeReader(rt, pipes[1])); else lua_pushboolean(L, 0);
  if (pipes[2]) PushReader(L, NewPipeReader(rt, pipes[2])); else lua_pushboolean(L, 0);
  return 5;
}

// process.signum(name | number) -> number | nil
int l_process_signum(lua_State* L) {
  int n = SigNum(L, 1);
  if (n == 0) return 0;
  lua_pushinteger(L, n);
  return 1;
}

// process.signame(number) -> name | nil
int l_process_signame(lua_State* L) {
  const char* name = SigName(static_cast<int>(luaL_checkinteger(L, 1)));
  if (!name) return 0;
  lua_pushstring(L, name);
  return 1;
}

// Signals the runtime does not watch itself (it has SIGINT, SIGTERM, SIGHUP).
struct SignalWatch {
  uv_signal_t handle;
  Runtime* rt;
  int fn = LUA_NOREF;
};
std::map<int, SignalWatch*> g_signals;

void OnSignal(uv_signal_t* h, int signum) {
  auto* w = static_cast<SignalWatch*>(h->data);
  Runtime* rt = w->rt;
  if (!rt->L() || w->fn == LUA_NOREF) return;
  rt->PushRef(w->fn);
  lua_pushinteger(rt->L(), signum);
  rt->Dispatch(1);
}

// process.watch_signal(signum, fn | nil) -> true | nil, code, message
int l_process_watch_signal(lua_State* L) {
  int signum = static_cast<int>(luaL_checkinteger(L, 1));
  Runtime* rt = Runtime::Get(L);
  auto it = g_signals.find(signum);
  if (lua_isnoneornil(L, 2)) {
    if (it != g_signals.end()) {
      SignalWatch* w = it->second;
      g_signals.erase(it);
      rt->Unref(w->fn);
      uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
               [](uv_handle_t* h) { delete static_cast<SignalWatch*>(h->data); });
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_checktype(L, 2, LUA_TFUNCTION);
  SignalWatch* w;
  if (it != g_signals.end()) {
    w = it->second;
    rt->Unref(w->fn);
  } else {
    w = new SignalWatch;
    w->rt = rt;
    uv_signal_init(rt->loop(), &w->handle);
    w->handle.data = w;
    int rc = uv_signal_start(&w->handle, OnSignal, signum);
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
               [](uv_handle_t* h) { delete static_cast<SignalWatch*>(h->data); });
      return PushFail(L, rc);
    }
    uv_unref(reinterpret_cast<uv_handle_t*>(&w->handle));  // a handler does not keep the loop alive
    g_signals[signum] = w;
  }
  w->fn = rt->Ref(L, 2);
  lua_pushboolean(L, 1);
  return 1;
}

// process.environ() -> { "K=V", ... }
int l_process_environ(lua_State* L) {
  lua_newtable(L);
  int i = 0;
  for (char** e = environ; e && *e; e++) {
    lua_pushstring(L, *e);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

// process.pid() -> number
int l_process_pid(lua_State* L) {
  lua_pushinteger(L, uv_os_getpid());
  return 1;
}

int luaopen_process(lua_State* L) {
  Runtime* rt = Runtime::Get(L);
  rt->AtShutdown([] {
    // Children still running are told to stop; we no longer wait for them.
    for (Child* c : g_live) {
      uv_process_kill(&c->handle, SIGTERM);
      c->exited = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), [](uv_handle_t* h) {
        auto* child = static_cast<Child*>(h->data);
        if (child->box) *child->box = nullptr;
        delete child;
      });
    }
    g_live.clear();
    for (auto& [signum, w] : g_signals) {
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&w->handle)))
        uv_close(reinterpret_cast<uv_handle_t*>(&w->handle),
                 [](uv_handle_t* h) { delete static_cast<SignalWatch*>(h->data); });
    }
    g_signals.clear();
  });
  static const luaL_Reg fns[] = {{"spawn", l_process_spawn},
                                 {"signum", l_process_signum},
                                 {"signame", l_process_signame},
                                 {"watch_signal", l_process_watch_signal},
                                 {"environ", l_process_environ},
                                 {"pid", l_process_pid},
                                 {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, fns);
  return 1;
}

}  // namespace

LUASYNC_MODULE("luasync.native.process", luaopen_process);

}  // namespace luasync::io
