// When the loop should poll without sleeping while it waits for HTTP responses (busy-waiting), and for how long.
// Pure bookkeeping on times the caller passes in (nanoseconds from any monotonic clock), so tests can drive it;
// Multi (multi.cpp, "Busy-waiting") applies it to the libuv loop.
//
// A wait starts at the last activity (Mark: a socket or timer event handled, a transfer started). The loop spins
// while the wait is younger than the budget, few transfers are in flight, and recent waits paid off: each event
// that arrives within the budget of its wait is a hit and restores the credit; each later one is a miss and uses
// one up. With no credit left the loop sleeps at once, and the next hit turns spinning back on.
#pragma once

#include <cstddef>
#include <cstdint>

namespace luasync::http {

class SpinPolicy {
 public:
  /// With more transfers than this in flight, the loop has work often enough without waiting.
  static constexpr size_t kMaxActive = 4;
  /// Misses in a row after which the loop stops spinning (until the next hit).
  static constexpr int kMaxMisses = 4;
  /// Largest budget accepted (1 second).
  static constexpr long kMaxBudgetUs = 1000000;

  explicit SpinPolicy(long budget_us = 0)
      : budget_ns_(budget_us > 0 ? static_cast<uint64_t>(budget_us) * 1000 : 0) {}

  bool enabled() const { return budget_ns_ > 0; }

  /// Activity at `now`: a new wait starts.
  void Mark(uint64_t now) { mark_ = now; }

  /// Something arrived at `now`: scores the wait that it ended.
  void Arrived(uint64_t now) {
    if (now - mark_ <= budget_ns_) {
      ++hits_;
      credit_ = kMaxMisses;
    } else {
      ++misses_;
      if (credit_ > 0) --credit_;
    }
  }

  /// Whether waits with `active` transfers in flight are the policy's business at all (the caller may skip
  /// reading the clock for Mark and Arrived when not).
  static bool Concerns(size_t active) { return active > 0 && active <= kMaxActive; }

  /// Whether the loop should poll again without sleeping, at `now` with `active` transfers in flight.
  bool ShouldSpin(uint64_t now, size_t active) const {
    return enabled() && Concerns(active) && credit_ > 0 && now - mark_ < budget_ns_;
  }

  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  uint64_t budget_ns_;
  uint64_t mark_ = 0;
  int credit_ = kMaxMisses;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

}  // namespace luasync::http
