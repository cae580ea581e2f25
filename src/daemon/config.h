#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/limits.h"
#include "http/server.h"

namespace peernet::daemon {

/// Everything peernetd can be told. Defaults are the values below; a config file (TOML)
/// overrides them, and command-line flags override the file.
struct Config {
  /// Address to listen on. "::" (every IPv6 and IPv4 address) because a signaling daemon on a
  /// home box exists to be reached from the LAN; a firewall or `listen = "127.0.0.1"` narrows it.
  std::string listen = "::";
  std::uint16_t port = 8470;
  /// When set, the bound port is written here once listening (for tests and scripts: port 0).
  std::string port_file;
  /// Threads running the event loop; 0 means one per core.
  unsigned threads = 0;
  /// trace, debug, info, warn, error, critical or off.
  std::string log_level = "info";
  /// How long SIGTERM waits for in-flight requests before exiting anyway.
  std::chrono::seconds drain_timeout{5};

  /// "off", "optional" (HTTPS and HTTP on the same port) or "required" (HTTPS only).
  std::string tls_mode = "off";
  /// PEM certificate chain and private key; both empty: a self-signed pair kept in
  /// <state_directory>/tls/, made on first start.
  std::string tls_certificate;
  std::string tls_private_key;
  /// Where peernetd keeps what must survive a restart (the generated certificate).
  std::string state_directory = "/var/lib/peernet";

  http::HttpLimits http;
  core::RegistryLimits registry;
};

/// What the command line asked for.
struct Invocation {
  Config config;
  /// When set, print this and exit with `exit_code` (help, version, errors, --print-config).
  std::optional<std::string> output;
  int exit_code = 0;
};

/// Reads flags and the config file they name. Never throws; errors come back as output with a
/// non-zero exit code.
Invocation parse_command_line(int argc, const char* const* argv);

/// The effective configuration as a TOML file that would reproduce it.
std::string to_toml(const Config& config);

/// The names of every option (as in the config file), for tests that check the documentation.
std::vector<std::string> option_names();

}  // namespace peernet::daemon
