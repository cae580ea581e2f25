#pragma once

#include <chrono>

namespace peernet::core {

/// The daemon's sources of time. Deadlines use the steady clock; timestamps shown to clients use
/// the system clock. Injected everywhere so that TTL tests advance a fake clock instead of
/// sleeping.
class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using SystemTime = std::chrono::system_clock::time_point;

  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
  virtual SystemTime system_now() const = 0;
};

/// The real clocks.
class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  SystemTime system_now() const override { return std::chrono::system_clock::now(); }
};

}  // namespace peernet::core
