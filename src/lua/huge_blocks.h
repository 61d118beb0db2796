// Large blocks in transparent huge pages.
//
// The first write to a fresh 4 KiB page of anonymous memory is a page fault. On the virtual machines luasync is
// measured on, such a fault costs about 12 µs (the hypervisor takes part), and faulting pages in ahead with
// madvise(MADV_POPULATE_WRITE) only halves that: 16 MiB took 48 ms to fault in by writes, 27 ms populated
// first. A 2 MiB transparent huge page is one fault: the same 16 MiB took about 1 ms. A process that holds
// sixteen 1 MiB response bodies at once spent most of its first 200 MiB of downloads in those faults.
//
// So blocks of kMinBlock bytes and more (long Lua strings and big tables, HTTP body buffers, files read whole)
// live in memory mapped at 2 MiB boundaries and advised MADV_HUGEPAGE. Up to kMaxPooled bytes they are carved
// from large reserved regions in size classes (four per doubling: at most a quarter of a block is slack) and
// kept on per-class free lists for reuse; larger ones get a mapping each, unmapped when freed. Where the kernel
// has no transparent huge pages, or the request fails, the memory is ordinary memory.
//
// Freed pooled blocks stay mapped for reuse, up to kMaxCached bytes in all; past that a freed block's pages go
// back to the system (MADV_DONTNEED) while its address range stays on the free list, to be faulted in again (in
// huge pages, so cheaply) when reused. Regions are never returned: their address space outlives everything.
//
// Under an address-space or data limit (ulimit -v, ulimit -d) Alloc fails and the heap is left alone: reserving
// address space ahead would spend the limit.
//
// Thread-safe (one mutex; a block is at least 64 KiB, so the lock is small next to what the caller then does
// with it). Under AddressSanitizer Alloc always fails, so that callers use malloc and the sanitizer sees
// every block.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <string>

namespace luasync::huge {

constexpr size_t kMinBlock = size_t{64} << 10;
constexpr size_t kMaxPooled = size_t{16} << 20;
constexpr size_t kMaxCached = size_t{64} << 20;

/// A block of at least n bytes (n >= kMinBlock), 4 KiB-aligned; nullptr when no memory could be mapped (or
/// under AddressSanitizer, or a memory limit): use malloc then.
void* Alloc(size_t n);
/// Gives back a block from Alloc(m), where m and n have the same Capacity (normally n == m). Returns false,
/// doing nothing, when p is not such a block (one check and one lock: callers need not ask Owns first).
bool Free(void* p, size_t n);
/// Whether p points into a region (was returned by Alloc).
bool Owns(const void* p);
/// The usable size of the block Alloc(n) returns (n for sizes below kMinBlock).
size_t Capacity(size_t n);

/// Whether Alloc serves blocks at all (not under AddressSanitizer or a memory limit).
bool Enabled();

/// Bytes of freed pooled blocks that still hold their pages (for tests).
size_t CachedBytes();

/// Whether the kernel backs the regions with huge pages (transparent huge pages enabled, "always" or "madvise").
/// Where it does not, a fresh block is still faulted in a 4 KiB page at a time, and callers may prefault it.
bool PagesAreHuge();

/// The malloc heap (libcurl's handles and buffers, the C++ side's objects) in huge pages too: makes glibc grow
/// its heap in steps of kHeapStep and advises what it has so far. Call once, first thing in main; a no-op
/// without transparent huge pages or under AddressSanitizer.
void AdviseMallocHeap();
/// Advises what the malloc heap grew by since the last call (cheap when it did not grow: no system call).
/// Returns false, doing nothing, unless AdviseMallocHeap took the heap on.
bool AdviseHeapGrowth();
constexpr size_t kHeapStep = size_t{16} << 20;

/// Maps `size` bytes (a multiple of 2 MiB) at a 2 MiB boundary, advised MADV_HUGEPAGE; nullptr on failure.
/// With reserve_only, address space to be used piecemeal (MAP_NORESERVE: the system does not count it against
/// its commit limit). Release with munmap(p, size).
void* MapHuge(size_t size, bool reserve_only);

/// malloc/free with the blocks above for the sizes they serve (free needs the size).
inline void* AllocBytes(size_t n) {
  if (n >= kMinBlock) {
    if (void* p = Alloc(n)) return p;
  }
  return std::malloc(n);
}
inline void FreeBytes(void* p, size_t n) {
  if (!Free(p, n)) std::free(p);
}

/// An allocator for containers of large buffers (HTTP bodies): std::basic_string<char, ..., Allocator<char>>.
template <class T>
struct Allocator {
  using value_type = T;
  Allocator() = default;
  template <class U>
  Allocator(const Allocator<U>&) noexcept {}
  T* allocate(size_t n) {
    void* p = AllocBytes(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept { FreeBytes(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const Allocator<U>&) const noexcept { return true; }
};

/// A byte string whose large buffers come from the blocks above.
using Bytes = std::basic_string<char, std::char_traits<char>, Allocator<char>>;

}  // namespace luasync::huge
