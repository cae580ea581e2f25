#include "http/client_limits.h"

#include <algorithm>
#include <cmath>

namespace peernet::http {
namespace {
// Above this many tracked addresses, quiet ones are dropped on the next connection.
constexpr std::size_t kSweepAbove = 1024;
}  // namespace

ClientLimits::ClientLimits(std::size_t max_connections, double requests_per_second, double burst)
    : max_connections_(max_connections), rate_(requests_per_second), burst_(std::max(burst, 1.0)) {}

void ClientLimits::refill(Client& client, Time now) const {
  const std::chrono::duration<double> elapsed = now - client.refilled;
  client.tokens = std::min(burst_, client.tokens + elapsed.count() * rate_);
  client.refilled = now;
}

void ClientLimits::sweep(Time now) {
  if (clients_.size() <= kSweepAbove) {
    return;
  }
  // A client with no connection and a full bucket is indistinguishable from a new one.
  for (auto it = clients_.begin(); it != clients_.end();) {
    refill(it->second, now);
    if (it->second.connections == 0 && (rate_ == 0 || it->second.tokens >= burst_)) {
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
}

bool ClientLimits::connect(const std::string& address, Time now) {
  std::lock_guard lock(mutex_);
  sweep(now);
  auto [it, inserted] = clients_.try_emplace(address);
  if (inserted) {
    it->second.tokens = burst_;
    it->second.refilled = now;
  }
  if (max_connections_ != 0 && it->second.connections >= max_connections_) {
    return false;
  }
  ++it->second.connections;
  return true;
}

void ClientLimits::disconnect(const std::string& address, Time now) {
  std::lock_guard lock(mutex_);
  auto it = clients_.find(address);
  if (it == clients_.end() || it->second.connections == 0) {
    return;
  }
  --it->second.connections;
  if (it->second.connections == 0) {
    refill(it->second, now);
    if (rate_ == 0 || it->second.tokens >= burst_) {
      clients_.erase(it);
    }
  }
}

std::chrono::milliseconds ClientLimits::take(const std::string& address, Time now) {
  if (rate_ == 0) {
    return std::chrono::milliseconds{0};
  }
  std::lock_guard lock(mutex_);
  auto [it, inserted] = clients_.try_emplace(address);
  if (inserted) {
    it->second.tokens = burst_;
    it->second.refilled = now;
  }
  auto& client = it->second;
  refill(client, now);
  if (client.tokens >= 1.0) {
    client.tokens -= 1.0;
    return std::chrono::milliseconds{0};
  }
  const double wait_seconds = (1.0 - client.tokens) / rate_;
  // Rounded up to whole milliseconds, less a hair of floating-point noise.
  return std::chrono::milliseconds{
      static_cast<std::int64_t>(std::ceil(wait_seconds * 1000.0 - 1e-6))};
}

std::size_t ClientLimits::tracked() const {
  std::lock_guard lock(mutex_);
  return clients_.size();
}

}  // namespace peernet::http
