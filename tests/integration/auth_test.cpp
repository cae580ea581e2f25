// Bearer tokens: every route that needs one refuses anything but the right one, changes nothing
// when it refuses, and no token is ever shown to anyone but its owner.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

/// Rooms, servers and knocks with their tokens, plus tokens of things deleted since.
struct World {
  std::string room;
  Handle room_a, room_b, server_1, server_2, knock_1, knock_2;
  std::string deleted_server, deleted_knock, deleted_room;

  explicit World(HttpClient& http) {
    room = unique_id("auth-room");
    room_a = create_room(http, room);
    room_b = create_room(http, unique_id("auth-other-room"));
    auto server_in_room = [&](std::string_view name) {
      return register_server(
          http, {{"unique_id", unique_id(name)},
                 {"room", room},
                 {"display_name", "as registered"},
                 {"services", json::array({{{"protocol", "peernet.camera"}, {"version", "1"}}})}});
    };
    server_1 = server_in_room("auth-srv");
    server_2 = server_in_room("auth-srv");
    knock_1 = create_knock(http, server_1.id);
    knock_2 = create_knock(http, server_2.id);

    const auto gone = server_in_room("auth-gone");
    expect_ok(http.request("DELETE", "/servers/" + gone.id, {}, auth(gone.token)));
    deleted_server = gone.token;
    const auto withdrawn = create_knock(http, server_1.id);
    expect_ok(http.request("DELETE", "/knocks/" + withdrawn.id, {}, auth(withdrawn.token)));
    deleted_knock = withdrawn.token;
    const auto closed = create_room(http, unique_id("auth-gone-room"));
    expect_ok(http.request("DELETE", "/rooms/" + closed.id, {}, auth(closed.token)));
    deleted_room = closed.token;
  }

  static void expect_ok(const Response& response) {
    ASSERT_EQ(response.status, 200) << response.body;
  }

  std::vector<std::string> live_tokens() const {
    return {room_a.token,   room_b.token,  server_1.token,
            server_2.token, knock_1.token, knock_2.token};
  }
};

/// One protected request and the tokens it takes.
struct Guarded {
  std::string name;
  std::string verb;
  std::string target;
  std::string body;
  std::vector<std::string> accepted;
};

/// Authorization headers that carry no usable token, and the tokens that are not `accepted`.
std::vector<std::pair<std::string, Headers>> refused_credentials(const World& w,
                                                                 const Guarded& route) {
  std::vector<std::pair<std::string, Headers>> out = {
      {"no Authorization", {}},
      {"Basic scheme", {{"Authorization", "Basic " + w.server_1.token}}},
      {"empty bearer", {{"Authorization", "Bearer "}}},
      {"made-up token", auth("not-a-token-at-all")},
      {"deleted server's token", auth(w.deleted_server)},
      {"withdrawn knock's token", auth(w.deleted_knock)},
      {"deleted room's token", auth(w.deleted_room)},
  };
  const std::vector<std::pair<std::string, std::string>> named = {
      {"room A's token", w.room_a.token},     {"room B's token", w.room_b.token},
      {"server 1's token", w.server_1.token}, {"server 2's token", w.server_2.token},
      {"knock 1's token", w.knock_1.token},   {"knock 2's token", w.knock_2.token},
  };
  for (const auto& [name, token] : named) {
    if (std::find(route.accepted.begin(), route.accepted.end(), token) == route.accepted.end()) {
      out.emplace_back(name, auth(token));
    }
  }
  return out;
}

using AuthTest = DaemonTest;

TEST_F(AuthTest, EveryGuardedRouteRefusesEveryOtherTokenAndChangesNothing) {
  const World w(http());
  ASSERT_FALSE(HasFatalFailure());
  const auto server = "/servers/" + w.server_1.id;
  const auto knock = "/knocks/" + w.knock_1.id;
  const std::vector<std::string> server_only{w.server_1.token};
  const std::vector<std::string> either_side{w.knock_1.token, w.server_1.token};
  const std::vector<Guarded> routes = {
      {"DeleteRoom", "DELETE", "/rooms/" + w.room, "", {w.room_a.token}},
      {"GetServer", "GET", server, "", server_only},
      {"DeleteServer", "DELETE", server, "", server_only},
      {"CreateService", "POST", server + "/services", R"({"protocol": "peernet.file"})",
       server_only},
      {"UpdateService", "PUT", server + "/services/peernet.camera", R"({"version": "9"})",
       server_only},
      {"DeleteService", "DELETE", server + "/services/peernet.camera", "", server_only},
      {"ListKnocks", "GET", server + "/knocks", "", server_only},
      {"GetKnock", "GET", knock, "", either_side},
      {"UpdateKnock (candidate)", "PATCH", knock, R"({"ice_candidates": [{"candidate": "x"}]})",
       either_side},
      {"UpdateKnock (answer)", "PATCH", knock, R"({"answer": "v=0 answer"})", server_only},
      {"UpdateKnock (next poll)", "PATCH", knock + "?wait=1", "{}", server_only},
      {"DeleteKnock", "DELETE", knock, "", either_side},
  };
  for (const auto& route : routes) {
    for (const auto& [what, headers] : refused_credentials(w, route)) {
      const auto response = http().request(route.verb, route.target, route.body, headers);
      EXPECT_TRUE(is_error(response, 401, "unauthenticated", "token"))
          << route.name << " with " << what;
    }
  }

  // Nothing changed.
  EXPECT_EQ(http().request("GET", "/rooms/" + w.room).status, 200);
  EXPECT_TRUE(is_listed(http(), w.room, w.server_1.id));
  EXPECT_TRUE(is_listed(http(), w.room, w.server_2.id));
  const auto server_now = http().request("GET", server, {}, auth(w.server_1.token));
  ASSERT_EQ(server_now.status, 200);
  EXPECT_EQ(server_now.json()["server"]["services"],
            json::parse(R"([{"protocol": "peernet.camera", "version": "1"}])"));
  const auto knock_now = http().request("GET", knock, {}, auth(w.server_1.token));
  ASSERT_EQ(knock_now.status, 200);
  EXPECT_EQ(knock_now.json()["state"], "KNOCK_STATE_PENDING");
  EXPECT_FALSE(knock_now.json().contains("ice_candidates")) << knock_now.body;
  EXPECT_FALSE(knock_now.json().contains("server_ice_candidates")) << knock_now.body;
  EXPECT_FALSE(knock_now.json().contains("answer")) << knock_now.body;
}

TEST_F(AuthTest, ConnectRoutesRefuseWrongTokensToo) {
  const World w(http());
  ASSERT_FALSE(HasFatalFailure());
  const auto call = [&](std::string_view method, const json& request, std::string_view token) {
    return http().json("POST", "/peernet.PeerNetService/" + std::string(method), request,
                       json_headers(token));
  };
  EXPECT_TRUE(is_error(call("GetServer", {{"server", w.server_1.id}}, ""), 401, "unauthenticated",
                       "token"));
  EXPECT_TRUE(is_error(call("GetServer", {{"server", w.server_1.id}}, w.server_2.token), 401,
                       "unauthenticated", "token"));
  EXPECT_TRUE(
      is_error(call("UpdateKnock", {{"knock", w.knock_1.id}, {"answer", "x"}}, w.knock_2.token),
               401, "unauthenticated", "token"));
  EXPECT_TRUE(is_error(call("DeleteRoom", {{"room", w.room}}, w.server_1.token), 401,
                       "unauthenticated", "token"));
  EXPECT_EQ(call("GetServer", {{"server", w.server_1.id}}, w.server_1.token).status, 200);
}

TEST_F(AuthTest, TokenOfADeletedThingDoesNotOpenItsSuccessor) {
  const auto id = unique_id("reborn");
  const auto before = register_server(http(), {{"unique_id", id}});
  ASSERT_EQ(http().request("DELETE", "/servers/" + id, {}, auth(before.token)).status, 200);
  const auto after = register_server(http(), {{"unique_id", id}, {"display_name", "new owner"}});
  ASSERT_NE(before.token, after.token);
  EXPECT_TRUE(is_error(http().request("GET", "/servers/" + id, {}, auth(before.token)), 401,
                       "unauthenticated", id));
  EXPECT_TRUE(is_error(http().request("DELETE", "/servers/" + id, {}, auth(before.token)), 401,
                       "unauthenticated", id));
  EXPECT_TRUE(is_listed(http(), "default", id));

  const auto room_id = unique_id("reborn-room");
  const auto old_room = create_room(http(), room_id);
  ASSERT_EQ(http().request("DELETE", "/rooms/" + room_id, {}, auth(old_room.token)).status, 200);
  create_room(http(), room_id);
  EXPECT_TRUE(is_error(http().request("DELETE", "/rooms/" + room_id, {}, auth(old_room.token)), 401,
                       "unauthenticated", room_id));
  EXPECT_EQ(http().request("GET", "/rooms/" + room_id).status, 200);
}

TEST_F(AuthTest, TakingALiveServerIdWithoutItsTokenIsAConflict) {
  const auto owner =
      register_server(http(), {{"unique_id", unique_id("owned")}, {"display_name", "owner's"}});
  for (const auto& headers :
       {json_headers(), json_headers("wrong"), json_headers(owner.token + "x")}) {
    const auto taken = http().json(
        "POST", "/servers", {{"unique_id", owner.id}, {"display_name", "intruder's"}}, headers);
    EXPECT_TRUE(is_error(taken, 409, "already_exists", owner.id));
  }
  const auto now = http().request("GET", "/servers/" + owner.id, {}, auth(owner.token));
  ASSERT_EQ(now.status, 200);
  EXPECT_EQ(now.json()["server"]["display_name"], "owner's");
}

TEST_F(AuthTest, TokensNeverShowInListingsReadsOrMetrics) {
  const World w(http());
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<std::pair<std::string, Response>> views = {
      {"room listing (JSON)", http().request("GET", "/rooms/" + w.room + "/servers")},
      {"room listing (binary)", http().request("GET", "/rooms/" + w.room + "/servers", {},
                                               {{"Accept", "application/x-protobuf"}})},
      {"room", http().request("GET", "/rooms/" + w.room)},
      {"metrics", http().request("GET", "/metrics")},
      {"server's knocks",
       http().request("GET", "/servers/" + w.server_1.id + "/knocks", {}, auth(w.server_1.token))},
      {"knock read by its server",
       http().request("GET", "/knocks/" + w.knock_1.id, {}, auth(w.server_1.token))},
      {"knock read by its knocker",
       http().request("GET", "/knocks/" + w.knock_1.id, {}, auth(w.knock_1.token))},
  };
  for (const auto& [what, response] : views) {
    ASSERT_EQ(response.status, 200) << what << ": " << response.body;
    for (const auto& token : w.live_tokens()) {
      EXPECT_EQ(response.body.find(token), std::string::npos)
          << what << " shows a token: " << response.body;
    }
  }
  EXPECT_TRUE(is_listed(http(), w.room, w.server_1.id));
}

}  // namespace
}  // namespace peernet::testing
