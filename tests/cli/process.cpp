#include "cli/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "integration/daemon_process.h"

namespace peernet::testing {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

Process::Process(const std::string& program, const std::vector<std::string>& args,
                 const std::filesystem::path& out, const std::filesystem::path& err)
    : out_(out), err_(err), pid_(spawn(program, args, out, err)) {}

Process::~Process() {
  if (!reaped_) {
    kill_now();
  }
}

bool Process::reap(bool block) {
  if (reaped_) {
    return true;
  }
  int status = 0;
  const pid_t got = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (got != pid_) {
    return false;
  }
  reaped_ = true;
  if (WIFEXITED(status)) {
    status_ = WEXITSTATUS(status);
  }
  return true;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(false)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return status_;
}

bool Process::running() { return !reap(false); }

void Process::signal(int signal_number) {
  if (!reaped_) {
    ::kill(pid_, signal_number);
  }
}

void Process::kill_now() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

std::string Process::out() const { return read_file(out_); }
std::string Process::err() const { return read_file(err_); }

}  // namespace peernet::testing
