// luasync.json (API.md section 6): encode, decode, null, array, object.
// Reference: docs/json.md.
#pragma once

extern "C" {
#include <lua.h>
}

namespace luasync {

/// Pushes the json module table. Also registered as "luasync.json" in
/// package.preload; exposed here so unit tests can open it on a bare state
/// (which must have the ffi library loaded, as luaL_openlibs does).
int luaopen_luasync_json(lua_State* L);

namespace json {
/// For tests and benchmarks: with false, json.decode hands nlohmann the
/// original text instead of the skeleton without literals (json_split.h).
void SetFastPath(bool on);
}  // namespace json

}  // namespace luasync
