# HTTP: curl multi driven by libuv (multi, request) and incremental framers (sse, ndjson). No Lua here.
list(APPEND LUASYNC_CORE_SOURCES
  src/http/sse.cpp
  src/http/ndjson.cpp
  src/http/plain_delta.cpp
  src/http/multi.cpp
  src/http/request.cpp
  src/http/curl_lazy.cpp
  src/http/curl_preload.cpp
)
