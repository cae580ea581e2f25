// "Authorization, proven": every route that changes or reveals private state, called with every
// credential but the right one, in REST and in Connect (JSON and binary), is refused and changes
// nothing; the same requests with the right token then succeed, so the refusals were about the
// token and nothing else.
//
// What a refusal looks like (docs/security.md has the same table for people):
//   - 401 unauthenticated: any token that is not the addressed thing's (or, for knocks, its
//     server's), including none, a made-up one, a neighbour's, and a stale one: the token of a
//     room or server that was deleted and then re-created under the same id.
//   - 409 already_exists: CreateServer with the id of a live server and not its token (a
//     re-registration attempt): the id is taken, whatever token comes with it.
//   - 404 not_found: the thing addressed does not exist (deleted, expired, never made), even with
//     the token it used to have; existence is checked before the token. CreateServer has no such
//     case: a free id is simply registered anew (201), and the old token gives no claim to it.
#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "integration/fixtures.h"
#include "integration/peernet_api.h"
#include "integration/state_snapshot.h"
#include "peernet.pb.h"

namespace peernet::testing {
namespace {

namespace pb = google::protobuf;
using Style = PeerNetApi::Style;

/// The ids a request addresses.
struct Targets {
  std::string room;
  std::string server;
  std::string knock;
};

// The credentials of the matrix, by name.
constexpr std::string_view kNone = "no token";
constexpr std::string_view kMadeUp = "a made-up token";
constexpr std::string_view kRoom = "the room's token";
constexpr std::string_view kOtherRoom = "another room's token";
constexpr std::string_view kServer = "the server's token";
constexpr std::string_view kOtherServer = "another server's token (same room)";
constexpr std::string_view kKnock = "the knock's token";
constexpr std::string_view kSiblingKnock = "another knock's token (same server)";
constexpr std::string_view kForeignKnock = "a knock's token on another server";
constexpr std::string_view kStaleRoom = "the room's stale token (deleted, same id re-created)";
constexpr std::string_view kStaleServer = "the server's stale token (deleted, same id re-created)";
constexpr std::string_view kStaleKnock = "the token of a knock on the server's deleted namesake";

/// What a route addresses.
enum class Kind { kRoomRoute, kServerRoute, kKnockRoute };

/// The victims (room R, server S in R, knocks K1 and K2 on S), their neighbours (room R2, server
/// S2 in R with knock K3), stale tokens of R and S (each deleted, then re-created under the same
/// id) and of a knock on the deleted S, and a room, a server and a knock that are gone for good.
struct World {
  Handle server, knock, sibling_knock, other_server, foreign_knock;
  Handle gone_room, gone_server, gone_knock;
  Targets victim;
  std::vector<std::pair<std::string_view, std::string>> credentials;
  Observed observed;

  explicit World(HttpClient& http) {
    const auto room_id = unique_id("authz-room");
    const auto server_id = unique_id("authz-srv");
    const auto stale_room = create_room(http, room_id);
    const auto stale_server = register_long_lived_server(http, server_id, room_id);
    const auto stale_knock = create_knock(http, server_id);
    expect_deleted(http, "/servers/" + server_id, stale_server.token);
    expect_deleted(http, "/rooms/" + room_id, stale_room.token);

    const auto room = create_room(http, room_id);
    server = register_long_lived_server(http, server_id, room_id);
    knock = create_knock(http, server_id);
    sibling_knock = create_knock(http, server_id);
    const auto other_room = create_room(http, unique_id("authz-other-room"));
    other_server = register_long_lived_server(http, unique_id("authz-other-srv"), room_id);
    foreign_knock = create_knock(http, other_server.id);

    gone_room = create_room(http, unique_id("authz-gone-room"));
    expect_deleted(http, "/rooms/" + gone_room.id, gone_room.token);
    gone_server = register_long_lived_server(http, unique_id("authz-gone-srv"), room_id);
    expect_deleted(http, "/servers/" + gone_server.id, gone_server.token);
    gone_knock = create_knock(http, other_server.id);
    expect_deleted(http, "/knocks/" + gone_knock.id, gone_knock.token);

    victim = {room_id, server_id, knock.id};
    credentials = {
        {kNone, ""},
        {kMadeUp, std::string(server.token.size(), 'Q')},
        {kRoom, room.token},
        {kOtherRoom, other_room.token},
        {kServer, server.token},
        {kOtherServer, other_server.token},
        {kKnock, knock.token},
        {kSiblingKnock, sibling_knock.token},
        {kForeignKnock, foreign_knock.token},
        {kStaleRoom, stale_room.token},
        {kStaleServer, stale_server.token},
        {kStaleKnock, stale_knock.token},
    };
    observed = {{room_id, other_room.id},
                {server, other_server},
                {{knock.id, server.token},
                 {sibling_knock.id, server.token},
                 {foreign_knock.id, other_server.token}}};
  }

  const std::string& token(std::string_view name) const {
    for (const auto& [key, value] : credentials) {
      if (key == name) {
        return value;
      }
    }
    throw std::logic_error("no credential " + std::string(name));
  }

  /// The ids of the things that are gone for good.
  Targets gone() const { return {gone_room.id, gone_server.id, gone_knock.id}; }

  /// The gone thing a route of `kind` addresses, with the token it had.
  const Handle& gone(Kind kind) const {
    return kind == Kind::kRoomRoute     ? gone_room
           : kind == Kind::kServerRoute ? gone_server
                                        : gone_knock;
  }

  static void expect_deleted(HttpClient& http, const std::string& target, std::string_view token) {
    const auto response = http.request("DELETE", target, {}, auth(token));
    if (response.status != 200) {
      throw std::runtime_error("DELETE " + target + ": " + response.body);
    }
  }
};

/// One guarded route: how to call it on some targets, which credentials it takes, and how it
/// refuses the rest.
struct Row {
  std::string name;
  Rpc rpc;
  Kind kind;
  std::function<std::shared_ptr<pb::Message>(const Targets&)> request;
  std::vector<std::string_view> accepted;
  int refused_status = 401;
  std::string_view refused_code = "unauthenticated";
};

template <typename Message>
std::shared_ptr<pb::Message> make(const std::function<void(Message&)>& fill) {
  auto message = std::make_shared<Message>();
  fill(*message);
  return message;
}

Service service(std::string_view protocol, std::string_view version) {
  Service s;
  s.set_protocol(std::string(protocol));
  s.set_version(std::string(version));
  return s;
}

/// Every route that changes or reveals private state. Destructive ones come last, so that the
/// owner's run (which uses this order) finds what each row needs still there.
std::vector<Row> guarded_routes() {
  const std::vector<std::string_view> server_only = {kServer};
  const std::vector<std::string_view> either_side = {kKnock, kServer};
  return {
      {"GetServer", Rpc::kGetServer, Kind::kServerRoute,
       [](const Targets& t) {
         return make<GetServerRequest>([&](auto& r) { r.set_server(t.server); });
       },
       server_only},
      {"CreateServer (re-register)", Rpc::kCreateServer, Kind::kServerRoute,
       [](const Targets& t) {
         return make<CreateServerRequest>([&](auto& r) {
           auto& s = *r.mutable_server();
           s.set_unique_id(t.server);
           s.set_room(t.room);
           s.set_display_name("as registered");
           s.set_ttl_seconds(300);
           *s.add_services() = service("peernet.camera", "1");
         });
       },
       server_only, 409, "already_exists"},
      {"CreateService", Rpc::kCreateService, Kind::kServerRoute,
       [](const Targets& t) {
         return make<CreateServiceRequest>([&](auto& r) {
           r.set_server(t.server);
           *r.mutable_service() = service("peernet.file", "1");
         });
       },
       server_only},
      {"UpdateService", Rpc::kUpdateService, Kind::kServerRoute,
       [](const Targets& t) {
         return make<UpdateServiceRequest>([&](auto& r) {
           r.set_server(t.server);
           *r.mutable_service() = service("peernet.camera", "9");
         });
       },
       server_only},
      {"DeleteService", Rpc::kDeleteService, Kind::kServerRoute,
       [](const Targets& t) {
         return make<DeleteServiceRequest>([&](auto& r) {
           r.set_server(t.server);
           r.set_protocol("peernet.file");
         });
       },
       server_only},
      {"ListKnocks", Rpc::kListKnocks, Kind::kServerRoute,
       [](const Targets& t) {
         return make<ListKnocksRequest>([&](auto& r) { r.set_server(t.server); });
       },
       server_only},
      {"GetKnock", Rpc::kGetKnock, Kind::kKnockRoute,
       [](const Targets& t) {
         return make<GetKnockRequest>([&](auto& r) { r.set_knock(t.knock); });
       },
       either_side},
      {"UpdateKnock (candidates)", Rpc::kUpdateKnock, Kind::kKnockRoute,
       [](const Targets& t) {
         return make<UpdateKnockRequest>([&](auto& r) {
           r.set_knock(t.knock);
           r.add_ice_candidates()->set_candidate(
               "candidate:1 1 udp 2122260223 192.0.2.7 9 typ host");
         });
       },
       either_side},
      {"UpdateKnock (answer)", Rpc::kUpdateKnock, Kind::kKnockRoute,
       [](const Targets& t) {
         return make<UpdateKnockRequest>([&](auto& r) {
           r.set_knock(t.knock);
           r.set_answer("v=0 (an answer)");
         });
       },
       server_only},
      {"UpdateKnock (next poll)", Rpc::kUpdateKnock, Kind::kKnockRoute,
       [](const Targets& t) {
         return make<UpdateKnockRequest>([&](auto& r) {
           r.set_knock(t.knock);
           r.mutable_next_poll()->set_since(0);
         });
       },
       server_only},
      {"DeleteKnock", Rpc::kDeleteKnock, Kind::kKnockRoute,
       [](const Targets& t) {
         return make<DeleteKnockRequest>([&](auto& r) { r.set_knock(t.knock); });
       },
       either_side},
      {"DeleteServer", Rpc::kDeleteServer, Kind::kServerRoute,
       [](const Targets& t) {
         return make<DeleteServerRequest>([&](auto& r) { r.set_server(t.server); });
       },
       server_only},
      {"DeleteRoom",
       Rpc::kDeleteRoom,
       Kind::kRoomRoute,
       [](const Targets& t) {
         return make<DeleteRoomRequest>([&](auto& r) { r.set_room(t.room); });
       },
       {kRoom}},
  };
}

bool accepts(const Row& row, std::string_view credential) {
  return std::find(row.accepted.begin(), row.accepted.end(), credential) != row.accepted.end();
}

class AuthorizationMatrixTest : public DaemonTest {
 public:
  static void SetUpTestSuite() { start_daemon({"--knock-ttl", "600"}); }

 protected:
  Response call(PeerNetApi& api, const Row& row, const pb::Message& request,
                std::string_view token) {
    // The reply type only matters for decoding successes, which the matrix does not read.
    return api.call<DeleteRoomResponse>(row.rpc, request, token).http;
  }

  /// Every row with every credential it does not accept, then with the thing gone: refused, and
  /// the state as it was.
  void expect_every_stranger_refused(Style style, const Wire& wire) {
    const World w(http());
    PeerNetApi api(http(), style, wire);
    const auto before = take_snapshot(http(), w.observed);
    for (const auto& row : guarded_routes()) {
      const auto request = row.request(w.victim);
      const std::string_view problem =
          row.refused_status == 409 ? std::string_view(w.victim.server) : "token";
      for (const auto& [name, token] : w.credentials) {
        if (accepts(row, name)) {
          continue;
        }
        SCOPED_TRACE(row.name + " with " + std::string(name) + " over " + wire.name);
        EXPECT_TRUE(is_error(call(api, row, *request, token), row.refused_status, row.refused_code,
                             problem));
        ASSERT_TRUE(same_state(before, take_snapshot(http(), w.observed)));
      }
      // A free id is registered anew by CreateServer: no refusal to check there.
      if (row.rpc != Rpc::kCreateServer) {
        SCOPED_TRACE(row.name + " on a deleted thing with its former token over " + wire.name);
        const auto& gone = w.gone(row.kind);
        EXPECT_TRUE(is_error(call(api, row, *row.request(w.gone()), gone.token), 404, "not_found",
                             gone.id));
        ASSERT_TRUE(same_state(before, take_snapshot(http(), w.observed)));
      }
    }
    // The control: the right token opens every one of those routes.
    for (const auto& row : guarded_routes()) {
      const auto response = call(api, row, *row.request(w.victim), w.token(row.accepted.front()));
      EXPECT_EQ(response.status / 100, 2)
          << row.name << " with " << row.accepted.front() << " over " << wire.name << ": "
          << response.status << " " << response.body;
    }
  }
};

TEST_F(AuthorizationMatrixTest, RestJson) {
  expect_every_stranger_refused(Style::kRest,
                                {"REST JSON", "application/json", "", "application/json"});
}

TEST_F(AuthorizationMatrixTest, RestProtobuf) {
  expect_every_stranger_refused(
      Style::kRest, {"REST protobuf", "application/x-protobuf", "", "application/x-protobuf"});
}

TEST_F(AuthorizationMatrixTest, ConnectJson) {
  expect_every_stranger_refused(Style::kConnect,
                                {"Connect JSON", "application/json", "", "application/json"});
}

TEST_F(AuthorizationMatrixTest, ConnectProtobuf) {
  expect_every_stranger_refused(Style::kConnect,
                                {"Connect proto", "application/proto", "", "application/proto"});
}

/// GET /knocks/{knock} with `token`, in the given style.
Response read_knock(HttpClient& http, Style style, const std::string& knock,
                    std::string_view token) {
  PeerNetApi api(http, style, {"JSON", "application/json", "", "application/json"});
  GetKnockRequest request;
  request.set_knock(knock);
  return api.call<Knock>(Rpc::kGetKnock, request, token).http;
}

TEST_F(AuthorizationMatrixTest, AnAnswerIsReadOnlyByItsKnockerAndItsServer) {
  const World w(http());
  const std::string answer = "v=0 (the answer only the knocker may read)";
  ASSERT_EQ(http()
                .json("PATCH", "/knocks/" + w.knock.id, {{"answer", answer}},
                      json_headers(w.server.token))
                .status,
            200);
  // Read it with the server's token: the knocker's own read would start its linger.
  const Observed observed = {{}, {}, {{w.knock.id, w.server.token}}};
  const auto before = take_snapshot(http(), observed);
  for (const auto style : {Style::kRest, Style::kConnect}) {
    for (const auto& [name, token] : w.credentials) {
      const auto response = read_knock(http(), style, w.knock.id, token);
      if (name == kKnock || name == kServer) {
        ASSERT_EQ(response.status, 200) << name << ": " << response.body;
        EXPECT_EQ(response.json()["answer"], answer) << name;
      } else {
        EXPECT_TRUE(is_error(response, 401, "unauthenticated", "token")) << name;
        EXPECT_EQ(response.body.find(answer), std::string::npos) << name;
      }
    }
    // The other knocker on the same server reads its own knock, and nothing of this one.
    const auto sibling = read_knock(http(), style, w.sibling_knock.id, w.sibling_knock.token);
    ASSERT_EQ(sibling.status, 200) << sibling.body;
    EXPECT_FALSE(sibling.json().contains("answer")) << sibling.body;
    EXPECT_EQ(sibling.body.find(answer), std::string::npos);
  }
  EXPECT_EQ(http().request("GET", "/rooms/" + w.victim.room + "/servers").body.find(answer),
            std::string::npos)
      << "the room listing shows no answers";
  EXPECT_TRUE(same_state(before, take_snapshot(http(), observed)));
}

TEST_F(AuthorizationMatrixTest, AServersKnocksAreListedOnlyForThatServer) {
  const World w(http());
  const auto before = take_snapshot(http(), w.observed);
  auto listed_ids = [&](const std::string& server, std::string_view token) {
    const auto response = http().request("GET", "/servers/" + server + "/knocks", {}, auth(token));
    EXPECT_EQ(response.status, 200) << response.body;
    std::vector<std::string> ids;
    for (const auto& knock : response.json().value("knocks", json::array())) {
      ids.push_back(knock.value("unique_id", ""));
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  std::vector<std::string> expected = {w.knock.id, w.sibling_knock.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(listed_ids(w.server.id, w.server.token), expected);
  EXPECT_EQ(listed_ids(w.other_server.id, w.other_server.token),
            std::vector<std::string>{w.foreign_knock.id});
  for (const auto& [name, token] : w.credentials) {
    if (name == kServer) {
      continue;
    }
    EXPECT_TRUE(
        is_error(http().request("GET", "/servers/" + w.server.id + "/knocks", {}, auth(token)), 401,
                 "unauthenticated", "token"))
        << name;
  }
  EXPECT_TRUE(same_state(before, take_snapshot(http(), w.observed)));
}

}  // namespace
}  // namespace peernet::testing
