#include "lua/heap_top.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace luasync {
namespace {

uintptr_t g_done = 0;     // the heap is faulted in below this address
bool g_supported = true;  // false after an older kernel refused the advice

}  // namespace

void PrefaultHeapTop() {
  if (!g_supported) return;
  const uintptr_t page = 4096;
  auto brk = reinterpret_cast<uintptr_t>(::sbrk(0)) & ~(page - 1);  // glibc: no system call for 0
  if (g_done == 0) {  // first call: everything below the break now was faulted in by its users, or will be
    g_done = brk;
    return;
  }
  if (brk <= g_done) {
    if (brk < g_done) g_done = brk;  // malloc trimmed the heap
    return;
  }
  if (::madvise(reinterpret_cast<void*>(g_done), brk - g_done, MADV_POPULATE_WRITE) != 0) g_supported = false;
  g_done = brk;
}

}  // namespace luasync
