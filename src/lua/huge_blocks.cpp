#include "lua/huge_blocks.h"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define LUASYNC_HUGE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LUASYNC_HUGE_OFF 1
#endif
#endif

namespace luasync::huge {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kRegionSize = size_t{64} << 20;   // address space per region (a pooled block: at most 1/4)
constexpr int kSteps = 4;                           // classes per doubling
constexpr int kClasses = 8 * kSteps + 1;            // kMinBlock << 8 == kMaxPooled

size_t RoundToHuge(size_t n) { return (n + kHugePage - 1) & ~(kHugePage - 1); }

// The class of n (kMinBlock <= n <= kMaxPooled) and its block size: base + j * base / 4 for the power of two
// base <= n, with j rounded up. j == 4 is the next doubling's first class (same size, same index).
size_t ClassOf(size_t n, int* index) {
  size_t base = kMinBlock;
  int doubling = 0;
  while (base * 2 <= n) {
    base *= 2;
    ++doubling;
  }
  size_t step = base / kSteps;
  size_t j = (n - base + step - 1) / step;
  *index = doubling * kSteps + static_cast<int>(j);
  return base + j * step;
}

struct State {
  std::mutex mu;
  struct Range {
    uintptr_t begin, end;
  };
  std::vector<Range> regions;  // pooled blocks are carved from these
  std::vector<Range> singles;  // blocks larger than kMaxPooled, a mapping each
  char* cur = nullptr;  // bump pointer in the newest region
  char* end = nullptr;
  // Free blocks per class; the low bit marks a block whose pages were given back.
  std::vector<uintptr_t> free_blocks[kClasses];
  size_t cached = 0;  // bytes of free blocks still holding their pages
};

bool InRange(const std::vector<State::Range>& ranges, uintptr_t a) {
  for (const auto& r : ranges) {
    if (a >= r.begin && a < r.end) return true;
  }
  return false;
}

State& S() {
  static State* s = new State;  // never destroyed: blocks may be freed during static destruction
  return *s;
}

// Under an address-space or data limit (ulimit -v, ulimit -d) reserved regions and a padded heap spend the
// budget before any memory is used, and a thread the runtime starts later (libuv aborts when it cannot)
// may find none left: then everything stays with malloc.
bool Limited() {
  static const bool limited = [] {
    rlimit as{}, data{};
    return (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) ||
           (getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY);
  }();
  return limited;
}

}  // namespace

void* MapHuge(size_t size, bool reserve_only) {
  void* raw = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | (reserve_only ? MAP_NORESERVE : 0), -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t r = reinterpret_cast<uintptr_t>(raw);
  uintptr_t a = (r + kHugePage - 1) & ~(kHugePage - 1);
  if (a > r) ::munmap(raw, a - r);
  if (r + kHugePage > a) ::munmap(reinterpret_cast<void*>(a + size), r + kHugePage - a);
  // Fails with EINVAL where the kernel has no transparent huge pages: the region is ordinary memory then.
  ::madvise(reinterpret_cast<void*>(a), size, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(a);
}

bool PagesAreHuge() {
  static const bool huge = [] {
    std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return false;
    char mode[128] = {};
    bool on = std::fgets(mode, sizeof mode, f) != nullptr && std::strstr(mode, "[never]") == nullptr;
    std::fclose(f);
    return on;
  }();
  return huge;
}

size_t Capacity(size_t n) {
  if (n < kMinBlock) return n;
  if (n > kMaxPooled) return RoundToHuge(n);
  int index;
  return ClassOf(n, &index);
}

void* Alloc(size_t n) {
#ifdef LUASYNC_HUGE_OFF
  (void)n;
  return nullptr;
#else
  if (n < kMinBlock || Limited()) return nullptr;
  State& s = S();
  if (n > kMaxPooled) {
    size_t size = RoundToHuge(n);
    if (size < n) return nullptr;  // overflow
    void* p = MapHuge(size, false);
    if (!p) return nullptr;
    std::lock_guard<std::mutex> lock(s.mu);
    s.singles.push_back({reinterpret_cast<uintptr_t>(p), reinterpret_cast<uintptr_t>(p) + size});
    return p;
  }
  int index;
  size_t size = ClassOf(n, &index);
  std::lock_guard<std::mutex> lock(s.mu);
  auto& list = s.free_blocks[index];
  if (!list.empty()) {
    uintptr_t b = list.back();
    list.pop_back();
    if (!(b & 1)) s.cached -= size;
    return reinterpret_cast<void*>(b & ~uintptr_t{1});
  }
  if (s.cur == nullptr || static_cast<size_t>(s.end - s.cur) < size) {
    void* region = MapHuge(kRegionSize, true);
    if (!region) return nullptr;
    s.cur = static_cast<char*>(region);
    s.end = s.cur + kRegionSize;
    s.regions.push_back({reinterpret_cast<uintptr_t>(region), reinterpret_cast<uintptr_t>(s.end)});
  }
  void* p = s.cur;
  s.cur += size;
  return p;
#endif
}

bool Free(void* p, size_t n) {
  if (n < kMinBlock) return false;
  State& s = S();
  uintptr_t b = reinterpret_cast<uintptr_t>(p);
  std::unique_lock<std::mutex> lock(s.mu);
  if (n > kMaxPooled) {
    for (auto& r : s.singles) {
      if (r.begin == b) {
        r = s.singles.back();
        s.singles.pop_back();
        lock.unlock();
        ::munmap(p, RoundToHuge(n));
        return true;
      }
    }
    return false;
  }
  if (!InRange(s.regions, b)) return false;
  int index;
  size_t size = ClassOf(n, &index);
  if (s.cached + size > kMaxCached) {
    ::madvise(p, size, MADV_DONTNEED);  // the range stays ours; its pages go back
    b |= 1;
  } else {
    s.cached += size;
  }
  s.free_blocks[index].push_back(b);
  return true;
}

namespace {
uintptr_t g_heap_advised = 0;  // the malloc heap is advised below this address (0: not managed)
}

void AdviseMallocHeap() {
#ifndef LUASYNC_HUGE_OFF
  if (!PagesAreHuge() || Limited() || g_heap_advised != 0) return;
  // glibc grows its heap (brk) by what a request needs plus M_TOP_PAD, 128 KiB by default; in 16 MiB steps the
  // growth can be advised before most of it is touched. Setting any of these fixes glibc's otherwise adaptive
  // thresholds, so they are set to the upper values it would adapt to (mmap above 32 MiB; trim past 64 MiB).
  mallopt(M_TOP_PAD, static_cast<int>(kHeapStep));
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  g_heap_advised = reinterpret_cast<uintptr_t>(::sbrk(0));
  // More than the heap has free: it grows now by this and a step, all untouched (malloc writes a chunk header),
  // and stays grown (below the trim threshold).
  void* volatile probe = std::malloc(kHeapStep / 2);  // (volatile: a malloc/free pair may be optimised out)
  std::free(probe);
  AdviseHeapGrowth();
#endif
}

bool AdviseHeapGrowth() {
  if (g_heap_advised == 0) return false;
  uintptr_t top = reinterpret_cast<uintptr_t>(::sbrk(0));  // glibc: no system call for 0
  if (top > g_heap_advised) {
    uintptr_t from = g_heap_advised & ~uintptr_t{4095};
    ::madvise(reinterpret_cast<void*>(from), top - from, MADV_HUGEPAGE);
  }
  g_heap_advised = top;  // (also when malloc trimmed the heap)
  return true;
}

bool Enabled() {
#ifdef LUASYNC_HUGE_OFF
  return false;
#else
  return !Limited();
#endif
}

size_t CachedBytes() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.cached;
}

bool Owns(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return InRange(s.regions, a) || InRange(s.singles, a);
}

}  // namespace luasync::huge
