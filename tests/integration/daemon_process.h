#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace peernet::testing {

/// Starts `program` with `args`: stdin from /dev/null, stdout to `out` and stderr to `err` (the
/// same file when they are equal), default signal handling. Throws std::runtime_error.
pid_t spawn(const std::string& program, const std::vector<std::string>& args,
            const std::filesystem::path& out, const std::filesystem::path& err);

/// A fresh, empty temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// The real peernetd, started on 127.0.0.1 with an ephemeral port that it reports through a port
/// file in a fresh temporary directory. The process is ours alone: it is only ever signalled by
/// its own PID, and killed if a test leaves it running.
class DaemonProcess {
 public:
  /// Starts peernetd with `extra_flags` after the standard ones and waits (up to 10 s) until it
  /// has written its port. Throws std::runtime_error, with the daemon's log, when it does not.
  explicit DaemonProcess(const std::vector<std::string>& extra_flags = {});
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  /// The temporary directory that holds the port file and the daemon's log.
  const std::filesystem::path& dir() const { return dir_.path(); }
  /// What the daemon printed (stdout and stderr) so far.
  std::string log() const;

  /// Sends SIGTERM and waits up to `timeout` for the exit. Returns the exit code, or nullopt when
  /// the process did not exit in time (it is then killed) or died from a signal.
  std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds{5});
  /// Sends SIGTERM and returns at once; pair with wait_exit().
  void terminate();
  /// Waits up to `timeout` for the process to exit on its own; the exit code, or nullopt.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running();

 private:
  void wait_for_port(const std::filesystem::path& port_file);
  void kill_now();

  TempDir dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::optional<int> exit_code_;
  bool reaped_ = false;
};

/// The outcome of running peernetd to completion (for --help, --version, bad flags).
struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// Runs peernetd with `args` and waits up to 10 s for it to exit.
CommandResult run_peernetd(const std::vector<std::string>& args);

}  // namespace peernet::testing
