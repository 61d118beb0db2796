// Runs bench.lua on a bare lua_State with only luasync.json, so the decoder
// can be timed with and without its string fast path (json_split.h):
//   JSON_FAST_PATH=0 ./harness bench/json/bench.lua FILE [RUNS]
// Built by run.sh when PLAIN=1; not part of the CMake build.
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include <lauxlib.h>
#include <lualib.h>
}

#include "lua/mod_json.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: harness SCRIPT [ARGS...]\n");
    return 2;
  }
  const char* fast = std::getenv("JSON_FAST_PATH");
  luasync::json::SetFastPath(!(fast && std::strcmp(fast, "0") == 0));
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  luasync::luaopen_luasync_json(L);
  lua_setglobal(L, "json");
  lua_createtable(L, argc, 0);
  for (int i = 1; i < argc; ++i) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  const int status = luaL_dofile(L, argv[1]);
  if (status != 0) std::fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_close(L);
  return status == 0 ? 0 : 1;
}
