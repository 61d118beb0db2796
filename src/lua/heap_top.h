// Faulting in the malloc heap's fresh top in one call.
//
// glibc's malloc grows its main heap with brk, a little more than it needs each
// time (128 KiB by default), and those pages are then faulted in one at a time
// as allocations reach them: about 11 µs each on the VMs luasync is measured on,
// against about 1 µs a page for one madvise(MADV_POPULATE_WRITE) over the range.
// Allocation-heavy moments (a thousand transfers starting at once) spend most of
// their time in those faults. PrefaultHeapTop, called at such moments, faults
// in whatever the break has grown by since the last call: memory malloc has
// already taken from the system and is about to hand out, so the resident size
// grows by at most that padding.
#pragma once

namespace luasync {

void PrefaultHeapTop();

}  // namespace luasync
