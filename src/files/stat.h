#pragma once

#include <sys/stat.h>

#include <cstdint>

namespace peernet::files {

/// A file's modification time in nanoseconds since the Unix epoch, as the protocol carries it.
inline std::int64_t mtime_ns(const struct stat& status) {
  return std::int64_t{status.st_mtim.tv_sec} * 1'000'000'000 + status.st_mtim.tv_nsec;
}

}  // namespace peernet::files
