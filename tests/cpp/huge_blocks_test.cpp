// Large blocks in huge pages (src/lua/huge_blocks): size classes, reuse, single mappings, the cache bound, the
// allocator for strings, and LuaHeap's large blocks on top of them.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "lua/huge_blocks.h"
#include "lua/lua_heap.h"

namespace huge = luasync::huge;
using luasync::LuaHeap;

namespace {

constexpr size_t KiB = 1024, MiB = 1024 * 1024;

// Off under AddressSanitizer and under a memory limit (ulimit -v / -d): callers use malloc then.
const bool kOn = huge::Enabled();

// The VmFlags line of the mapping that holds p (from /proc/self/smaps), or "".
std::string VmFlagsOf(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in = false;
  auto a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      in = a >= lo && a < hi;
    } else if (in && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

}  // namespace

TEST_CASE("huge blocks: four size classes per doubling, 2 MiB multiples past the pooled sizes", "[huge]") {
  CHECK(huge::Capacity(100) == 100);
  CHECK(huge::Capacity(64 * KiB) == 64 * KiB);
  CHECK(huge::Capacity(64 * KiB + 1) == 80 * KiB);
  CHECK(huge::Capacity(112 * KiB + 1) == 128 * KiB);
  CHECK(huge::Capacity(MiB) == MiB);
  CHECK(huge::Capacity(MiB + 1) == MiB + 256 * KiB);
  CHECK(huge::Capacity(16 * MiB) == 16 * MiB);
  CHECK(huge::Capacity(16 * MiB + 1) == 18 * MiB);
  CHECK(huge::Capacity(100 * MiB + 5) == 102 * MiB);
}

TEST_CASE("huge blocks: aligned, kept, reused by their class only", "[huge]") {
  void* other = std::malloc(MiB);  // not a huge block: Free leaves it alone
  CHECK_FALSE(huge::Free(other, MiB));
  std::free(other);
  if (!kOn) {
    CHECK(huge::Alloc(MiB) == nullptr);  // the sanitizer build leaves every block to malloc
    return;
  }
  void* a = huge::Alloc(MiB);
  void* b = huge::Alloc(300 * KiB);
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(a) % 4096 == 0);
  CHECK(huge::Owns(a));
  CHECK(huge::Owns(static_cast<char*>(a) + MiB - 1));
  int local = 0;
  CHECK_FALSE(huge::Owns(&local));
  std::memset(a, 0x5a, MiB);
  std::memset(b, 0x33, 300 * KiB);
  CHECK(static_cast<unsigned char*>(a)[MiB - 1] == 0x5a);
  huge::Free(a, MiB);
  CHECK(huge::Alloc(2 * MiB) != a);            // another class
  void* again = huge::Alloc(MiB - 100 * KiB);  // same class as 1 MiB: the freed block
  CHECK(again == a);
  CHECK(static_cast<unsigned char*>(again)[10] == 0x5a);  // cached blocks keep their pages
  huge::Free(again, MiB - 100 * KiB);
  huge::Free(b, 300 * KiB);
}

TEST_CASE("huge blocks: a block past the pooled sizes is a mapping of its own, gone when freed", "[huge]") {
  if (!kOn) return;
  const size_t n = 20 * MiB + 3;
  auto* p = static_cast<char*>(huge::Alloc(n));
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(p) % (2 * MiB) == 0);
  CHECK(huge::Owns(p + n - 1));
  p[0] = 1;
  p[n - 1] = 2;
  if (huge::PagesAreHuge()) CHECK(VmFlagsOf(p).find(" hg") != std::string::npos);  // MADV_HUGEPAGE took
  huge::Free(p, n);
  CHECK_FALSE(huge::Owns(p));
  CHECK(VmFlagsOf(p).empty());  // unmapped
}

TEST_CASE("huge blocks: freed blocks past the cache bound give their pages back", "[huge]") {
  if (!kOn) return;
  const size_t n = 4 * MiB, count = huge::kMaxCached / n + 8;
  std::vector<void*> blocks;
  for (size_t i = 0; i < count; i++) {
    void* p = huge::Alloc(n);
    REQUIRE(p != nullptr);
    std::memset(p, 0x7e, n);
    blocks.push_back(p);
  }
  for (void* p : blocks) huge::Free(p, n);
  CHECK(huge::CachedBytes() <= huge::kMaxCached);
  size_t zeroed = 0, kept = 0;
  for (size_t i = 0; i < count; i++) {
    auto* p = static_cast<unsigned char*>(huge::Alloc(n));
    REQUIRE(p != nullptr);
    if (p[n / 2] == 0) ++zeroed;       // its pages were given back: fresh zero pages now
    if (p[n / 2] == 0x7e) ++kept;
    blocks[i] = p;
  }
  CHECK(zeroed >= 8);
  CHECK(kept >= 1);
  CHECK(zeroed + kept == count);
  for (void* p : blocks) huge::Free(p, n);
}

TEST_CASE("huge blocks: strings with the allocator hold large bodies", "[huge]") {
  huge::Bytes s;
  s.reserve(3 * MiB);
  CHECK(huge::Owns(s.data()) == kOn);
  for (int i = 0; i < 3 * 1024; i++) s.append(std::string(1024, static_cast<char>('a' + i % 26)));
  CHECK(s.size() == 3 * MiB);
  CHECK(s[5 * 1024] == 'f');
  huge::Bytes moved = std::move(s);
  CHECK(moved.size() == 3 * MiB);
  moved.clear();
  moved.shrink_to_fit();
  CHECK_FALSE(huge::Owns(moved.data()));
}

TEST_CASE("lua heap: large blocks come from huge blocks and resize keeping their bytes", "[huge][lua_heap]") {
  LuaHeap h;
  auto A = [&](void* p, size_t o, size_t n) { return LuaHeap::Alloc(&h, p, o, n); };
  auto* p = static_cast<unsigned char*>(A(nullptr, 0, 200 * KiB));
  REQUIRE(p != nullptr);
  CHECK(huge::Owns(p) == (kOn && LuaHeap::kPooled));
  for (size_t i = 0; i < 200 * KiB; i++) p[i] = static_cast<unsigned char>(i * 7);
  auto* q = static_cast<unsigned char*>(A(p, 200 * KiB, 210 * KiB));  // same class (192-256 KiB)
  if (kOn && LuaHeap::kPooled) CHECK(q == p);
  q = static_cast<unsigned char*>(A(q, 210 * KiB, 5 * MiB));  // another class: moved, prefix kept
  REQUIRE(q != nullptr);
  bool same = true;
  for (size_t i = 0; i < 200 * KiB; i++) same = same && q[i] == static_cast<unsigned char>(i * 7);
  CHECK(same);
  q = static_cast<unsigned char*>(A(q, 5 * MiB, 40 * MiB));  // a mapping of its own
  REQUIRE(q != nullptr);
  CHECK(q[1000] == static_cast<unsigned char>(1000 * 7));
  q = static_cast<unsigned char*>(A(q, 40 * MiB, 300));  // down to a small block
  REQUIRE(q != nullptr);
  CHECK(q[299] == static_cast<unsigned char>(299 * 7));
  CHECK(A(q, 300, 0) == nullptr);
  CHECK(h.small_in_use() == 0);
}

TEST_CASE("huge blocks: the malloc heap grows in advised steps once taken on", "[huge]") {
  if (!kOn || !huge::PagesAreHuge()) {
    CHECK_FALSE(huge::AdviseHeapGrowth());  // not taken on: callers prefault the heap themselves
    return;
  }
  CHECK_FALSE(huge::AdviseHeapGrowth());
  huge::AdviseMallocHeap();
  auto top = reinterpret_cast<char*>(sbrk(0));
  CHECK(VmFlagsOf(top - 1).find(" hg") != std::string::npos);
  // Grow the heap past its step (blocks below the mmap threshold come from brk), then advise the growth.
  std::vector<void*> blocks;
  while (reinterpret_cast<char*>(sbrk(0)) <= top) blocks.push_back(std::malloc(1 << 20));
  auto grown = reinterpret_cast<char*>(sbrk(0));
  CHECK(huge::AdviseHeapGrowth());
  CHECK(VmFlagsOf(grown - 1).find(" hg") != std::string::npos);
  for (void* p : blocks) std::free(p);
}
