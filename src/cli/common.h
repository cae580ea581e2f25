#pragma once

// What every `peernet` subcommand shares: where peernetd is, the room, how to reach peers, how
// loud to be, and how an error becomes a message and an exit status.

#include <chrono>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <peernet/peernet.h>

namespace peernet::cli {

/// The exit statuses, documented in docs/files.md; scripts may rely on them.
enum ExitCode : int {
  kOk = 0,
  kFailed = 1,         ///< anything not below: a disk error, a checksum that never matched
  kUsage = 2,          ///< bad flags or arguments
  kUnreachable = 3,    ///< peernetd cannot be reached
  kRoomNotFound = 4,   ///< no such room on that peernetd
  kNoSuchService = 5,  ///< no matching server or service in the room
  kRefused = 6,        ///< the other side refused (the knock, or the request: read-only, ...)
  kNoRoute = 7,        ///< the peers found no network path (ICE failed) or nobody answered
  kFileRefused = 8,    ///< a file request refused: not found, exists, bad path, link, no space
  kInterrupted = 130,  ///< stopped by Ctrl-C (SIGINT) or SIGTERM
};

struct GlobalOptions {
  ClientOptions client;
  int verbosity = 0;
};

/// --daemon, --room, --stun, --turn, --tls-ca, --tls-pin, --loopback, --connect-timeout, -v;
/// PEERNET_DAEMON and PEERNET_ROOM set the first two.
void add_global_options(CLI::App& app, GlobalOptions& options);

/// Sets spdlog up on stderr for a person: warnings by default, info with -v, debug with -vv.
void set_up_logging(int verbosity);

/// Prints the exception `error` to stderr as a sentence a person can act on (with a hint for
/// ICE failures and unreachable daemons) and returns its exit status.
int report(const std::exception_ptr& error, const GlobalOptions& options);

/// The one server in the room that offers `protocol` and matches `wanted` (its unique id or its
/// display name; empty matches all). Throws Error(kNoSuchService) naming what is there when none
/// does, or when several do (the message lists them, to pick one with `flag`).
Server choose_server(Client& client, const std::string& protocol, const std::string& version,
                     const std::string& wanted, const std::string& flag);

/// `text` (from the other side: a message, a file name) made safe for a terminal: control
/// characters become \xNN, so that nothing the peer sends can drive the terminal.
std::string printable(std::string_view text);

/// `text` as a duration in milliseconds ("90s", "5m", "48h", "30d"); throws CLI::ValidationError
/// naming `flag` when it is not one.
std::int64_t duration_flag(const std::string& text, const char* flag);

/// `text` as a number of bytes ("500M", "50G", "2T", "1048576"; powers of 1024); throws
/// CLI::ValidationError naming `flag` when it is not one.
std::uint64_t bytes_flag(const std::string& text, const char* flag);

/// Blocks SIGINT and SIGTERM in this thread (call before any thread starts, so that every thread
/// inherits the mask); poll_stop_signal then takes them.
void block_stop_signals();
/// The stop signal that arrived within `wait` (after block_stop_signals()), or 0.
int poll_stop_signal(std::chrono::milliseconds wait);

}  // namespace peernet::cli
