#include "daemon/expiry_timer.h"

#include <boost/asio/post.hpp>

namespace peernet::daemon {

namespace asio = boost::asio;

ExpiryTimer::ExpiryTimer(asio::io_context& io, core::Registry& registry, const core::Clock& clock)
    : registry_(registry), clock_(clock), strand_(asio::make_strand(io)), timer_(strand_) {}

ExpiryTimer::~ExpiryTimer() { registry_.on_deadline_change({}); }

void ExpiryTimer::start() {
  registry_.on_deadline_change([this] { asio::post(strand_, [this] { arm(); }); });
  asio::post(strand_, [this] { arm(); });
}

void ExpiryTimer::stop() {
  registry_.on_deadline_change({});
  asio::post(strand_, [this] {
    stopped_ = true;
    timer_.cancel();
  });
}

void ExpiryTimer::arm() {
  if (stopped_) {
    return;
  }
  const auto next = registry_.next_deadline();
  if (!next) {
    timer_.cancel();
    return;
  }
  // The registry's steady time is std::chrono::steady_clock's, as is the timer's.
  timer_.expires_at(*next);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) {
      return;  // re-armed or stopped
    }
    registry_.expire(clock_.now());
    arm();
  });
}

}  // namespace peernet::daemon
