#include "cli/serving.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>

#include <spdlog/spdlog.h>

#include "common/id_chars.h"
namespace peernet::cli {
namespace {

namespace fs = std::filesystem;

/// The token kept for `owner`, or "" (none kept, or kept for something else under the same id).
std::string read_token(const fs::path& file, const std::string& owner) {
  std::ifstream in(file);
  std::string kept_owner;
  std::string token;
  std::getline(in, kept_owner);
  std::getline(in, token);
  if (!token.empty() && kept_owner != owner) {
    spdlog::warn("{} holds the token of another server ({}); give this one its own --id",
                 file.string(), kept_owner);
    return {};
  }
  return token;
}

/// Keeps the registration's token readable by its owner alone, so that a restarted server
/// takes its registration over at once.
void write_token(const fs::path& file, const std::string& owner, const std::string& token) {
  std::error_code ignored;
  fs::create_directories(file.parent_path(), ignored);
  const fs::path temporary = file.string() + ".new";
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    spdlog::warn("cannot keep the registration's token in {}: {}", file.string(),
                 std::strerror(errno));
    return;
  }
  const std::string line = owner + "\n" + token + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!written || std::rename(temporary.c_str(), file.c_str()) != 0) {
    spdlog::warn("cannot keep the registration's token in {}", file.string());
  }
}

}  // namespace

std::string host_name() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) {
    return {};
  }
  return host.data();
}

std::string default_server_id(const std::string& prefix, const std::string& name) {
  std::string id = prefix + "-" + host_name() + (name.empty() ? "" : "-" + name);
  for (char& c : id) {
    if (!is_id_char(c)) {
      c = '-';
    }
  }
  id.resize(std::min<std::size_t>(id.size(), 128));
  return id;
}

fs::path default_state_dir() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state != '\0') {
    return fs::path(state) / "peernet";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".local" / "state" / "peernet";
  }
  return {};
}

int run_server(Client& client, const Serving& serving) {
  const fs::path token_file = serving.state_dir.empty()
                                  ? fs::path{}
                                  : serving.state_dir / (serving.server.unique_id() + ".token");
  ServeHandlers handlers;
  handlers.screen = serving.screen;
  handlers.connection = [&serving](const std::shared_ptr<Connection>& connection) {
    const std::string peer = "knock " + connection->knock().unique_id().substr(0, 8);
    spdlog::info("{}: connected", peer);
    serving.attach(connection, peer);
  };
  // Every registration (the first, and each after peernetd restarts) may bring a new token.
  handlers.status = [&client, &token_file, &serving](const std::optional<Error>& error) {
    if (error) {
      spdlog::warn("{} (retrying)", error->what());
      return;
    }
    spdlog::info("registered with peernetd");
    if (!token_file.empty()) {
      write_token(token_file, serving.owner, client.token());
    }
  };
  client.serve(serving.server, std::move(handlers),
               token_file.empty() ? std::string{} : read_token(token_file, serving.owner));
  std::fprintf(stderr, "peernet: %s in room \"%s\" at %s; Ctrl-C stops\n", serving.banner.c_str(),
               client.options().room.c_str(), client.options().daemon.c_str());
  int signal_number = 0;
  while ((signal_number = poll_stop_signal(std::chrono::seconds{1})) == 0) {
    if (const std::string broken = serving.failure ? serving.failure() : ""; !broken.empty()) {
      std::fprintf(stderr, "peernet: %s; withdrawing\n", broken.c_str());
      client.stop_serving();
      return kFailed;
    }
  }
  spdlog::info("signal {}: withdrawing from peernetd", signal_number);
  client.stop_serving();
  return kOk;
}

}  // namespace peernet::cli
