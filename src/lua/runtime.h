// The luasync runtime: one libuv loop, one lua_State, and the glue between them.
//
// All Lua runs on the loop thread. libuv (and curl) callbacks never run Lua
// directly: they push a Lua function and its arguments and call Dispatch(),
// which runs it in protected mode and then drains the scheduler's ready queue
// (promise reactions and task resumes) before returning to the loop.
#pragma once

#include <uv.h>

#include <functional>
#include <string>
#include <vector>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include "lua/lua_heap.h"

namespace luasync {

class Output;

struct RunOptions {
  enum class Source { kFile, kString, kStdin, kTest };
  Source source = Source::kFile;
  std::string script;              // path (kFile), code (kString)
  std::vector<std::string> args;   // arg[1..]
  std::string arg0;                // arg[0]
  double timeout = 0;              // --timeout seconds; 0 = none
  bool strict_rejections = true;   // --unhandled-rejections
  bool llm_usage = false;          // --llm-usage
  std::vector<std::string> test_files;  // luasync test: files to run, in order
  std::vector<std::string> test_argv;   // luasync test: its options, raw
};

class Runtime {
 public:
  Runtime();
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Runs a script to completion and returns the process exit code.
  int Run(const RunOptions& opts);

  /// The runtime that owns L (any coroutine of it).
  static Runtime* Get(lua_State* L);

  uv_loop_t* loop() { return &loop_; }
  /// The main Lua state; null once the state is closed during shutdown.
  lua_State* L() const { return L_; }

  /// Anchors the value at idx in the registry (luaL_ref semantics).
  int Ref(lua_State* L, int idx);
  void Unref(int ref);
  void PushRef(int ref);

  /// Calls a Lua function from a loop callback. Stack of L(): fn, arg1..argn.
  /// Pops them. Runs the function, then drains the ready queue.
  /// Returns the function's result if it is a number, else -1.
  int Dispatch(int nargs);

  /// Flushes output, runs shutdown hooks and ends the process with `code`.
  [[noreturn]] void ExitNow(int code);

  /// Hooks run at shutdown, before lua_close (abort transfers, kill children...).
  /// They must not call Lua.
  void AtShutdown(std::function<void()> fn) { shutdown_hooks_.push_back(std::move(fn)); }
  /// Hooks run when Ctrl-C/SIGTERM cancels in-flight work (after Lua was told).
  void RunShutdownHooks();

  Output& out() { return *out_; }
  Output& err() { return *err_; }

  // Used by mod_core: the single timer behind Lua's timer heap.
  void TimerStart(uint64_t ms);
  void TimerStop();
  /// Whether the Lua timer heap's timer keeps the loop alive (false: only Channel.after timers are pending).
  void TimerRef(bool ref);
  const RunOptions& options() const { return opts_; }
  /// Starts or stops watching a signal (SIGINT, SIGTERM, SIGHUP) for the Lua hook.
  void WatchSignal(int signum, bool on);
  /// Writes buffered stdout; ends the process quietly if the reader is gone.
  void FlushOutput();

 private:
  bool PushHook(const char* name);
  void Shutdown();
  /// Reads the main script's source (not for the test runner); non-zero: an exit code, the error written.
  int ReadMain(const RunOptions& opts, std::string* code, std::string* chunkname);
  /// Compiles it, leaving the chunk (or nil for the test runner) on the stack.
  int LoadMain(const RunOptions& opts, const std::string& code, const std::string& chunkname);
  static void OnFlush(uv_prepare_t* p);

  static void OnTimer(uv_timer_t* t);
  static void OnTimeout(uv_timer_t* t);
  static void OnSignal(uv_signal_t* s, int signum);

  uv_loop_t loop_;
  LuaHeap heap_;  // the Lua state's memory; outlives lua_close
  lua_State* L_ = nullptr;
  Output* out_;
  Output* err_;
  uv_timer_t timer_;          // Lua timer heap's next deadline
  uv_timer_t timeout_timer_;  // --timeout (unref'd)
  uv_signal_t sigint_, sigterm_, sighup_;
  uv_prepare_t flush_prepare_;  // writes buffered stdout once per loop iteration
  int forced_exit_ = -1;
  int hooks_ref_ = LUA_NOREF;  // table of Lua hooks (dispatch, on_timer, ...)
  int dispatch_ref_ = LUA_NOREF;
  bool shutting_down_ = false;
  RunOptions opts_;
  std::vector<std::function<void()>> shutdown_hooks_;
};

/// core.write / stdio.write(fd, s1, ...) -> accepted (src/lua/mod_core.cpp).
int l_core_write(lua_State* L);

}  // namespace luasync
