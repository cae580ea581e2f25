#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/api_error.h"

namespace peernet::http {

/// Every operation the daemon serves: the RPCs of PeerNetService plus the two plain routes.
enum class Method {
  kCreateRoom,
  kGetRoom,
  kDeleteRoom,
  kCreateServer,
  kGetServer,
  kDeleteServer,
  kListServers,
  kCreateService,
  kDeleteService,
  kUpdateService,
  kCreateKnock,
  kDeleteKnock,
  kGetKnock,
  kListKnocks,
  kUpdateKnock,
  kHealth,
  kMetrics,
};
inline constexpr std::size_t kMethodCount = static_cast<std::size_t>(Method::kMetrics) + 1;

/// The RPC name ("CreateRoom"), or "healthz" / "metrics".
std::string_view method_name(Method method);

/// How the request reached the method.
enum class Style { kRest, kConnect };

/// A matched request: the method and the values the path and query carry, each named by the
/// request message field it fills ("room", "server", "wait_seconds", "next_poll.since", ...).
struct Route {
  Method method = Method::kHealth;
  Style style = Style::kRest;
  /// For REST: the request field the body fills ("server" for CreateServer), "*" for the whole
  /// request, empty for none. Connect bodies are always the whole request.
  std::string_view body_field;
  std::vector<std::pair<std::string_view, std::string>> params;
};

/// Maps an HTTP method and request target to a route. A pure table: no sockets, no state.
/// Errors: 404 for an unknown path, 405 for a known path with another method, 400 for a query
/// parameter the route does not take or a malformed percent-escape.
core::Result<Route> route(std::string_view verb, std::string_view target);

/// The methods a path accepts, for the Allow header of a 405 ("GET, DELETE").
std::string allowed_verbs(std::string_view target);

}  // namespace peernet::http
