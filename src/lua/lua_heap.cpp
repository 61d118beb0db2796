#include "lua/lua_heap.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "lua/huge_blocks.h"
#include "lua/prefault.h"

namespace luasync {

namespace {

constexpr size_t kMaxStep = size_t{2} << 20;

inline size_t ClassOf(size_t size) { return (size + 7) >> 3; }

}  // namespace

LuaHeap::~LuaHeap() {
  for (Region* r = regions_; r != nullptr;) {
    Region* prev = r->prev;
    ::munmap(r, r->size);
    r = prev;
  }
}

bool LuaHeap::NewRegion() {
  void* base = huge::MapHuge(kRegionSize, true);
  if (base == nullptr) return false;
  auto* r = static_cast<Region*>(base);
  r->prev = regions_;
  r->size = kRegionSize;
  regions_ = r;
  committed_end_ = static_cast<char*>(base);
  end_ = committed_end_ + kRegionSize;
  cur_ = committed_end_ + sizeof(Region);
  return true;
}

// Makes [cur_, cur_ + bytes) usable: commits the next step of the region, or
// starts a new region when this one is full.
bool LuaHeap::Refill(size_t bytes) {
  while (cur_ == nullptr || cur_ + bytes > committed_end_) {
    if (cur_ == nullptr || committed_end_ == end_) {
      if (!NewRegion()) return false;
      continue;
    }
    size_t step = std::min(step_, static_cast<size_t>(end_ - committed_end_));
    Prefault(committed_end_, step);
    committed_end_ += step;
    committed_ += step;
    step_ = std::min(step_ * 2, kMaxStep);
  }
  return true;
}

bool LuaHeap::InRegions(const void* p) const {
  for (const Region* r = regions_; r != nullptr; r = r->prev) {
    const char* base = reinterpret_cast<const char*>(r);
    if (p >= base && p < base + r->size) return true;
  }
  return false;
}

void* LuaHeap::AllocSmall(size_t cls) {
  void* p = free_[cls];
  if (p != nullptr) {
    std::memcpy(&free_[cls], p, sizeof(void*));
  } else {
    size_t bytes = cls * 8;
    if (cur_ == nullptr || cur_ + bytes > committed_end_) {
      if (!Refill(bytes)) {
        fallback_ = true;
        return std::malloc(bytes);
      }
    }
    p = cur_;
    cur_ += bytes;
  }
  small_in_use_ += cls * 8;
  return p;
}

void LuaHeap::FreeSmall(void* p, size_t cls) {
  if (fallback_ && !InRegions(p)) {
    std::free(p);
    return;
  }
  std::memcpy(p, &free_[cls], sizeof(void*));
  free_[cls] = p;
  small_in_use_ -= cls * 8;
}

void* LuaHeap::Alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
#ifdef LUASYNC_HEAP_MALLOC_ONLY
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    std::free(ptr);
    return nullptr;
  }
  return std::realloc(ptr, nsize);
#else
  auto* h = static_cast<LuaHeap*>(ud);
  if (ptr == nullptr) {  // (osize then carries no size)
    if (nsize == 0) return nullptr;
    return nsize <= kMaxSmall ? h->AllocSmall(ClassOf(nsize)) : huge::AllocBytes(nsize);
  }
  const bool osmall = osize <= kMaxSmall;
  if (nsize == 0) {
    if (osmall) {
      h->FreeSmall(ptr, ClassOf(osize));
    } else {
      huge::FreeBytes(ptr, osize);
    }
    return nullptr;
  }
  const bool nsmall = nsize <= kMaxSmall;
  if (osmall && nsmall && ClassOf(osize) == ClassOf(nsize)) return ptr;
  if (!osmall && !nsmall) {
    const bool ohuge = osize >= huge::kMinBlock && huge::Owns(ptr);
    if (ohuge && huge::Capacity(osize) == huge::Capacity(nsize)) return ptr;
    const bool nhuge = nsize >= huge::kMinBlock;
    if (!ohuge && !nhuge) return std::realloc(ptr, nsize);  // both malloc's (it may grow in place)
  }
  // Moving between size classes, huge blocks and malloc.
  void* q = nsmall ? h->AllocSmall(ClassOf(nsize)) : huge::AllocBytes(nsize);
  if (q == nullptr) return nullptr;  // the old block stays valid, as Lua requires
  std::memcpy(q, ptr, std::min(osize, nsize));
  if (osmall) {
    h->FreeSmall(ptr, ClassOf(osize));
  } else {
    huge::FreeBytes(ptr, osize);
  }
  return q;
#endif
}

}  // namespace luasync
