// json.encode, split from mod_json.cpp so the encoder (which needs no
// nlohmann_json) compiles on its own. Only mod_json.cpp includes this.
#pragma once

#include <cstddef>

extern "C" {
#include <lua.h>
}

namespace luasync::json {

/// Deepest nesting encode and decode accept (tables inside tables / arrays
/// inside arrays). Deeper input raises "nesting deeper than 1000".
constexpr int kMaxDepth = 1000;

/// Output memory kept between encodes: a full userdata, freed by its __gc.
struct BufferCache {
  char* data;
  size_t cap;
};

/// json.encode(value [, {pretty=bool, sort_keys=bool}]) -> string; raises on
/// values JSON cannot hold. Must be a closure with upvalues
/// 1 = array marker metatable, 2 = object marker metatable,
/// 3 = function(cdata) -> decimal string | number | nil, 4 = a BufferCache.
/// May throw std::bad_alloc: register it through a try/catch wrapper.
int Encode(lua_State* L);

}  // namespace luasync::json
