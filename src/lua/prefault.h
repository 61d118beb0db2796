// Faulting memory in a range at a time.
//
// A fresh anonymous page is faulted in when first touched: about 11 µs each on
// the VMs luasync is measured on, against about 1 µs a page for one
// madvise(MADV_POPULATE_WRITE) over a whole range (Linux 5.14; on older kernels
// the first refusal turns these calls into no-ops and pages fault in as usual).
// Contents never change.
#pragma once

#include <cstddef>

namespace luasync {

/// Faults in the whole pages inside [data, data + len).
void Prefault(void* data, size_t len);

/// Faults in what the malloc heap's break has grown by since the last call.
/// glibc grows its main heap with brk a little ahead of need (128 KiB by
/// default), and those pages then fault in one at a time as allocations reach
/// them; called after allocation-heavy steps (a transfer start: an easy handle is
/// 5.5 KB of fresh calloc), it touches only memory malloc already holds, so the
/// resident size grows by at most that padding. The first call only records the
/// break. Where main put the heap in huge pages (huge::AdviseMallocHeap), it
/// advises the growth for huge pages instead.
void PrefaultHeapTop();

}  // namespace luasync
