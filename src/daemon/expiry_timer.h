#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "core/clock.h"
#include "core/registry.h"

namespace peernet::daemon {

/// Drives the registry's expiry with a single timer, re-armed to the earliest deadline whenever
/// the registry says it moved earlier and after every expiry pass.
class ExpiryTimer {
 public:
  ExpiryTimer(boost::asio::io_context& io, core::Registry& registry, const core::Clock& clock);
  ExpiryTimer(const ExpiryTimer&) = delete;
  ExpiryTimer& operator=(const ExpiryTimer&) = delete;
  ~ExpiryTimer();

  void start();
  void stop();

 private:
  void arm();

  core::Registry& registry_;
  const core::Clock& clock_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
};

}  // namespace peernet::daemon
