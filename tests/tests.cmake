# C++ unit tests: every tests/cpp/*_test.cpp goes into one Catch2 binary.
find_package(Catch2 2 REQUIRED)
include(Catch)
file(GLOB LUASYNC_UNIT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/cpp/*.cpp)
add_executable(luasync_unit ${LUASYNC_UNIT_SOURCES})
target_link_libraries(luasync_unit PRIVATE luasync_core Catch2::Catch2)
target_compile_options(luasync_unit PRIVATE ${LUASYNC_WARNINGS})
catch_discover_tests(luasync_unit TEST_PREFIX "unit." PROPERTIES TIMEOUT 120 ENVIRONMENT "LUASYNC_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

set(LUASYNC_TEST_ENV
    "LUASYNC_BIN=$<TARGET_FILE:luasync>"
    "LUASYNC_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
    "NO_COLOR=1")

# Lua specs: one ctest per file, run through the real binary's test runner.
file(GLOB LUASYNC_LUA_SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/lua/*_spec.lua)
foreach(spec ${LUASYNC_LUA_SPECS})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME lua.${name} COMMAND luasync test ${spec}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/lua)
  set_tests_properties(lua.${name} PROPERTIES TIMEOUT 300 ENVIRONMENT "${LUASYNC_TEST_ENV}")
endforeach()

# Black-box tests of the binary (CLI, stdio, HTTP, LLM): Python scripts that run
# luasync as a subprocess and check exact output and exit codes.
find_package(Python3 REQUIRED COMPONENTS Interpreter)
file(GLOB LUASYNC_PY_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/cli/test_*.py)
foreach(t ${LUASYNC_PY_TESTS})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME cli.${name} COMMAND ${Python3_EXECUTABLE} ${t}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli.${name} PROPERTIES TIMEOUT 600 ENVIRONMENT "${LUASYNC_TEST_ENV}")
endforeach()
