// LuaHeap (src/lua/lua_heap): the lua_Alloc of the runtime's Lua state; and Prefault (src/lua/prefault), which it
// and the HTTP transfers use.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include "lua/lua_heap.h"
#include "lua/prefault.h"

using luasync::LuaHeap;

namespace {

void* A(LuaHeap& h, void* p, size_t o, size_t n) { return LuaHeap::Alloc(&h, p, o, n); }

void Fill(void* p, size_t n, unsigned char seed) {
  auto* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; i++) b[i] = static_cast<unsigned char>(seed + i);
}

bool Holds(const void* p, size_t n, unsigned char seed) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++)
    if (b[i] != static_cast<unsigned char>(seed + i)) return false;
  return true;
}

}  // namespace

TEST_CASE("lua heap: blocks are 8-byte aligned, distinct, and keep their bytes", "[lua_heap]") {
  LuaHeap h;
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t size = 1; size <= 2 * LuaHeap::kMaxSmall; size += 7) {
    void* p = A(h, nullptr, 0, size);
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p) % 8 == 0);
    Fill(p, size, static_cast<unsigned char>(size));
    blocks.emplace_back(p, size);
  }
  for (auto& [p, size] : blocks) CHECK(Holds(p, size, static_cast<unsigned char>(size)));
  for (auto& [p, size] : blocks) CHECK(A(h, p, size, 0) == nullptr);
  CHECK(h.small_in_use() == 0);
}

TEST_CASE("lua heap: resizing keeps the common prefix across classes and into malloc", "[lua_heap]") {
  LuaHeap h;
  const size_t sizes[] = {8, 9, 16, 100, 512, 513, 4096, 600, 200, 3};
  void* p = A(h, nullptr, 0, 5);
  Fill(p, 5, 42);
  size_t cur = 5;
  for (size_t next : sizes) {
    p = A(h, p, cur, next);
    REQUIRE(p != nullptr);
    size_t keep = cur < next ? cur : next;
    CHECK(Holds(p, keep < 5 ? keep : 5, 42));
    Fill(p, next, 42);
    cur = next;
  }
  A(h, p, cur, 0);
  CHECK(h.small_in_use() == 0);
}

TEST_CASE("lua heap: a freed small block is reused for the same class only", "[lua_heap]") {
  LuaHeap h;
  if (LuaHeap::kPooled) {
    void* a = A(h, nullptr, 0, 40);
    void* b = A(h, nullptr, 0, 48);
    A(h, a, 40, 0);
    CHECK(A(h, nullptr, 0, 48) != a);   // other class: not the freed block
    CHECK(A(h, nullptr, 0, 33) == a);   // 33..40 share a's class
    // resizing within a class returns the same block
    CHECK(A(h, b, 48, 41) == b);
    CHECK(h.small_in_use() == 40 + 48 + 48);
  } else {
    SUCCEED("the sanitizer build routes every block to malloc");
  }
}

TEST_CASE("lua heap: memory is committed in growing steps, not all at once", "[lua_heap]") {
  LuaHeap h;
  if (LuaHeap::kPooled) {
    A(h, nullptr, 0, 64);
    CHECK(h.committed() == (size_t{128} << 10));
    // 100k blocks of 64 bytes need 6.4 MB: a few steps of at most 2 MiB each
    for (int i = 0; i < 100000; i++) REQUIRE(A(h, nullptr, 0, 64) != nullptr);
    CHECK(h.committed() >= 100001 * 64);
    CHECK(h.committed() <= 100001 * 64 + (size_t{2} << 20) + 4096);
  } else {
    SUCCEED("the sanitizer build routes every block to malloc");
  }
}

TEST_CASE("lua heap: a Lua state runs on it and frees everything at close", "[lua_heap]") {
  LuaHeap h;
  lua_State* L = lua_newstate(&LuaHeap::Alloc, &h);
  REQUIRE(L != nullptr);
  luaL_openlibs(L);
  const char* code = R"(
    local t, parts = {}, {}
    for i = 1, 20000 do
      t[i] = { i, tostring(i), coroutine.create(print) }
      parts[#parts + 1] = string.rep("x", i % 700)
    end
    for i = 1, #t, 2 do t[i] = nil end
    collectgarbage()
    local sum = 0
    for i = 2, #t, 2 do sum = sum + t[i][1] end
    return sum .. ":" .. #table.concat(parts)
  )";
  REQUIRE(luaL_dostring(L, code) == 0);
  CHECK(std::string(lua_tostring(L, -1)) == "100010000:6930400");
  lua_close(L);
  CHECK(h.small_in_use() == 0);
}

TEST_CASE("lua heap: small blocks come from malloc when no region can be reserved", "[lua_heap]") {
  if (!LuaHeap::kPooled) {
    SUCCEED("the sanitizer build routes every block to malloc");
    return;
  }
  // Room for one region and a little more, then an address-space limit.
  size_t pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const size_t vm = pages * 4096;
  rlimit old{};
  REQUIRE(getrlimit(RLIMIT_AS, &old) == 0);
  rlimit lim = old;
  lim.rlim_cur = vm + LuaHeap::kRegionSize + (size_t{24} << 20);
  REQUIRE(setrlimit(RLIMIT_AS, &lim) == 0);
  {
    LuaHeap h;
    std::vector<void*> blocks;
    blocks.reserve(LuaHeap::kRegionSize / 64 + 4096);
    // one region's worth of 64-byte blocks, then 4096 more: those cannot come from a new region
    for (size_t i = 0; i < LuaHeap::kRegionSize / 64 + 4096; i++) {
      void* p = A(h, nullptr, 0, 64);
      REQUIRE(p != nullptr);
      static_cast<char*>(p)[63] = 1;
      blocks.push_back(p);
    }
    CHECK(h.committed() <= LuaHeap::kRegionSize);
    for (void* p : blocks) A(h, p, 64, 0);  // region blocks to the free list, malloc'd ones freed
    CHECK(h.small_in_use() == 0);
  }
  REQUIRE(setrlimit(RLIMIT_AS, &old) == 0);
}

// PrefaultHeapTop: what the program break grew by gets faulted in at once.
TEST_CASE("lua heap: PrefaultHeapTop faults in the pages the malloc heap grew by", "[heap]") {
  luasync::PrefaultHeapTop();  // the current break is the starting point
  const uintptr_t page = 4096;
  auto before = reinterpret_cast<uintptr_t>(sbrk(0));
  std::vector<void*> blocks;
  for (int i = 0; i < 64; i++) blocks.push_back(std::malloc(16 * 1024));  // below the mmap threshold: brk grows
  auto after = reinterpret_cast<uintptr_t>(sbrk(0));
  if (after <= before) {
    WARN("malloc did not grow the heap with brk here (sanitizer build?): nothing to check");
  } else {
    luasync::PrefaultHeapTop();
    uintptr_t begin = (before + page - 1) & ~(page - 1), end = after & ~(page - 1);
    std::vector<unsigned char> resident((end - begin) / page);
    REQUIRE(mincore(reinterpret_cast<void*>(begin), end - begin, resident.data()) == 0);
    size_t missing = 0;
    for (unsigned char r : resident) missing += (r & 1) ? 0 : 1;
    CHECK(missing == 0);
  }
  for (void* p : blocks) std::free(p);
}
