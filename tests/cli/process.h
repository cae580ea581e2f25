#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace peernet::testing {

/// A child process of the test: stdin from /dev/null, stdout and stderr to files of its own.
/// Signalled only by its own PID; killed and reaped on destruction if still running.
class Process {
 public:
  Process(const std::string& program, const std::vector<std::string>& args,
          const std::filesystem::path& out, const std::filesystem::path& err);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  /// Waits up to `timeout`; the exit status, or nullopt if still running or killed by a signal.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  void signal(int signal_number);
  /// Kills it (SIGKILL) and reaps it.
  void kill_now();
  std::string out() const;
  std::string err() const;

 private:
  bool reap(bool block);

  std::filesystem::path out_;
  std::filesystem::path err_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<int> status_;
};

}  // namespace peernet::testing
