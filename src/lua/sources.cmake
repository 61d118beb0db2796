list(APPEND LUASYNC_CORE_SOURCES
  src/cli/cli.cpp
  src/lua/module.cpp
  src/lua/output.cpp
  src/lua/runtime.cpp
  src/lua/lua_heap.cpp
  src/lua/prefault.cpp
  src/lua/huge_blocks.cpp
  src/lua/mod_core.cpp
)
list(APPEND LUASYNC_CORE_SOURCES src/lua/mod_json.cpp src/lua/json_encode.cpp src/lua/json_split.cpp)
list(APPEND LUASYNC_CORE_SOURCES src/lua/mod_http.cpp src/lua/http_transfer.cpp)
