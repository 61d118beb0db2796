// luasync.native.stdio: the stdin reader and the ordered stdout/stderr buffers
// behind the stdin/stdout/stderr globals (lua/luasync/stdio.lua).
#include "io/reader.h"
#include "io/waiter.h"
#include "lua/module.h"
#include "lua/output.h"

namespace luasync::io {
namespace {

Waiter g_drain;  // stdout's drain notification (one runtime per process)

// stdio.stdin() -> Reader (a new one per call; the Lua module keeps one)
int l_stdio_stdin(lua_State* L) {
  PushReader(L, NewStdinReader(Runtime::Get(L)));
  return 1;
}

// stdio.state() -> buffered, high_water, written, appended (stdout)
int l_stdio_state(lua_State* L) {
  Output& out = Runtime::Get(L)->out();
  lua_pushnumber(L, static_cast<lua_Number>(out.buffered()));
  lua_pushnumber(L, static_cast<lua_Number>(out.high_water()));
  lua_pushnumber(L, static_cast<lua_Number>(out.written()));
  lua_pushnumber(L, static_cast<lua_Number>(out.appended()));
  return 4;
}

// stdio.kick(): start writing what stdout has buffered (blocking only when unattached)
int l_stdio_kick(lua_State* L) {
  Runtime::Get(L)->FlushOutput();
  return 0;
}

// stdio.wait_drain(fn, arg): fn(arg) runs once after stdout's next completed write.
// Returns false (and arms nothing) when no write is in progress: nothing to wait for.
int l_stdio_wait_drain(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 2);
  Runtime* rt = Runtime::Get(L);
  Output& out = rt->out();
  if (!out.attached() || out.pending() == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  g_drain.Arm(rt, L, 1, 2);
  lua_pushboolean(L, 1);
  return 1;
}

int luaopen_stdio(lua_State* L) {
  Runtime* rt = Runtime::Get(L);
  rt->out().SetDrainListener([rt] { g_drain.Fire(rt); });
  rt->AtShutdown([rt] { g_drain.Disarm(rt); });
  static const luaL_Reg fns[] = {{"stdin", l_stdio_stdin},         {"write", l_core_write},
                                 {"state", l_stdio_state},         {"kick", l_stdio_kick},
                                 {"wait_drain", l_stdio_wait_drain}, {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, fns);
  return 1;
}

}  // namespace

LUASYNC_MODULE("luasync.native.stdio", luaopen_stdio);

}  // namespace luasync::io
