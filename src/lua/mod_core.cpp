// luasync.core: the few primitives the Lua scheduler needs from the loop.
#include <unistd.h>

#include <cstring>
#include <string>

extern "C" {
#include <lauxlib.h>
}

#include "lua/module.h"
#include "lua/output.h"
#include "lua/runtime.h"

namespace luasync {
namespace {

// core.now() -> milliseconds of the loop clock (cached per iteration)
int l_core_now(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(uv_now(Runtime::Get(L)->loop())));
  return 1;
}

// core.update_now() -> milliseconds, refreshing the loop clock first
int l_core_update_now(lua_State* L) {
  uv_loop_t* loop = Runtime::Get(L)->loop();
  uv_update_time(loop);
  lua_pushnumber(L, static_cast<lua_Number>(uv_now(loop)));
  return 1;
}

// core.hrtime() -> seconds from an arbitrary origin, nanosecond resolution
int l_core_hrtime(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(uv_hrtime()) / 1e9);
  return 1;
}

// core.timer_start(ms): (re)arms the single timer behind the Lua timer heap
int l_core_timer_start(lua_State* L) {
  lua_Number ms = luaL_checknumber(L, 1);
  Runtime::Get(L)->TimerStart(ms <= 0 ? 0 : static_cast<uint64_t>(ms));
  return 0;
}

// core.timer_stop()
int l_core_timer_stop(lua_State* L) {
  Runtime::Get(L)->TimerStop();
  return 0;
}

// core.timer_ref(bool): whether that timer keeps the loop alive
int l_core_timer_ref(lua_State* L) {
  Runtime::Get(L)->TimerRef(lua_toboolean(L, 1) != 0);
  return 0;
}

}  // namespace

// core.write(fd, s1, s2, ...) -> accepted: appends to the ordered stdout (1) or
// stderr (2) buffer; false when that buffer is past its high-water mark (the
// stdio module's writables wait for a drain then). Also registered as stdio.write.
int l_core_write(lua_State* L) {
  int fd = static_cast<int>(luaL_checkinteger(L, 1));
  Runtime* rt = Runtime::Get(L);
  Output& out = fd == 2 ? rt->err() : rt->out();
  int n = lua_gettop(L);
  for (int i = 2; i <= n; i++) {
    size_t len;
    const char* s = lua_tolstring(L, i, &len);
    if (!s) return luaL_argerror(L, i, "string expected");
    out.Write(s, len);
  }
  lua_pushboolean(L, out.buffered() < out.high_water() || out.high_water() == 0);
  return 1;
}

namespace {

// core.flush(): writes buffered stdout now
int l_core_flush(lua_State* L) {
  Runtime::Get(L)->FlushOutput();
  return 0;
}

// core.exit(code): flushes output and ends the process at once
int l_core_exit(lua_State* L) {
  int code = static_cast<int>(luaL_optinteger(L, 1, 0));
  Runtime::Get(L)->ExitNow(code);
}

// core.set_signal(signum, on): watch SIGINT/SIGTERM/SIGHUP for the Lua hook
int l_core_set_signal(lua_State* L) {
  Runtime::Get(L)->WatchSignal(static_cast<int>(luaL_checkinteger(L, 1)), lua_toboolean(L, 2));
  return 0;
}

// core.isatty(fd) -> bool
int l_core_isatty(lua_State* L) {
  lua_pushboolean(L, ::isatty(static_cast<int>(luaL_checkinteger(L, 1))));
  return 1;
}

void CountHandle(uv_handle_t* h, void* arg) {
  auto* L = static_cast<lua_State*>(arg);
  if (!uv_is_active(h) || !uv_has_ref(h) || uv_is_closing(h)) return;
  const char* name = uv_handle_type_name(uv_handle_get_type(h));
  lua_getfield(L, -1, name);
  lua_pushinteger(L, lua_tointeger(L, -1) + 1);
  lua_setfield(L, -3, name);
  lua_pop(L, 1);
}

// core.handles() -> {timer=n, tcp=n, ...}: active, referenced libuv handles
int l_core_handles(lua_State* L) {
  lua_newtable(L);
  uv_walk(Runtime::Get(L)->loop(), CountHandle, L);
  return 1;
}

// core.loop_alive() -> bool: referenced handles or requests (fs, dns) keep the loop running
int l_core_loop_alive(lua_State* L) {
  lua_pushboolean(L, uv_loop_alive(Runtime::Get(L)->loop()));
  return 1;
}

// core.yield(marker, ...) -> the values the task is resumed with; yields like
// coroutine.yield, but returns marker at once where the running code cannot
// yield (a __gc finalizer). One C call instead of coroutine.isyieldable() plus
// coroutine.yield(): neither is compiled by the JIT, and each costs a trace stitch.
int l_core_yield(lua_State* L) {
  if (!lua_isyieldable(L)) return 1;
  return lua_yield(L, lua_gettop(L));
}

// core.loop_ptr() -> loop, uv_update_time, uv_now: lightuserdata for FFI calls. The functions are passed as
// pointers rather than found by name through ffi.C: a name lookup (dlsym) waits while another thread is inside
// dlopen, as the libcurl preload thread may be at boot (http/curl_preload.h).
int l_core_loop_ptr(lua_State* L) {
  lua_pushlightuserdata(L, Runtime::Get(L)->loop());
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&uv_update_time));
  lua_pushlightuserdata(L, reinterpret_cast<void*>(&uv_now));
  return 3;
}

int luaopen_core(lua_State* L) {
  static const luaL_Reg fns[] = {{"now", l_core_now},
                                 {"update_now", l_core_update_now},
                                 {"loop_ptr", l_core_loop_ptr},
                                 {"hrtime", l_core_hrtime},
                                 {"timer_start", l_core_timer_start},
                                 {"timer_stop", l_core_timer_stop},
                                 {"timer_ref", l_core_timer_ref},
                                 {"write", l_core_write},
                                 {"flush", l_core_flush},
                                 {"exit", l_core_exit},
                                 {"set_signal", l_core_set_signal},
                                 {"isatty", l_core_isatty},
                                 {"handles", l_core_handles},
                                 {"loop_alive", l_core_loop_alive},
                                 {"yield", l_core_yield},
                                 {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, fns);
  return 1;
}

}  // namespace

LUASYNC_MODULE("luasync.core", luaopen_core);

}  // namespace luasync
