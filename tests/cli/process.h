#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <peernet/peernet.h>

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

/// What a finished command said.
struct Outcome {
  std::optional<int> status;  ///< nullopt when it did not finish in time
  std::string out;
  std::string err;
};

/// Runs the peernet command against one peernetd on loopback (with its global options), each
/// process's output in files of its own under `logs`.
class PeernetRunner {
 public:
  PeernetRunner(int daemon_port, std::filesystem::path logs)
      : daemon_port_(daemon_port), logs_(std::move(logs)) {}

  std::unique_ptr<Process> start(const std::vector<std::string>& args);
  /// Runs it to the end, failing the test when it takes longer than `timeout`.
  Outcome run(const std::vector<std::string>& args,
              std::chrono::seconds timeout = std::chrono::seconds{60});

 private:
  int daemon_port_;
  std::filesystem::path logs_;
  int started_ = 0;
};

/// Waits for `done` up to `timeout`, failing the test (with what `process` printed) if it never
/// holds. Returns whether it did.
template <typename Done>
bool wait_for(const Process& process, Done done, const std::string& what,
              std::chrono::seconds timeout = std::chrono::seconds{20}) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "timed out waiting for " << what << "\nstdout:\n"
                    << process.out() << "\nstderr:\n"
                    << process.err();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return true;
}

/// Options for a libpeernet client of the peernetd on `daemon_port`, over 127.0.0.1 only.
ClientOptions loopback_client(int daemon_port);

/// The servers of `client`'s room offering `protocol`, once there is one; fails the test
/// (saying what `process` printed) when none comes within 15 s.
std::vector<Server> wait_for_servers(Client& client, const std::string& protocol,
                                     const Process& process);

}  // namespace peernet::testing
