#include "integration/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace peernet::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kPollInterval{10};
constexpr milliseconds kStartTimeout{10'000};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Starts PEERNETD_PATH with `args`; stdin is /dev/null, stdout and stderr go to `log_path`.
pid_t spawn_peernetd(const std::vector<std::string>& args, const std::filesystem::path& log_path) {
  return spawn(PEERNETD_PATH, args, log_path, log_path);
}

}  // namespace

pid_t spawn(const std::string& program, const std::vector<std::string>& args,
            const std::filesystem::path& out, const std::filesystem::path& err) {
  std::vector<std::string> all{program};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : all) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err == out) {
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  // Whatever the test runner blocks or ignores, the child starts with default signal handling.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    throw std::runtime_error("posix_spawn " + program + ": " + std::strerror(rc));
  }
  return pid;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "peernet-it-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

DaemonProcess::DaemonProcess(const std::vector<std::string>& extra_flags) {
  const auto port_file = dir() / "port";
  std::vector<std::string> args{"--listen",    "127.0.0.1",        "--port",      "0",
                                "--port-file", port_file.string(), "--log-level", "warn"};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  pid_ = spawn_peernetd(args, dir() / "log");
  try {
    wait_for_port(port_file);
  } catch (...) {
    // The destructor of a half-built object does not run: end the process here.
    kill_now();
    throw;
  }
}

void DaemonProcess::wait_for_port(const std::filesystem::path& port_file) {
  const auto give_up = Clock::now() + kStartTimeout;
  while (Clock::now() < give_up) {
    // The daemon writes the file whole and renames it into place, so any content is complete.
    if (std::filesystem::exists(port_file)) {
      port_ = static_cast<std::uint16_t>(std::stoul(read_file(port_file)));
      return;
    }
    if (!running()) {
      throw std::runtime_error("peernetd exited with code " +
                               std::to_string(exit_code_.value_or(-1)) +
                               " before listening; its output:\n" + log());
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  throw std::runtime_error("peernetd wrote no port file within 10 s; its output:\n" + log());
}

DaemonProcess::~DaemonProcess() {
  if (running()) {
    kill_now();
  }
}

std::string DaemonProcess::log() const { return read_file(dir() / "log"); }

bool DaemonProcess::running() {
  if (reaped_) {
    return false;
  }
  int status = 0;
  const pid_t rc = waitpid(pid_, &status, WNOHANG);
  if (rc == 0) {
    return true;
  }
  reaped_ = true;
  if (rc == pid_ && WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
  }
  return false;
}

void DaemonProcess::terminate() {
  if (running()) {
    kill(pid_, SIGTERM);
  }
}

std::optional<int> DaemonProcess::wait_exit(milliseconds timeout) {
  const auto give_up = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= give_up) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return exit_code_;
}

std::optional<int> DaemonProcess::stop(milliseconds timeout) {
  terminate();
  auto code = wait_exit(timeout);
  if (running()) {
    kill_now();
    return std::nullopt;
  }
  return code;
}

void DaemonProcess::kill_now() {
  if (reaped_) {
    return;
  }
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
}

CommandResult run_peernetd(const std::vector<std::string>& args) {
  TempDir dir;
  const auto log_path = dir.path() / "out";
  const pid_t pid = spawn_peernetd(args, log_path);
  CommandResult result;
  const auto give_up = Clock::now() + kStartTimeout;
  int status = 0;
  pid_t rc = 0;
  while ((rc = waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < give_up) {
    std::this_thread::sleep_for(kPollInterval);
  }
  if (rc == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  } else if (rc == pid && WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  result.output = read_file(log_path);
  return result;
}

}  // namespace peernet::testing
