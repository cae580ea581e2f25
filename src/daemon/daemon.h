#pragma once

#include "daemon/config.h"

namespace peernet::daemon {

/// Runs peernetd until SIGTERM or SIGINT, then drains and returns the exit code: 0 after a
/// clean stop, 1 when it could not start (the reason is logged).
int run(const Config& config);

}  // namespace peernet::daemon
