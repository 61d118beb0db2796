list(APPEND LUASYNC_CORE_SOURCES
  src/http/sse.cpp
  src/http/ndjson.cpp
)
