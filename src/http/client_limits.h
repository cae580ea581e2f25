#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace peernet::http {

/// Per-client-address limits: open connections, and requests per second as a token bucket.
/// Addresses are compared as text ("192.0.2.7", "2001:db8::1"). Time is passed in, so tests
/// drive it by hand.
class ClientLimits {
 public:
  using Time = std::chrono::steady_clock::time_point;

  /// `requests_per_second` 0 disables the rate limit; `max_connections` 0 the connection limit.
  ClientLimits(std::size_t max_connections, double requests_per_second, double burst);

  /// Counts a new connection; false (and nothing counted) when the address is at its limit.
  bool connect(const std::string& address, Time now);
  void disconnect(const std::string& address, Time now);

  /// Takes one request from the address's bucket. Returns zero when allowed, else how long until
  /// a request would be (for Retry-After).
  std::chrono::milliseconds take(const std::string& address, Time now);

  /// Addresses tracked (for tests: entries of quiet addresses are dropped).
  std::size_t tracked() const;

 private:
  struct Client {
    std::size_t connections = 0;
    double tokens = 0;
    Time refilled;
  };
  void refill(Client& client, Time now) const;
  void sweep(Time now);

  const std::size_t max_connections_;
  const double rate_;
  const double burst_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Client> clients_;
};

}  // namespace peernet::http
