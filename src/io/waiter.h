// Small pieces shared by the I/O bindings (readers, sinks, fs, process).
#pragma once

#include <uv.h>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

#include "lua/runtime.h"

namespace luasync::io {

/// A one-shot Lua notification armed by a waiting consumer: Fire() calls fn(arg)
/// through Runtime::Dispatch. The refs keep fn and arg (and whatever arg holds,
/// such as the userdata) alive while armed, and only then.
class Waiter {
 public:
  bool armed() const { return fn_ != LUA_NOREF; }

  /// Stack: fn at fn_idx, arg at arg_idx. Replaces an earlier arming.
  void Arm(Runtime* rt, lua_State* L, int fn_idx, int arg_idx) {
    Disarm(rt);
    fn_ = rt->Ref(L, fn_idx);
    arg_ = rt->Ref(L, arg_idx);
  }

  void Disarm(Runtime* rt) {
    rt->Unref(fn_);
    rt->Unref(arg_);
    fn_ = arg_ = LUA_NOREF;
  }

  /// Pushes fn and arg on rt->L() and disarms. False (nothing pushed) when not
  /// armed or once the state is closed.
  bool Push(Runtime* rt) {
    if (!armed()) return false;
    int fn = fn_, arg = arg_;
    fn_ = arg_ = LUA_NOREF;
    if (!rt->L()) return false;
    rt->PushRef(fn);
    rt->PushRef(arg);
    rt->Unref(fn);
    rt->Unref(arg);
    return true;
  }

  /// fn(arg). From a loop callback only (never inside a lua_CFunction): Dispatch re-enters Lua.
  void Fire(Runtime* rt) {
    if (Push(rt)) rt->Dispatch(1);
  }

 private:
  int fn_ = LUA_NOREF;
  int arg_ = LUA_NOREF;
};

/// Pushes luv's failure shape `nil, code, message` for a libuv error; returns 3.
inline int PushFail(lua_State* L, int uv_err) {
  lua_pushnil(L);
  lua_pushstring(L, uv_err_name(uv_err));
  lua_pushstring(L, uv_strerror(uv_err));
  return 3;
}

/// Checks a userdata that boxes a pointer (nullptr once closed).
template <typename T>
T* CheckBox(lua_State* L, int idx, const char* mt, const char* what) {
  auto** box = static_cast<T**>(luaL_checkudata(L, idx, mt));
  if (!*box) luaL_error(L, "%s: closed", what);
  return *box;
}

}  // namespace luasync::io
