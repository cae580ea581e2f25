#pragma once

#include <chrono>

#include "core/clock.h"

namespace peernet::test {

/// A clock that only moves when a test moves it, so TTL tests run instantly and never flake.
/// The steady and system clocks advance together, as the real ones do.
class FakeClock final : public core::Clock {
 public:
  FakeClock()
      : steady_(std::chrono::hours{1000}),
        system_(std::chrono::sys_days{std::chrono::year{2024} / 5 / 1} + std::chrono::hours{12}) {}

  SteadyTime now() const override { return steady_; }
  SystemTime system_now() const override { return system_; }

  void advance(std::chrono::nanoseconds by) {
    steady_ += std::chrono::duration_cast<SteadyTime::duration>(by);
    system_ += std::chrono::duration_cast<SystemTime::duration>(by);
  }

 private:
  SteadyTime steady_;
  SystemTime system_;
};

}  // namespace peernet::test
