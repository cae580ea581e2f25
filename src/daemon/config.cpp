#include "daemon/config.h"

#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <toml++/toml.h>

#include "daemon/version.h"
#include "http/tls.h"

namespace peernet::daemon {
namespace {

/// One option: its name in the file (flags use dashes), what it does, and where it goes.
struct Option {
  std::string_view name;
  std::string_view help;
  std::variant<std::string*, std::uint16_t*, unsigned*, std::size_t*, std::chrono::seconds*, bool*>
      target;
};

std::vector<Option> options(Config& c) {
  auto& h = c.http;
  auto& r = c.registry;
  return {
      {"listen", "address to listen on (\"::\" is every IPv6 and IPv4 address)", &c.listen},
      {"port", "TCP port (0 picks a free one)", &c.port},
      {"port_file", "write the bound port to this file once listening", &c.port_file},
      {"threads", "event-loop threads (0: one per core)", &c.threads},
      {"log_level", "trace, debug, info, warn, error, critical or off", &c.log_level},
      {"drain_timeout", "seconds SIGTERM waits for in-flight requests", &c.drain_timeout},
      {"tls_mode", "off, optional (HTTPS and HTTP on the same port) or required (HTTPS only)",
       &c.tls_mode},
      {"tls_certificate", "PEM certificate chain (empty: a self-signed one, generated and kept)",
       &c.tls_certificate},
      {"tls_private_key", "PEM private key of tls_certificate", &c.tls_private_key},
      {"state_directory", "where the generated certificate is kept", &c.state_directory},
      {"max_body_bytes", "largest request body", &h.max_body_bytes},
      {"max_header_bytes", "largest request header block", &h.max_header_bytes},
      {"request_timeout", "seconds to receive a whole request", &h.request_timeout},
      {"idle_timeout", "seconds a kept-alive connection may idle", &h.idle_timeout},
      {"write_timeout", "seconds to send a response", &h.write_timeout},
      {"max_wait", "longest long-poll in seconds (longer waits are cut)", &h.max_wait},
      {"max_connections", "open connections at once", &h.max_connections},
      {"max_connections_per_client", "open connections from one client address",
       &h.max_connections_per_client},
      {"requests_per_second", "requests a second from one client address, on average (0: no limit)",
       &h.requests_per_second},
      {"request_burst", "requests from one client address in a burst", &h.request_burst},
      {"limit_loopback", "apply the per-client limits to loopback clients too", &h.limit_loopback},
      {"max_target_bytes", "longest request target (path and query)", &h.max_target_bytes},
      {"max_waiters", "long-polls waiting at once", &h.max_waiters},
      {"default_room", "room of servers that name none (empty: rooms are required)",
       &r.default_room},
      {"server_ttl", "seconds a server lives without polling, unless it asks otherwise",
       &r.server_ttl_default},
      {"server_ttl_min", "shortest TTL a server may ask for", &r.server_ttl_min},
      {"server_ttl_max", "longest TTL a server may ask for", &r.server_ttl_max},
      {"knock_ttl", "seconds a knock may wait for its answer", &r.knock_ttl},
      {"knock_linger", "seconds a finished knock stays for late ICE candidates", &r.knock_linger},
      {"max_rooms", "rooms in the daemon", &r.max_rooms},
      {"max_servers", "servers in the daemon", &r.max_servers},
      {"max_servers_per_room", "servers in one room", &r.max_servers_per_room},
      {"max_services_per_server", "services of one server", &r.max_services_per_server},
      {"max_pending_knocks_per_server", "unanswered knocks on one server",
       &r.max_pending_knocks_per_server},
      {"max_candidates_per_side", "ICE candidates each side may add to a knock",
       &r.max_candidates_per_side},
      {"max_candidate_bytes", "bytes of one ICE candidate", &r.max_candidate_bytes},
      {"max_sdp_bytes", "bytes of one SDP offer or answer", &r.max_sdp_bytes},
      {"max_text_bytes", "bytes of a display name or rejection reason", &r.max_text_bytes},
      {"max_id_length", "characters of a room, server or protocol id", &r.max_id_length},
      {"max_service_bytes", "bytes of one service with its extension fields, encoded",
       &r.max_service_bytes},
  };
}

template <typename Int>
std::optional<std::string> parse_int(std::string_view name, std::string_view text, Int& out) {
  Int value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) {
    return fmt::format("{}: '{}' is not a whole number in range", name, text);
  }
  out = value;
  return std::nullopt;
}

/// Stores `text` into the option; an error message when it does not fit.
std::optional<std::string> assign(const Option& option, std::string_view text) {
  return std::visit(
      [&](auto* target) -> std::optional<std::string> {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *target = std::string(text);
          return std::nullopt;
        } else if constexpr (std::is_same_v<T, bool>) {
          if (text == "true" || text == "1") {
            *target = true;
          } else if (text == "false" || text == "0") {
            *target = false;
          } else {
            return fmt::format("{}: '{}' is not true or false", option.name, text);
          }
          return std::nullopt;
        } else if constexpr (std::is_same_v<T, std::chrono::seconds>) {
          std::uint32_t seconds = 0;
          auto error = parse_int(option.name, text, seconds);
          if (!error) {
            *target = std::chrono::seconds{seconds};
          }
          return error;
        } else {
          return parse_int(option.name, text, *target);
        }
      },
      option.target);
}

std::string current(const Option& option) {
  return std::visit(
      [](auto* target) -> std::string {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<T, std::string>) {
          std::string quoted = "\"";
          for (char c : *target) {
            if (c == '"' || c == '\\') {
              quoted += '\\';
            }
            quoted += c;
          }
          return quoted + '"';
        } else if constexpr (std::is_same_v<T, bool>) {
          return *target ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::chrono::seconds>) {
          return std::to_string(target->count());
        } else {
          return std::to_string(*target);
        }
      },
      option.target);
}

std::optional<std::string> load_file(const std::string& path, Config& config) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return fmt::format("{}:{}:{}: {}", path, e.source().begin.line, e.source().begin.column,
                       e.description());
  }
  auto all = options(config);
  for (const auto& entry : table) {
    // Named, not a structured binding: clang 14 cannot capture bindings in the lambda below.
    const auto& key = entry.first;
    const auto& node = entry.second;
    auto it =
        std::find_if(all.begin(), all.end(), [&](const Option& o) { return o.name == key.str(); });
    if (it == all.end()) {
      return fmt::format("{}: unknown option '{}' (peernetd --help lists them)", path, key.str());
    }
    std::string text;
    if (const auto* s = node.as_string()) {
      text = s->get();
    } else if (const auto* i = node.as_integer()) {
      text = std::to_string(i->get());
    } else if (const auto* b = node.as_boolean();
               b != nullptr && std::holds_alternative<bool*>(it->target)) {
      text = b->get() ? "true" : "false";
    } else {
      return fmt::format(
          "{}: option '{}' must be a string, a whole number or (for switches) true or false", path,
          key.str());
    }
    if (auto error = assign(*it, text)) {
      return fmt::format("{}: {}", path, *error);
    }
  }
  return std::nullopt;
}

std::string flag_of(std::string_view name) {
  std::string flag = fmt::format("--{}", name);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

}  // namespace

std::vector<std::string> option_names() {
  Config scratch;
  std::vector<std::string> names;
  for (const auto& o : options(scratch)) {
    names.emplace_back(o.name);
  }
  return names;
}

std::string to_toml(const Config& config) {
  Config copy = config;
  std::string out = "# peernetd configuration (TOML). Every option, with its value.\n";
  for (const auto& o : options(copy)) {
    fmt::format_to(std::back_inserter(out), "\n# {}\n{} = {}\n", o.help, o.name, current(o));
  }
  return out;
}

Invocation parse_command_line(int argc, const char* const* argv) {
  Invocation result;
  Config defaults;
  CLI::App app{
      "peernetd: the PeerNet signaling daemon. Brokers WebRTC connections between the "
      "programs of a home network (or anywhere) over HTTP, in JSON or protobuf.",
      "peernetd"};
  app.set_version_flag("--version", std::string("peernetd ") + std::string(kVersion));
  std::string config_path;
  bool print_config = false;
  app.add_option("-c,--config", config_path,
                 "read options from this TOML file (flags override it)");
  app.add_flag("--print-config", print_config, "print the effective configuration and exit");
  auto all = options(defaults);
  std::vector<std::string> flag_values(all.size());
  std::vector<CLI::Option*> flags;
  for (std::size_t i = 0; i < all.size(); ++i) {
    // The last of repeated flags wins, as in most command lines (scripts append overrides).
    flags.push_back(app.add_option(flag_of(all[i].name), flag_values[i],
                                   fmt::format("{} (default {})", all[i].help, current(all[i])))
                        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream out;
    std::ostringstream err;
    result.exit_code = app.exit(e, out, err);
    result.output = out.str() + err.str();
    return result;
  }

  if (!config_path.empty()) {
    if (auto error = load_file(config_path, result.config)) {
      result.output = fmt::format("peernetd: {}\n", *error);
      result.exit_code = 2;
      return result;
    }
  }
  auto targets = options(result.config);
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (flags[i]->count() > 0) {
      if (auto error = assign(targets[i], flag_values[i])) {
        result.output = fmt::format("peernetd: {}\n", *error);
        result.exit_code = 2;
        return result;
      }
    }
  }
  if (!http::parse_tls_mode(result.config.tls_mode)) {
    result.output = fmt::format("peernetd: tls_mode: '{}' is not off, optional or required\n",
                                result.config.tls_mode);
    result.exit_code = 2;
    return result;
  }
  const auto& reg = result.config.registry;
  if (reg.server_ttl_min > reg.server_ttl_default || reg.server_ttl_default > reg.server_ttl_max) {
    result.output = "peernetd: server_ttl must lie between server_ttl_min and server_ttl_max\n";
    result.exit_code = 2;
    return result;
  }
  if (print_config) {
    result.output = to_toml(result.config);
  }
  return result;
}

}  // namespace peernet::daemon
