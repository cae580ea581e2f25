#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <limits>

namespace peernet::files {

/// A file's modification time in nanoseconds since the Unix epoch, as the protocol carries it;
/// saturated rather than overflowed for times past the year 2262 (or before 1678).
inline std::int64_t mtime_ns(const struct stat& status) {
  constexpr std::int64_t kNanos = 1'000'000'000;
  constexpr std::int64_t kLargest = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kSmallest = std::numeric_limits<std::int64_t>::min();
  const std::int64_t seconds = status.st_mtim.tv_sec;
  if (seconds > kLargest / kNanos - 1) {
    return kLargest;
  }
  if (seconds < kSmallest / kNanos + 1) {
    return kSmallest;
  }
  return seconds * kNanos + status.st_mtim.tv_nsec;
}

}  // namespace peernet::files
