#include "cli/common.h"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <stdexcept>
#include <string_view>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "files/file_client.h"
#include "files/safe_dir.h"
#include "sensors/config.h"
#include "sensors/time_text.h"

namespace peernet::cli {
namespace {

void print(const std::string& message) {
  std::fprintf(stderr, "peernet: %s\n", printable(message).c_str());
}

int report_library_error(const Error& error, const GlobalOptions& options) {
  print(error.what());
  switch (error.code()) {
    case Errc::kUnreachable:
      print("hint: is peernetd running there? Point at it with --daemon URL or PEERNET_DAEMON.");
      return kUnreachable;
    case Errc::kRoomNotFound:
      print(
          "hint: pick the room with --room NAME or PEERNET_ROOM (peernetd's default is "
          "\"default\").");
      return kRoomNotFound;
    case Errc::kNoSuchService:
    case Errc::kNotFound:
      return kNoSuchService;
    case Errc::kRefused:
      return kRefused;
    case Errc::kIceFailed:
    case Errc::kNoAnswer:
      if (options.client.stun_server.empty() && options.client.turn_servers.empty()) {
        print(
            "hint: the peers found no network path to each other. On one network this needs "
            "nothing; across networks give a STUN server (--stun stun://host:3478) and, behind "
            "strict NATs, a TURN relay (--turn turn://user:password@host:3478).");
      } else {
        print(
            "hint: the peers found no network path even with the STUN/TURN servers given; "
            "check that they are reachable from both sides.");
      }
      return kNoRoute;
    case Errc::kInvalid:
      return kUsage;
    case Errc::kDaemon:
    case Errc::kClosed:
      return kFailed;
  }
  return kFailed;
}

int report_transfer_error(const files::TransferError& error) {
  print(error.what());
  const std::string& code = error.code();
  if (code == "read-only" || code == "permission" || code == "busy") {
    return kRefused;
  }
  if (code == "not-found" || code == "exists" || code == "bad-path" || code == "link-outside" ||
      code == "not-a-file" || code == "no-space" || code == "too-many") {
    return kFileRefused;
  }
  return kFailed;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string safe;
  safe.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      static constexpr char kDigits[] = "0123456789abcdef";
      safe += "\\x";
      safe += kDigits[byte >> 4U];
      safe += kDigits[byte & 0xfU];
    } else {
      safe += c;
    }
  }
  return safe;
}

void add_global_options(CLI::App& app, GlobalOptions& options) {
  auto& client = options.client;
  app.add_option("--daemon", client.daemon, "peernetd's address, http(s)://host[:port]")
      ->envname("PEERNET_DAEMON")
      ->capture_default_str();
  app.add_option("--room", client.room, "the room to work in")
      ->envname("PEERNET_ROOM")
      ->capture_default_str();
  app.add_option("--stun", client.stun_server, "a STUN server, stun://host:port (across networks)");
  app.add_option("--turn", client.turn_servers,
                 "a TURN relay, turn://user:password@host:port (repeatable)");
  app.add_option("--tls-ca", client.tls_ca_file, "a PEM file to trust for an https daemon")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-pin", client.tls_pin_sha256,
                 "the SHA-256 fingerprint of an https daemon's certificate");
  app.add_flag("--loopback", client.loopback_only,
               "connect over 127.0.0.1 only (both peers on this machine)");
  app.add_option_function<int>(
         "--connect-timeout",
         [&client](int seconds) { client.connect_timeout = std::chrono::seconds{seconds}; },
         "seconds to wait for an answer and an open connection (default 30)")
      ->check(CLI::Range(1, 3600));
  app.add_flag("-v,--verbose", options.verbosity, "say more (-vv for debugging)");
}

void set_up_logging(int verbosity) {
  auto logger = spdlog::stderr_color_mt("peernet");
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbosity >= 2   ? spdlog::level::debug
                    : verbosity == 1 ? spdlog::level::info
                                     : spdlog::level::warn);
  spdlog::set_pattern(verbosity >= 1 ? "%H:%M:%S.%e %^%l%$ %v" : "peernet: %^%l%$: %v");
}

int report(const std::exception_ptr& error, const GlobalOptions& options) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return report_library_error(e, options);
  } catch (const files::TransferError& e) {
    return report_transfer_error(e);
  } catch (const files::FileError& e) {
    print(e.what());
    return e.code() == files::FileErrc::kIo || e.code() == files::FileErrc::kPermission
               ? kFailed
               : kFileRefused;
  } catch (const CLI::Error& e) {
    print(e.what());  // a flag's value found wrong after parsing
    return kUsage;
  } catch (const sensors::ConfigError& e) {
    print(e.what());
    return kUsage;
  } catch (const std::invalid_argument& e) {
    print(e.what());  // an --alert rule, ...
    return kUsage;
  } catch (const std::exception& e) {
    print(e.what());
    return kFailed;
  }
}

Server choose_server(Client& client, const std::string& protocol, const std::string& version,
                     const std::string& wanted, const std::string& flag) {
  const std::vector<Server> servers = client.find(protocol, version);
  std::vector<Server> matching;
  std::string names;
  for (const Server& server : servers) {
    names += (names.empty() ? "" : ", ") + server.display_name() + " (" + server.unique_id() + ")";
    if (wanted.empty() || server.unique_id() == wanted || server.display_name() == wanted) {
      matching.push_back(server);
    }
  }
  const std::string room = "room \"" + client.options().room + "\"";
  if (matching.size() == 1) {
    return matching.front();
  }
  if (servers.empty()) {
    throw Error(Errc::kNoSuchService, "no server offers " + protocol + " in " + room);
  }
  if (matching.empty()) {
    throw Error(Errc::kNoSuchService, "no " + protocol + " server \"" + wanted + "\" in " + room +
                                          "; there is: " + names);
  }
  throw Error(Errc::kNoSuchService, "several servers offer " + protocol + " in " + room + ": " +
                                        names + "; choose one with " + flag + " NAME");
}

void block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int poll_stop_signal(std::chrono::milliseconds wait) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(wait);
  const timespec timeout{static_cast<time_t>(seconds.count()),
                         static_cast<long>(std::chrono::nanoseconds(wait - seconds).count())};
  const int signal_number = sigtimedwait(&signals, nullptr, &timeout);
  return signal_number > 0 ? signal_number : 0;
}

std::int64_t duration_flag(const std::string& text, const char* flag) {
  const auto duration = sensors::parse_duration(text);
  if (!duration) {
    throw CLI::ValidationError(flag, "\"" + text + "\" is not a duration (90s, 5m, 48h, 30d)");
  }
  return *duration;
}

std::uint64_t bytes_flag(const std::string& text, const char* flag) {
  std::uint64_t number = 0;
  const char* end = text.data() + text.size();
  const auto [rest, error] = std::from_chars(text.data(), end, number);
  const std::string_view unit(rest, static_cast<std::size_t>(end - rest));
  int shift = -1;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GiB") {
    shift = 30;
  } else if (unit == "T" || unit == "TiB") {
    shift = 40;
  }
  if (error != std::errc{} || rest == text.data() || shift < 0 ||
      number > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    throw CLI::ValidationError(flag, "\"" + text + "\" is not a size (500M, 50G, 2T)");
  }
  return number << shift;
}

}  // namespace peernet::cli
