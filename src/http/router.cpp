#include "http/router.h"

#include <array>
#include <optional>

#include <fmt/format.h>

namespace peernet::http {
namespace {

using core::ApiError;

constexpr std::string_view kConnectPrefix = "/peernet.PeerNetService/";

/// One REST route. Path segments in braces capture a value for the request field they name.
struct RestRoute {
  std::string_view verb;
  std::string_view pattern;
  Method method;
  std::string_view body_field;
  /// Query parameter → request field.
  std::array<std::pair<std::string_view, std::string_view>, 2> query;
};

// clang-format off
constexpr std::array<RestRoute, 19> kRestRoutes = {{
    {"POST",   "/rooms",                             Method::kCreateRoom,    "room",    {}},
    {"GET",    "/rooms/{room}",                      Method::kGetRoom,       "",        {}},
    {"DELETE", "/rooms/{room}",                      Method::kDeleteRoom,    "",        {}},
    {"GET",    "/rooms/{room}/servers",              Method::kListServers,   "",        {{{"protocol", "protocol"}, {"version", "version"}}}},
    {"POST",   "/servers",                           Method::kCreateServer,  "server",  {}},
    {"POST",   "/server",                            Method::kCreateServer,  "server",  {}},
    {"GET",    "/servers/{server}",                  Method::kGetServer,     "",        {}},
    {"DELETE", "/servers/{server}",                  Method::kDeleteServer,  "",        {}},
    {"POST",   "/servers/{server}/services",         Method::kCreateService, "service", {}},
    {"PUT",    "/servers/{server}/services/{service.protocol}", Method::kUpdateService, "service", {}},
    {"DELETE", "/servers/{server}/services/{protocol}", Method::kDeleteService, "",     {}},
    {"POST",   "/servers/{server}/knocks",           Method::kCreateKnock,   "knock",   {{{"wait", "wait_seconds"}, {}}}},
    {"GET",    "/servers/{server}/knocks",           Method::kListKnocks,    "",        {{{"wait", "wait_seconds"}, {"since", "since"}}}},
    {"GET",    "/knocks/{knock}",                    Method::kGetKnock,      "",        {{{"wait", "wait_seconds"}, {"since", "since"}}}},
    {"PATCH",  "/knocks/{knock}",                    Method::kUpdateKnock,   "*",       {{{"wait", "next_poll.wait_seconds"}, {"since", "next_poll.since"}}}},
    {"DELETE", "/knocks/{knock}",                    Method::kDeleteKnock,   "",        {}},
    {"GET",    "/healthz",                           Method::kHealth,        "",        {}},
    {"HEAD",   "/healthz",                           Method::kHealth,        "",        {}},
    {"GET",    "/metrics",                           Method::kMetrics,       "",        {}},
}};

constexpr std::array<std::pair<std::string_view, Method>, 15> kRpcNames = {{
    {"CreateRoom", Method::kCreateRoom},       {"GetRoom", Method::kGetRoom},
    {"DeleteRoom", Method::kDeleteRoom},       {"CreateServer", Method::kCreateServer},
    {"GetServer", Method::kGetServer},         {"DeleteServer", Method::kDeleteServer},
    {"ListServers", Method::kListServers},     {"CreateService", Method::kCreateService},
    {"DeleteService", Method::kDeleteService}, {"UpdateService", Method::kUpdateService},
    {"CreateKnock", Method::kCreateKnock},     {"DeleteKnock", Method::kDeleteKnock},
    {"GetKnock", Method::kGetKnock},           {"ListKnocks", Method::kListKnocks},
    {"UpdateKnock", Method::kUpdateKnock},
}};
// clang-format on

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

/// Decodes %XX escapes (and '+' as space in queries). nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) {
        return std::nullopt;
      }
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

/// Splits "/a/b/c" into its segments, still escaped. A trailing slash gives an empty segment,
/// which matches no route.
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') {
    path.remove_prefix(1);
  }
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

/// Matches `path` against a pattern; fills `captured` with the decoded values of brace segments.
/// Returns false when it does not match; sets `bad_escape` when a captured segment is malformed.
bool match(std::string_view pattern, const std::vector<std::string_view>& path,
           std::vector<std::pair<std::string_view, std::string>>& captured, bool& bad_escape) {
  const auto parts = segments(pattern);
  if (parts.size() != path.size()) {
    return false;
  }
  captured.clear();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto part = parts[i];
    if (part.size() > 2 && part.front() == '{' && part.back() == '}') {
      if (path[i].empty()) {
        return false;
      }
      auto value = percent_decode(path[i], false);
      if (!value) {
        bad_escape = true;
        return false;
      }
      captured.emplace_back(part.substr(1, part.size() - 2), std::move(*value));
    } else if (part != path[i]) {
      return false;
    }
  }
  return true;
}

core::Status parse_query(std::string_view query, const RestRoute& rest, Route& out) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (item.empty()) {
      continue;
    }
    const auto eq = item.find('=');
    const auto key = item.substr(0, eq);
    auto value = percent_decode(
        eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1), true);
    if (!value) {
      return ApiError::malformed(fmt::format("query parameter '{}': malformed %-escape", key));
    }
    std::string_view field;
    for (const auto& [name, target] : rest.query) {
      if (!name.empty() && name == key) {
        field = target;
      }
    }
    if (field.empty()) {
      std::string known;
      for (const auto& [name, target] : rest.query) {
        if (!name.empty()) {
          known += known.empty() ? std::string(name) : fmt::format(", {}", name);
        }
      }
      return ApiError::malformed(fmt::format(
          "query parameter '{}' is not taken by {} {} (it takes: {})",
          std::string(key.substr(0, 64)), rest.verb, rest.pattern, known.empty() ? "none" : known));
    }
    for (const auto& [name, existing] : out.params) {
      if (name == field) {
        return ApiError::malformed(fmt::format("query parameter '{}' is given twice", key));
      }
    }
    out.params.emplace_back(field, std::move(*value));
  }
  return core::ok_status();
}

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) {
    return {target, {}};
  }
  return {target.substr(0, q), target.substr(q + 1)};
}

}  // namespace

std::string_view method_name(Method method) {
  for (const auto& [name, m] : kRpcNames) {
    if (m == method) {
      return name;
    }
  }
  return method == Method::kHealth ? "healthz" : "metrics";
}

core::Result<Route> route(std::string_view verb, std::string_view target) {
  const auto [path, query] = split_target(target);

  if (path.substr(0, kConnectPrefix.size()) == kConnectPrefix) {
    const auto name = path.substr(kConnectPrefix.size());
    for (const auto& [rpc, method] : kRpcNames) {
      if (rpc == name) {
        if (verb != "POST") {
          return ApiError{core::ErrorCode::kMethodNotAllowed,
                          fmt::format("{} takes POST, not {}", path, verb)};
        }
        Route r;
        r.method = method;
        r.style = Style::kConnect;
        r.body_field = "*";
        return r;
      }
    }
    return ApiError::not_found(
        fmt::format("PeerNetService has no method '{}'", name.substr(0, 64)));
  }

  const auto parts = segments(path);
  bool path_known = false;
  bool bad_escape = false;
  Route r;
  for (const auto& rest : kRestRoutes) {
    if (!match(rest.pattern, parts, r.params, bad_escape)) {
      continue;
    }
    path_known = true;
    if (rest.verb != verb) {
      continue;
    }
    r.method = rest.method;
    r.style = Style::kRest;
    r.body_field = rest.body_field;
    if (auto s = parse_query(query, rest, r); !s) {
      return s.error();
    }
    return r;
  }
  if (bad_escape) {
    return ApiError::malformed("path: malformed %-escape");
  }
  if (path_known) {
    return ApiError{core::ErrorCode::kMethodNotAllowed,
                    fmt::format("{} does not take {} (it takes {})", path.substr(0, 256),
                                verb.substr(0, 16), allowed_verbs(target))};
  }
  return ApiError::not_found(fmt::format("no route for {}", path.substr(0, 256)));
}

std::string allowed_verbs(std::string_view target) {
  const auto parts = segments(split_target(target).first);
  std::vector<std::pair<std::string_view, std::string>> captured;
  std::string out;
  for (const auto& rest : kRestRoutes) {
    bool bad_escape = false;
    if (match(rest.pattern, parts, captured, bad_escape)) {
      if (out.find(rest.verb) == std::string::npos) {
        out += out.empty() ? std::string(rest.verb) : fmt::format(", {}", rest.verb);
      }
    }
  }
  if (out.empty() &&
      split_target(target).first.substr(0, kConnectPrefix.size()) == kConnectPrefix) {
    out = "POST";
  }
  return out;
}

}  // namespace peernet::http
