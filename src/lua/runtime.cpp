#include "lua/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
#include <lauxlib.h>
#include <lualib.h>
}

#include "http/curl_preload.h"
#include "lua/module.h"
#include "lua/output.h"

namespace luasync {

struct EmbeddedModule {
  const char* name;
  const unsigned char* data;
  size_t size;
};
extern const EmbeddedModule kEmbeddedModules[];

namespace {

Runtime* g_runtime = nullptr;

// package.loaders entry: finds luasync's own Lua modules. With LUASYNC_LUA_DIR
// set, loads them from that source tree instead, so editing Lua needs no rebuild.
int EmbeddedSearcher(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  if (const char* dir = std::getenv("LUASYNC_LUA_DIR"); dir && *dir) {
    std::string rel = name;
    for (char& c : rel)
      if (c == '.') c = '/';
    for (const char* suffix : {".lua", "/init.lua"}) {
      std::string path = std::string(dir) + "/" + rel + suffix;
      if (FILE* f = std::fopen(path.c_str(), "rb")) {
        std::fclose(f);
        if (luaL_loadfile(L, path.c_str()) != 0) return lua_error(L);
        return 1;
      }
    }
  }
  for (const EmbeddedModule* m = kEmbeddedModules; m->name; m++) {
    if (std::strcmp(m->name, name) == 0) {
      if (luaL_loadbuffer(L, reinterpret_cast<const char*>(m->data), m->size, name) != 0)
        return lua_error(L);
      return 1;
    }
  }
  lua_pushfstring(L, "\n\tno embedded module '%s'", name);
  return 1;
}

void InstallLoaders(lua_State* L, const RunOptions& opts) {
  lua_getglobal(L, "package");
  // package.preload[name] = opener, for every native module.
  lua_getfield(L, -1, "preload");
  for (const NativeModule* m = NativeModules(); m; m = m->next) {
    lua_pushcfunction(L, m->open);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
  // The embedded searcher goes first. LuaJIT's preload searcher looks a name missing from package.preload up as a
  // symbol of the executable (dlsym of "luaJIT_BC_<name>"): a search through every loaded library, which also
  // waits while another thread is inside dlopen (the libcurl preload, http/curl_preload.h).
  lua_getfield(L, -1, "loaders");
  int n = static_cast<int>(lua_objlen(L, -1));
  for (int i = n; i >= 1; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, EmbeddedSearcher);
  lua_rawseti(L, -2, 1);
  lua_pop(L, 1);
  // Modules beside the script come first, then ./, then LUA_PATH (already in package.path).
  std::string dir;
  if (opts.source == RunOptions::Source::kFile) {
    auto slash = opts.script.find_last_of('/');
    if (slash != std::string::npos) dir = opts.script.substr(0, slash + 1);
  }
  lua_getfield(L, -1, "path");
  std::string path = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
  lua_pop(L, 1);
  std::string prefix;
  if (!dir.empty()) prefix += dir + "?.lua;" + dir + "?/init.lua;";
  prefix += "./?.lua;./?/init.lua;";
  path = prefix + path;
  lua_pushlstring(L, path.data(), path.size());
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

void PushStringList(lua_State* L, const std::vector<std::string>& v) {
  lua_createtable(L, static_cast<int>(v.size()), 0);
  for (size_t i = 0; i < v.size(); i++) {
    lua_pushlstring(L, v[i].data(), v[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

void SetArgTable(lua_State* L, const RunOptions& opts) {
  lua_createtable(L, static_cast<int>(opts.args.size()), 1);
  lua_pushlstring(L, opts.arg0.data(), opts.arg0.size());
  lua_rawseti(L, -2, 0);
  for (size_t i = 0; i < opts.args.size(); i++) {
    lua_pushlstring(L, opts.args[i].data(), opts.args[i].size());
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  lua_setglobal(L, "arg");
}

bool ReadAll(FILE* f, std::string* out) {
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  return !std::ferror(f);
}

}  // namespace

Runtime::Runtime() {
  // A closed stdin/stdout/stderr would be reused by the loop's own descriptors
  // (epoll, signal pipe), which stdin reading or output would then clobber.
  for (int fd = 0; fd <= 2; fd++) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
  }
  uv_loop_init(&loop_);
  loop_.data = this;
  out_ = new Output(1, 64 * 1024);
  err_ = new Output(2, 0);
  uv_timer_init(&loop_, &timer_);
  timer_.data = this;
  uv_timer_init(&loop_, &timeout_timer_);
  timeout_timer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timeout_timer_));
  uv_prepare_init(&loop_, &flush_prepare_);
  flush_prepare_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&flush_prepare_));
  uv_signal_t* sigs[] = {&sigint_, &sigterm_, &sighup_};
  for (uv_signal_t* s : sigs) {
    uv_signal_init(&loop_, s);
    s->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(s));
  }
  g_runtime = this;
}

Runtime::~Runtime() {
  Shutdown();
  http::FinishCurlPreload();
  delete out_;
  delete err_;
  if (g_runtime == this) g_runtime = nullptr;
}

Runtime* Runtime::Get(lua_State*) { return g_runtime; }

int Runtime::Ref(lua_State* L, int idx) {
  lua_pushvalue(L, idx);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

void Runtime::Unref(int ref) {
  if (L_ && ref != LUA_NOREF && ref != LUA_REFNIL) luaL_unref(L_, LUA_REGISTRYINDEX, ref);
}

void Runtime::PushRef(int ref) { lua_rawgeti(L_, LUA_REGISTRYINDEX, ref); }

int Runtime::Dispatch(int nargs) {
  lua_State* L = L_;
  lua_rawgeti(L, LUA_REGISTRYINDEX, dispatch_ref_);
  lua_insert(L, -(nargs + 2));
  if (int status = lua_pcall(L, nargs + 1, 1, 0); status != 0) {
    if (status == LUA_ERRMEM) {  // not a bug of ours: the script ran out of memory
      static const char kText[] = "luasync: not enough memory\n";
      err_->Write(kText, sizeof kText - 1);
      ExitNow(1);
    }
    const char* msg = lua_tostring(L, -1);
    std::string text = std::string("luasync: internal error: ") + (msg ? msg : "(no message)") + "\n";
    err_->Write(text.data(), text.size());
    ExitNow(70);
  }
  int result = lua_isnumber(L, -1) ? static_cast<int>(lua_tointeger(L, -1)) : -1;
  lua_pop(L, 1);
  return result;
}

bool Runtime::PushHook(const char* name) {
  if (!L_ || hooks_ref_ == LUA_NOREF) return false;
  lua_rawgeti(L_, LUA_REGISTRYINDEX, hooks_ref_);
  lua_getfield(L_, -1, name);
  lua_remove(L_, -2);
  if (lua_isnil(L_, -1)) {
    lua_pop(L_, 1);
    return false;
  }
  return true;
}

void Runtime::ExitNow(int code) {
  RunShutdownHooks();
  out_->Flush();
  err_->Flush();
  http::FinishCurlPreload();
  std::fflush(nullptr);
  std::exit(code);
}

void Runtime::RunShutdownHooks() {
  auto hooks = std::move(shutdown_hooks_);
  shutdown_hooks_.clear();
  for (auto& fn : hooks) fn();
}

void Runtime::TimerStart(uint64_t ms) { uv_timer_start(&timer_, OnTimer, ms, 0); }
void Runtime::TimerStop() { uv_timer_stop(&timer_); }
void Runtime::TimerRef(bool ref) {
  auto* h = reinterpret_cast<uv_handle_t*>(&timer_);
  if (ref) {
    uv_ref(h);
  } else {
    uv_unref(h);
  }
}

void Runtime::OnTimer(uv_timer_t* t) {
  auto* rt = static_cast<Runtime*>(t->data);
  if (rt->PushHook("on_timer")) rt->Dispatch(0);
}

void Runtime::OnFlush(uv_prepare_t* p) {
  auto* rt = static_cast<Runtime*>(p->data);
  rt->FlushOutput();
}

void Runtime::FlushOutput() {
  out_->Kick();  // non-blocking once attached (writer thread)
  if (out_->broken()) {
    // The reader of our stdout went away (`luasync s.lua | head -1`): end quietly.
    ExitNow(0);
  }
}

void Runtime::OnTimeout(uv_timer_t* t) {
  auto* rt = static_cast<Runtime*>(t->data);
  int code = 124;
  if (rt->PushHook("on_timeout")) {
    int r = rt->Dispatch(0);
    if (r >= 0) code = r;
  }
  rt->forced_exit_ = code;
  uv_stop(&rt->loop_);
}

void Runtime::OnSignal(uv_signal_t* s, int signum) {
  auto* rt = static_cast<Runtime*>(s->data);
  int code = 128 + signum;
  if (rt->PushHook("on_signal")) {
    lua_pushinteger(rt->L_, signum);
    code = rt->Dispatch(1);
  }
  if (code >= 0) {
    rt->RunShutdownHooks();
    rt->forced_exit_ = code;
    uv_stop(&rt->loop_);
  }
}

void Runtime::WatchSignal(int signum, bool on) {
  uv_signal_t* s = signum == SIGINT ? &sigint_ : signum == SIGTERM ? &sigterm_ : signum == SIGHUP ? &sighup_ : nullptr;
  if (!s) return;
  if (on)
    uv_signal_start(s, OnSignal, signum);
  else
    uv_signal_stop(s);
}

int Runtime::ReadMain(const RunOptions& opts, std::string* code_out, std::string* chunkname_out) {
  std::string& code = *code_out;
  std::string& chunkname = *chunkname_out;
  switch (opts.source) {
    case RunOptions::Source::kFile: {
      FILE* f = std::fopen(opts.script.c_str(), "rb");
      if (!f) {
        std::string msg = "luasync: cannot open " + opts.script + ": " + std::strerror(errno) + "\n";
        err_->Write(msg.data(), msg.size());
        return 2;  // a usage error, like a missing option value
      }
      bool ok = ReadAll(f, &code);
      std::fclose(f);
      if (!ok) {
        std::string msg = "luasync: cannot read " + opts.script + "\n";
        err_->Write(msg.data(), msg.size());
        return 1;
      }
      if (!code.empty() && code[0] == '#') code.insert(0, "--");  // keep line numbers; skip shebang
      chunkname = "@" + opts.script;
      break;
    }
    case RunOptions::Source::kString:
      code = opts.script;
      chunkname = "=(command line)";
      break;
    case RunOptions::Source::kStdin:
      if (!ReadAll(stdin, &code)) {
        err_->Write("luasync: cannot read stdin\n", 27);
        return 1;
      }
      if (!code.empty() && code[0] == '#') code.insert(0, "--");
      chunkname = "=stdin";
      break;
    case RunOptions::Source::kTest:
      break;
  }
  return 0;
}

int Runtime::LoadMain(const RunOptions& opts, const std::string& code, const std::string& chunkname) {
  lua_State* L = L_;
  if (opts.source == RunOptions::Source::kTest) {
    lua_pushnil(L);
    return 0;
  }
  if (luaL_loadbuffer(L, code.data(), code.size(), chunkname.c_str()) != 0) {
    std::string msg = std::string("luasync: ") + lua_tostring(L, -1) + "\n";
    lua_pop(L, 1);
    err_->Write(msg.data(), msg.size());
    return 1;
  }
  return 0;
}

int Runtime::Run(const RunOptions& opts) {
  opts_ = opts;
  ::signal(SIGPIPE, SIG_IGN);
  std::string source, chunkname;
  if (int rc = ReadMain(opts, &source, &chunkname); rc != 0) {
    err_->Flush();
    return rc;
  }
  // A script that names the network API gets libcurl loaded on another thread while the runtime boots.
  if (http::SourceWantsHttp(source)) http::StartCurlPreload();
  // Under AddressSanitizer, LuaJIT's own allocator as before: its regions are not
  // scanned by LeakSanitizer, which cannot follow GC64's tagged pointers and
  // would report Lua objects as leaked when a script ends by os.exit.
  L_ = LuaHeap::kPooled ? lua_newstate(&LuaHeap::Alloc, &heap_) : luaL_newstate();
  if (!L_) {
    std::fprintf(stderr, "luasync: cannot create Lua state\n");
    return 1;
  }
  luaL_openlibs(L_);
  InstallLoaders(L_, opts);
  SetArgTable(L_, opts);

  // boot.lua installs the globals and returns the hook table.
  lua_getglobal(L_, "require");
  lua_pushliteral(L_, "luasync.boot");
  if (lua_pcall(L_, 1, 1, 0) != 0) {
    std::fprintf(stderr, "luasync: cannot start: %s\n", lua_tostring(L_, -1));
    return 1;
  }
  hooks_ref_ = luaL_ref(L_, LUA_REGISTRYINDEX);
  PushHook("dispatch");
  dispatch_ref_ = luaL_ref(L_, LUA_REGISTRYINDEX);

  uv_prepare_start(&flush_prepare_, OnFlush);
  // stdout on a pipe/TTY is written by a thread, so a slow reader never stalls the loop.
  out_->Attach(&loop_, [this] { FlushOutput(); });
  AtShutdown([this] { out_->Detach(); });
  WatchSignal(SIGINT, true);
  WatchSignal(SIGTERM, true);
  if (opts.timeout > 0) {
    uv_timer_start(&timeout_timer_, OnTimeout, static_cast<uint64_t>(opts.timeout * 1000 + 0.5), 0);
  }

  if (int rc = LoadMain(opts, source, chunkname); rc != 0) {
    err_->Flush();
    return rc;
  }
  std::string().swap(source);
  // stack: main chunk (or nil for the test runner)
  PushHook("start");
  lua_insert(L_, -2);
  lua_newtable(L_);
  lua_pushboolean(L_, opts.strict_rejections);
  lua_setfield(L_, -2, "strict");
  lua_pushnumber(L_, opts.timeout);
  lua_setfield(L_, -2, "timeout");
  lua_pushboolean(L_, opts.llm_usage);
  lua_setfield(L_, -2, "llm_usage");
  PushStringList(L_, opts.test_files);
  lua_setfield(L_, -2, "test_files");
  PushStringList(L_, opts.test_argv);
  lua_setfield(L_, -2, "test_argv");
  Dispatch(2);

  int code = -1;
  while (code < 0) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (forced_exit_ >= 0) {
      code = forced_exit_;
      break;
    }
    // Nothing keeps the loop alive any more. Lua decides: exit (main done, or
    // deadlock) or go on (the test runner started the next test).
    if (PushHook("on_loop_empty")) {
      code = Dispatch(0);
    } else {
      code = 0;
    }
  }
  FlushOutput();
  Shutdown();
  return code;
}

void Runtime::Shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  RunShutdownHooks();
  if (L_) {
    PushHook("shutdown") ? (void)lua_pcall(L_, 0, 0, 0) : (void)0;
    lua_close(L_);  // every __gc requests uv_close for its handle
    L_ = nullptr;
  }
  RunShutdownHooks();  // hooks registered by __gc handlers
  out_->Flush();
  err_->Flush();
  uv_handle_t* own[] = {
      reinterpret_cast<uv_handle_t*>(&timer_),   reinterpret_cast<uv_handle_t*>(&timeout_timer_),
      reinterpret_cast<uv_handle_t*>(&sigint_),  reinterpret_cast<uv_handle_t*>(&sigterm_),
      reinterpret_cast<uv_handle_t*>(&sighup_),  reinterpret_cast<uv_handle_t*>(&flush_prepare_)};
  for (uv_handle_t* h : own)
    if (!uv_is_closing(h)) uv_close(h, nullptr);
  int closed = uv_loop_close(&loop_);
  for (int i = 0; i < 1000 && closed == UV_EBUSY; i++) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    closed = uv_loop_close(&loop_);
  }
  // Not uv_loop_close again: once it has succeeded, the loop is gone (debug libuv fills it with garbage).
  if (closed == UV_EBUSY && std::getenv("LUASYNC_DEBUG_HANDLES")) {
    std::fprintf(stderr, "luasync: handles still open at exit:\n");
    uv_print_all_handles(&loop_, stderr);
  }
}

}  // namespace luasync
