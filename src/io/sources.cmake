list(APPEND LUASYNC_CORE_SOURCES
  src/io/reader.cpp
  src/io/sink.cpp
  src/io/mod_stdio.cpp
  src/io/mod_fs.cpp
  src/io/mod_process.cpp
)
