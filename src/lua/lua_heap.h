// The memory allocator of the runtime's Lua state (a lua_Alloc).
//
// Lua passes the size of every block it frees or resizes, so small blocks need
// no header: they come from free lists, one per 8-byte size class up to
// kMaxSmall bytes, carved out of large reserved regions (advised for huge
// pages). Bigger blocks come from lua/huge_blocks.h from 64 KiB up, else from
// malloc. Pages of a region are committed ahead of use in steps (one madvise
// call per step) instead of one page fault per 4 KiB page: where page faults
// are dear, as in virtual machines, a fault per page was most of the cost of
// creating many tasks or promises.
//
// Small-block memory is reused but never returned to the system; it lives as
// long as the LuaHeap, which must outlive lua_close. When no new region can be
// reserved (an address-space limit), small blocks come from malloc instead.
#pragma once

#include <cstddef>

// Under AddressSanitizer the runtime keeps LuaJIT's own allocator (see Runtime::Run); LuaHeap
// then sends every block to malloc, so that its unit tests still run under the sanitizer.
#if defined(__SANITIZE_ADDRESS__)
#define LUASYNC_HEAP_MALLOC_ONLY 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LUASYNC_HEAP_MALLOC_ONLY 1
#endif
#endif

namespace luasync {

class LuaHeap {
 public:
  LuaHeap() = default;
  ~LuaHeap();
  LuaHeap(const LuaHeap&) = delete;
  LuaHeap& operator=(const LuaHeap&) = delete;

  /// The lua_Alloc function; ud is the LuaHeap.
  static void* Alloc(void* ud, void* ptr, size_t osize, size_t nsize);

#ifdef LUASYNC_HEAP_MALLOC_ONLY
  static constexpr bool kPooled = false;
#else
  static constexpr bool kPooled = true;
#endif
  static constexpr size_t kMaxSmall = 512;
  static constexpr size_t kRegionSize = size_t{64} << 20;  // reserved address space per region

  /// Bytes of small blocks handed out and not freed (for tests).
  size_t small_in_use() const { return small_in_use_; }
  /// Bytes committed in regions so far (for tests).
  size_t committed() const { return committed_; }

 private:
  struct Region {
    Region* prev;
    size_t size;
  };

  void* AllocSmall(size_t cls);
  void FreeSmall(void* p, size_t cls);
  bool InRegions(const void* p) const;
  bool Refill(size_t bytes);
  bool NewRegion();

  static constexpr size_t kClasses = kMaxSmall / 8 + 1;
  void* free_[kClasses] = {};
  char* cur_ = nullptr;        // bump pointer in the newest region
  char* committed_end_ = nullptr;
  char* end_ = nullptr;        // end of the newest region
  Region* regions_ = nullptr;  // newest first
  size_t small_in_use_ = 0;
  size_t committed_ = 0;
  size_t step_ = size_t{128} << 10;  // next commit step; grows to kMaxStep
  bool fallback_ = false;            // some small blocks came from malloc (no region could be reserved)
};

}  // namespace luasync
