#pragma once

// What every `peernet ... serve` shares: a stable server id, where the registration's token is
// kept, and the loop that registers, answers knocks and withdraws on Ctrl-C.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <peernet/peernet.h>

#include "cli/common.h"

namespace peernet::cli {

/// This machine's name, or "" when it has none.
std::string host_name();

/// An id peernetd accepts (A-Z a-z 0-9 . _ ~ -, at most 128): "PREFIX-HOST-NAME" (or
/// "PREFIX-HOST" with no name), stable for one thing served on one machine.
std::string default_server_id(const std::string& prefix, const std::string& name);

/// $XDG_STATE_HOME/peernet, else ~/.local/state/peernet; empty when neither is known.
std::filesystem::path default_state_dir();

/// What `run_server` serves.
struct Serving {
  Server server;                    ///< id, display name, services
  std::filesystem::path state_dir;  ///< where the token is kept (empty: not kept)
  std::string owner;                ///< what the token belongs to (the folder served, ...)
  /// Each accepted connection, on the client's thread; keep it for as long as it serves.
  std::function<void(const std::shared_ptr<Connection>&, const std::string& peer)> attach;
  /// Printed once registered, on stderr: "peernet: sharing ... ; Ctrl-C stops".
  std::string banner;
  /// Decides on each knock (default: accept).
  std::function<Verdict(const Knock&)> screen;
  /// Checked every second: a non-empty answer (what broke: a camera unplugged) withdraws the
  /// server and ends run_server with kFailed.
  std::function<std::string()> failure;
};

/// Registers `serving.server` (taking over the kept registration at once after a restart),
/// answers knocks until SIGINT or SIGTERM, then withdraws. Call block_stop_signals() first, before
/// any thread starts. Returns the exit status.
int run_server(Client& client, const Serving& serving);

}  // namespace peernet::cli
