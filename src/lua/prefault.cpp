#include "lua/prefault.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "lua/huge_blocks.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace luasync {
namespace {

constexpr uintptr_t kPage = 4096;
bool g_supported = true;  // false once the kernel refused the advice
uintptr_t g_heap_done = 0;  // the malloc heap is faulted in below this address

}  // namespace

void Prefault(void* data, size_t len) {
  if (!g_supported) return;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kPage - 1) & ~(kPage - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + len) & ~(kPage - 1);
  if (end > begin && ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE) != 0) {
    g_supported = false;
  }
}

void PrefaultHeapTop() {
  if (huge::AdviseHeapGrowth()) return;  // the heap is in huge pages (main took it on): faults are cheap there
  auto brk = reinterpret_cast<uintptr_t>(::sbrk(0)) & ~(kPage - 1);  // glibc: no system call for 0
  if (g_heap_done != 0 && brk > g_heap_done) Prefault(reinterpret_cast<void*>(g_heap_done), brk - g_heap_done);
  g_heap_done = brk;  // (also when malloc trimmed the heap below it)
}

}  // namespace luasync
