#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/fixtures.h"
#include "integration/http_client.h"

namespace peernet::testing {

/// What a snapshot looks at. Rooms are read through their public listing, servers and knocks with
/// a token that may read them. Reading must change nothing, so read an answered knock with its
/// server's token: a knocker's own read of the outcome starts the knock's linger.
struct Observed {
  std::vector<std::string> rooms;
  std::vector<Handle> servers;
  std::vector<Handle> knocks;
};

/// The daemon's observable state as far as `Observed` reaches: the status and JSON body of each
/// read (GET /rooms/{room}/servers, GET /servers/{id}, GET /knocks/{id}), without the fields that
/// move by themselves (expire_time, revision), and the peernetd_rooms, peernetd_servers and
/// peernetd_knocks gauges of /metrics.
struct StateSnapshot {
  /// "GET /servers/cam" -> {"status": 200, "body": {...}}; "metrics" -> the three gauges.
  std::map<std::string, nlohmann::json> views;

  bool operator==(const StateSnapshot&) const = default;
};

StateSnapshot take_snapshot(HttpClient& http, const Observed& observed);

/// Success when `after` shows the same state as `before`; otherwise names every view that
/// differs, with both versions.
::testing::AssertionResult same_state(const StateSnapshot& before, const StateSnapshot& after);

/// A room of one's own with a server in it (one service, peernet.camera version 1, the longest
/// TTL so it outlives the test) and a pending knock on that server.
struct Scene {
  Handle room;
  Handle server;
  Handle knock;

  /// The room, the server, and the knock read with the server's token.
  Observed observed() const;
};

/// Builds a Scene whose ids start with `prefix`; throws when the daemon refuses any step.
Scene make_scene(HttpClient& http, std::string_view prefix);

/// Registers a server in `room` with one peernet.camera service and the longest TTL (300 s).
Handle register_long_lived_server(HttpClient& http, std::string_view id, std::string_view room);

}  // namespace peernet::testing
