#include "integration/state_snapshot.h"

#include <array>
#include <sstream>
#include <stdexcept>

namespace peernet::testing {
namespace {

constexpr std::array<std::string_view, 3> kGauges = {"peernetd_rooms", "peernetd_servers",
                                                     "peernetd_knocks"};

/// Drops, at any depth, the fields whose values change with time alone.
void drop_moving_fields(json& value) {
  if (value.is_object()) {
    value.erase("expire_time");
    value.erase("revision");
    for (auto& [key, item] : value.items()) {
      drop_moving_fields(item);
    }
  } else if (value.is_array()) {
    for (auto& item : value) {
      drop_moving_fields(item);
    }
  }
}

json view_of(const Response& response) {
  json body = response.json();
  drop_moving_fields(body);
  return {{"status", response.status}, {"body", std::move(body)}};
}

/// The three gauges from one /metrics page (unlike metric(), which fetches a page per name).
json gauges(HttpClient& http) {
  const auto page = http.request("GET", "/metrics");
  if (page.status != 200) {
    throw std::runtime_error("GET /metrics: " + std::to_string(page.status));
  }
  json out = json::object();
  std::istringstream lines(page.body);
  std::string line;
  while (std::getline(lines, line)) {
    for (const auto name : kGauges) {
      if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
          line[name.size()] == ' ') {
        out[std::string(name)] = std::stod(line.substr(name.size() + 1));
      }
    }
  }
  return out;
}

}  // namespace

StateSnapshot take_snapshot(HttpClient& http, const Observed& observed) {
  StateSnapshot snapshot;
  auto read = [&](const std::string& target, std::string_view token) {
    snapshot.views["GET " + target] = view_of(http.request("GET", target, {}, auth(token)));
  };
  for (const auto& room : observed.rooms) {
    read("/rooms/" + room + "/servers", {});
  }
  for (const auto& server : observed.servers) {
    read("/servers/" + server.id, server.token);
  }
  for (const auto& knock : observed.knocks) {
    read("/knocks/" + knock.id, knock.token);
  }
  snapshot.views["metrics"] = gauges(http);
  return snapshot;
}

::testing::AssertionResult same_state(const StateSnapshot& before, const StateSnapshot& after) {
  if (before == after) {
    return ::testing::AssertionSuccess();
  }
  auto failure = ::testing::AssertionFailure() << "the daemon's state changed:";
  for (const auto& [name, view] : before.views) {
    const auto now = after.views.find(name);
    if (now == after.views.end() || now->second != view) {
      failure << "\n  " << name << "\n    before: " << view.dump()
              << "\n    after:  " << (now == after.views.end() ? "(missing)" : now->second.dump());
    }
  }
  return failure;
}

Observed Scene::observed() const {
  return Observed{{room.id}, {server}, {Handle{knock.id, server.token}}};
}

Handle register_long_lived_server(HttpClient& http, std::string_view id, std::string_view room) {
  return register_server(
      http, {{"unique_id", id},
             {"room", room},
             {"display_name", "as registered"},
             {"ttl_seconds", 300},
             {"services", json::array({{{"protocol", "peernet.camera"}, {"version", "1"}}})}});
}

Scene make_scene(HttpClient& http, std::string_view prefix) {
  Scene scene;
  scene.room = create_room(http, unique_id(std::string(prefix) + "-room"));
  scene.server =
      register_long_lived_server(http, unique_id(std::string(prefix) + "-srv"), scene.room.id);
  scene.knock = create_knock(http, scene.server.id);
  return scene;
}

}  // namespace peernet::testing
