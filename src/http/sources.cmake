# HTTP transport: curl multi driven by libuv. No Lua here (the binding is src/lua/mod_http.cpp).
list(APPEND LUASYNC_CORE_SOURCES
  src/http/multi.cpp
  src/http/request.cpp
)
