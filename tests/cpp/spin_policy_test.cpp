// The busy-wait policy (src/http/spin_policy.h) on made-up times; Multi's use of it is in http_test.cpp.
#include <catch2/catch.hpp>

#include "http/spin_policy.h"

using luasync::http::SpinPolicy;

namespace {
constexpr uint64_t kUs = 1000;  // nanoseconds
}

TEST_CASE("spin policy: spins within the budget after activity, then sleeps", "[spin]") {
  SpinPolicy p(50);
  REQUIRE(p.enabled());
  p.Mark(1000 * kUs);
  CHECK(p.ShouldSpin(1000 * kUs, 1));
  CHECK(p.ShouldSpin(1049 * kUs, 1));
  CHECK_FALSE(p.ShouldSpin(1050 * kUs, 1));
  CHECK_FALSE(p.ShouldSpin(5000 * kUs, 1));
  p.Mark(5000 * kUs);  // a new wait starts a new budget
  CHECK(p.ShouldSpin(5010 * kUs, 1));
}

TEST_CASE("spin policy: only with one to kMaxActive transfers in flight", "[spin]") {
  SpinPolicy p(50);
  p.Mark(0);
  CHECK_FALSE(p.ShouldSpin(kUs, 0));
  CHECK(p.ShouldSpin(kUs, 1));
  CHECK(p.ShouldSpin(kUs, SpinPolicy::kMaxActive));
  CHECK_FALSE(p.ShouldSpin(kUs, SpinPolicy::kMaxActive + 1));
  CHECK_FALSE(p.ShouldSpin(kUs, 1000));
}

TEST_CASE("spin policy: a budget of 0 (or less) never spins", "[spin]") {
  for (long budget : {0L, -5L}) {
    SpinPolicy p(budget);
    CHECK_FALSE(p.enabled());
    p.Mark(0);
    CHECK_FALSE(p.ShouldSpin(0, 1));
  }
}

TEST_CASE("spin policy: kMaxMisses slow responses in a row stop spinning until a quick one", "[spin]") {
  SpinPolicy p(50);
  uint64_t t = 0;
  // Responses 2 ms after their wait began (a remote server): each is a miss.
  for (int i = 0; i < SpinPolicy::kMaxMisses; ++i) {
    p.Mark(t);
    INFO("wait " << i);
    CHECK(p.ShouldSpin(t + kUs, 1));  // credit left: this wait still spins
    t += 2000 * kUs;
    p.Arrived(t);
  }
  CHECK(p.misses() == SpinPolicy::kMaxMisses);
  CHECK(p.hits() == 0);
  p.Mark(t);
  CHECK_FALSE(p.ShouldSpin(t + kUs, 1));  // no credit: sleep at once
  // A response within the budget (measured while sleeping) turns spinning back on.
  p.Arrived(t + 30 * kUs);
  CHECK(p.hits() == 1);
  t += 30 * kUs;
  p.Mark(t);
  CHECK(p.ShouldSpin(t + kUs, 1));
}

TEST_CASE("spin policy: a hit restores the whole credit", "[spin]") {
  SpinPolicy p(50);
  uint64_t t = 0;
  auto wait = [&](uint64_t took_us) {
    p.Mark(t);
    bool spun = p.ShouldSpin(t, 1);
    t += took_us * kUs;
    p.Arrived(t);
    return spun;
  };
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < SpinPolicy::kMaxMisses - 1; ++i) CHECK(wait(1000));
    CHECK(wait(10));  // a hit just before the credit ran out
  }
  CHECK(p.hits() == 3);
  CHECK(p.misses() == 3 * (SpinPolicy::kMaxMisses - 1));
}
