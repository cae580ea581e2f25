#include "cli/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

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

std::unique_ptr<Process> PeernetRunner::start(const std::vector<std::string>& args) {
  std::vector<std::string> all{"--daemon", "http://127.0.0.1:" + std::to_string(daemon_port_),
                               "--loopback", "--connect-timeout", "10"};
  all.insert(all.end(), args.begin(), args.end());
  const std::string name = "p" + std::to_string(++started_);
  return std::make_unique<Process>(PEERNET_PATH, all, logs_ / (name + ".out"),
                                   logs_ / (name + ".err"));
}

Outcome PeernetRunner::run(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  auto process = start(args);
  Outcome outcome;
  outcome.status = process->wait(timeout);
  if (!outcome.status && process->running()) {
    ADD_FAILURE() << "peernet did not finish in " << timeout.count() << " s";
  }
  process->kill_now();
  outcome.out = process->out();
  outcome.err = process->err();
  return outcome;
}

ClientOptions loopback_client(int daemon_port) {
  ClientOptions options;
  options.daemon = "http://127.0.0.1:" + std::to_string(daemon_port);
  options.loopback_only = true;
  options.connect_timeout = std::chrono::seconds{10};
  return options;
}

std::vector<Server> wait_for_servers(Client& client, const std::string& protocol,
                                     const Process& process) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{15};
  std::vector<Server> servers;
  while ((servers = client.find(protocol)).empty()) {
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "no " << protocol << " server came:\n" << process.err();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return servers;
}

}  // namespace peernet::testing
