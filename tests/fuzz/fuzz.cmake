# libFuzzer targets for the streaming parsers. Included by the top CMakeLists
# when configured with -DLUASYNC_FUZZ=ON; needs clang and its fuzzer runtime
# (Debian: libclang-rt-14-dev). tests/fuzz/run_fuzz.sh builds and runs them.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "LUASYNC_FUZZ=ON needs clang: configure with -DCMAKE_CXX_COMPILER=clang++")
endif()

set(LUASYNC_FUZZ_SANITIZERS -fsanitize=fuzzer,address,undefined)
foreach(parser sse ndjson)
  # The parsers are pure, so each target compiles its one source instead of
  # linking luasync_core (no LuaJIT, libuv or curl in the fuzz binaries).
  add_executable(luasync_${parser}_fuzz tests/fuzz/${parser}_fuzz.cpp src/http/${parser}.cpp)
  target_include_directories(luasync_${parser}_fuzz PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(luasync_${parser}_fuzz PRIVATE ${LUASYNC_WARNINGS} ${LUASYNC_FUZZ_SANITIZERS}
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(luasync_${parser}_fuzz PRIVATE ${LUASYNC_FUZZ_SANITIZERS})
endforeach()
