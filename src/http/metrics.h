#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "core/registry.h"
#include "http/router.h"

namespace peernet::http {

/// Counters for GET /metrics, updated lock-free from every session.
class Metrics {
 public:
  /// Counts a finished request; `method` is nullopt-like kMethodCount for an unmatched route.
  void record(std::size_t method_index, unsigned status);
  void refused() { refused_.fetch_add(1, std::memory_order_relaxed); }
  void connection_opened() {
    connections_.fetch_add(1, std::memory_order_relaxed);
    ++accepted_;
  }
  void connection_closed() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  /// Counts a long-poll in; false (nothing counted) when `limit` are already waiting.
  bool poll_started(std::size_t limit) {
    if (polls_.fetch_add(1, std::memory_order_relaxed) >= static_cast<std::int64_t>(limit)) {
      polls_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void poll_ended() { polls_.fetch_sub(1, std::memory_order_relaxed); }

  /// The Prometheus text exposition of the counters and the registry's gauges.
  std::string render(const core::RegistryStats& stats) const;

 private:
  static constexpr std::array<unsigned, 16> kStatuses = {200, 201, 400, 401, 404, 405, 409, 413,
                                                         414, 415, 422, 429, 431, 500, 501, 503};
  // One row per method plus one for unmatched routes; one column per status plus "other".
  std::array<std::array<std::atomic<std::uint64_t>, kStatuses.size() + 1>, kMethodCount + 1>
      requests_{};
  std::atomic<std::int64_t> connections_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::int64_t> polls_{0};
  std::atomic<std::uint64_t> refused_{0};
};

}  // namespace peernet::http
