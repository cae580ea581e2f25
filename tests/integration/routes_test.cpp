// Every RPC through every route of docs/routes.md, REST and Connect, in each encoding the daemon
// reads and writes.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "camera.pb.h"
#include "integration/fixtures.h"
#include "integration/peernet_api.h"
#include "peernet.pb.h"

namespace peernet::testing {
namespace {

struct RouteCase {
  PeerNetApi::Style style;
  Wire wire;
};

std::string case_name(const ::testing::TestParamInfo<RouteCase>& info) {
  return info.param.wire.name;
}

class RoutesTest : public DaemonTest, public ::testing::WithParamInterface<RouteCase> {
 protected:
  PeerNetApi api() { return PeerNetApi(http(), GetParam().style, GetParam().wire); }
};

/// The reply came in the wire's encoding and parsed in it.
template <typename Message>
::testing::AssertionResult replied(const Answer<Message>& answer, int status, const Wire& wire) {
  if (answer.http.status != status || answer.http.header("Content-Type") != wire.reply_type ||
      !answer.decoded) {
    return ::testing::AssertionFailure()
           << "expected " << status << " in " << wire.reply_type << ", got " << answer.http.status
           << " in " << answer.http.header("Content-Type")
           << (answer.decoded ? "" : " (undecodable)") << ": " << answer.http.body;
  }
  return ::testing::AssertionSuccess();
}

Service camera_service() {
  Service service;
  service.set_protocol("peernet.camera");
  service.set_version("1");
  service.SetExtension(camera::codec, "VP8");
  service.SetExtension(camera::width, 1280);
  return service;
}

IceCandidate candidate(std::string_view line) {
  IceCandidate c;
  c.set_candidate(std::string(line));
  c.set_sdp_mid("0");
  c.set_sdp_line_index(0);
  return c;
}

TEST_P(RoutesTest, EveryRpcAnswersWithItsStatusAndMessage) {
  auto peernet = api();
  const auto& wire = peernet.wire();
  const int created = peernet.created_status();
  const auto room_id = unique_id("room");
  const auto server_id = unique_id("srv");

  // Rooms.
  CreateRoomRequest create_room;
  create_room.mutable_room()->set_unique_id(room_id);
  create_room.mutable_room()->set_display_name("Living room");
  const auto room = peernet.call<CreateRoomResponse>(Rpc::kCreateRoom, create_room);
  ASSERT_TRUE(replied(room, created, wire));
  EXPECT_EQ(room.message.room().unique_id(), room_id);
  EXPECT_EQ(room.message.room().display_name(), "Living room");
  ASSERT_FALSE(room.message.token().empty());

  GetRoomRequest get_room;
  get_room.set_room(room_id);
  const auto got_room = peernet.call<GetRoomResponse>(Rpc::kGetRoom, get_room);
  ASSERT_TRUE(replied(got_room, 200, wire));
  EXPECT_EQ(got_room.message.room().display_name(), "Living room");

  // Servers: create, re-register with the token, read, list.
  CreateServerRequest create_server;
  auto& server = *create_server.mutable_server();
  server.set_unique_id(server_id);
  server.set_room(room_id);
  server.set_display_name("Porch camera");
  server.set_ttl_seconds(60);
  *server.add_services() = camera_service();
  const auto registered = peernet.call<CreateServerResponse>(Rpc::kCreateServer, create_server);
  ASSERT_TRUE(replied(registered, created, wire));
  const auto token = registered.message.token();
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(registered.message.server().unique_id(), server_id);
  EXPECT_EQ(registered.message.server().room(), room_id);
  EXPECT_EQ(registered.message.server().ttl_seconds(), 60U);
  EXPECT_TRUE(registered.message.server().has_expire_time());
  ASSERT_EQ(registered.message.server().services_size(), 1);
  EXPECT_EQ(registered.message.server().services(0).GetExtension(camera::codec), "VP8");

  server.set_display_name("Front door camera");
  const auto again = peernet.call<CreateServerResponse>(Rpc::kCreateServer, create_server, token);
  ASSERT_TRUE(replied(again, 200, wire));
  EXPECT_EQ(again.message.token(), token) << "re-registering returns the same token";
  EXPECT_EQ(again.message.server().display_name(), "Front door camera");

  GetServerRequest get_server;
  get_server.set_server(server_id);
  const auto got_server = peernet.call<GetServerResponse>(Rpc::kGetServer, get_server, token);
  ASSERT_TRUE(replied(got_server, 200, wire));
  EXPECT_EQ(got_server.message.server().room(), room_id);
  EXPECT_EQ(got_server.message.server().ttl_seconds(), 60U);

  ListServersRequest list;
  list.set_room(room_id);
  list.set_protocol("peernet.camera");
  list.set_version("1");
  auto listed = peernet.call<ListServersResponse>(Rpc::kListServers, list);
  ASSERT_TRUE(replied(listed, 200, wire));
  ASSERT_EQ(listed.message.servers_size(), 1);
  const auto& shown = listed.message.servers(0);
  EXPECT_EQ(shown.unique_id(), server_id);
  EXPECT_EQ(shown.display_name(), "Front door camera");
  EXPECT_FALSE(shown.has_ttl_seconds() || shown.has_expire_time() || shown.has_room())
      << "a listing shows only id, display name and services: " << shown.ShortDebugString();
  list.set_protocol("peernet.sensor");
  listed = peernet.call<ListServersResponse>(Rpc::kListServers, list);
  ASSERT_TRUE(replied(listed, 200, wire));
  EXPECT_EQ(listed.message.servers_size(), 0)
      << "the protocol filter leaves out servers without it";

  // Services: add, put (create and replace), delete.
  CreateServiceRequest create_service;
  create_service.set_server(server_id);
  create_service.mutable_service()->set_protocol("peernet.sensor");
  create_service.mutable_service()->set_version("1");
  const auto added =
      peernet.call<CreateServiceResponse>(Rpc::kCreateService, create_service, token);
  ASSERT_TRUE(replied(added, created, wire));
  EXPECT_EQ(added.message.service().protocol(), "peernet.sensor");

  UpdateServiceRequest put_service;
  put_service.set_server(server_id);
  put_service.mutable_service()->set_protocol("peernet.file");
  const auto put_new = peernet.call<UpdateServiceResponse>(Rpc::kUpdateService, put_service, token);
  ASSERT_TRUE(replied(put_new, 200, wire));
  EXPECT_EQ(put_new.message.service().protocol(), "peernet.file");
  put_service.mutable_service()->set_protocol("peernet.sensor");
  put_service.mutable_service()->set_version("2");
  const auto replaced =
      peernet.call<UpdateServiceResponse>(Rpc::kUpdateService, put_service, token);
  ASSERT_TRUE(replied(replaced, 200, wire));
  EXPECT_EQ(replaced.message.service().version(), "2");

  DeleteServiceRequest delete_service;
  delete_service.set_server(server_id);
  delete_service.set_protocol("peernet.file");
  ASSERT_TRUE(replied(
      peernet.call<DeleteServiceResponse>(Rpc::kDeleteService, delete_service, token), 200, wire));
  const auto after_services = peernet.call<GetServerResponse>(Rpc::kGetServer, get_server, token);
  ASSERT_TRUE(replied(after_services, 200, wire));
  ASSERT_EQ(after_services.message.server().services_size(), 2);
  EXPECT_EQ(after_services.message.server().services(0).protocol(), "peernet.camera");
  EXPECT_EQ(after_services.message.server().services(1).protocol(), "peernet.sensor");
  EXPECT_EQ(after_services.message.server().services(1).version(), "2");

  // Knocks: knock, poll, read, answer, read the answer, withdraw.
  CreateKnockRequest create_knock;
  create_knock.set_server(server_id);
  create_knock.mutable_knock()->set_protocol("peernet.camera");
  create_knock.mutable_knock()->set_offer("v=0 offer");
  *create_knock.mutable_knock()->add_ice_candidates() =
      candidate("candidate:1 1 udp 1 10.0.0.2 5000 typ host");
  const auto knocked = peernet.call<CreateKnockResponse>(Rpc::kCreateKnock, create_knock);
  ASSERT_TRUE(replied(knocked, created, wire));
  const auto knock_id = knocked.message.knock().unique_id();
  const auto knock_token = knocked.message.token();
  ASSERT_FALSE(knock_id.empty());
  ASSERT_FALSE(knock_token.empty());
  EXPECT_EQ(knocked.message.knock().state(), KNOCK_STATE_PENDING);
  EXPECT_EQ(knocked.message.knock().server(), server_id);

  ListKnocksRequest list_knocks;
  list_knocks.set_server(server_id);
  const auto polled = peernet.call<ListKnocksResponse>(Rpc::kListKnocks, list_knocks, token);
  ASSERT_TRUE(replied(polled, 200, wire));
  ASSERT_EQ(polled.message.knocks_size(), 1);
  EXPECT_EQ(polled.message.knocks(0).unique_id(), knock_id);
  EXPECT_EQ(polled.message.knocks(0).offer(), "v=0 offer");
  EXPECT_EQ(polled.message.knocks(0).ice_candidates_size(), 1);
  EXPECT_GT(polled.message.revision(), 0U);

  GetKnockRequest get_knock;
  get_knock.set_knock(knock_id);
  const auto pending = peernet.call<Knock>(Rpc::kGetKnock, get_knock, knock_token);
  ASSERT_TRUE(replied(pending, 200, wire));
  EXPECT_EQ(pending.message.state(), KNOCK_STATE_PENDING);

  UpdateKnockRequest answer;
  answer.set_knock(knock_id);
  answer.set_answer("v=0 answer");
  *answer.add_ice_candidates() = candidate("candidate:2 1 udp 1 10.0.0.3 6000 typ host");
  const auto answered = peernet.call<UpdateKnockResponse>(Rpc::kUpdateKnock, answer, token);
  ASSERT_TRUE(replied(answered, 200, wire));
  EXPECT_EQ(answered.message.knock().state(), KNOCK_STATE_ANSWERED);
  EXPECT_FALSE(answered.message.has_next_poll());

  const auto read_answer = peernet.call<Knock>(Rpc::kGetKnock, get_knock, knock_token);
  ASSERT_TRUE(replied(read_answer, 200, wire));
  EXPECT_EQ(read_answer.message.state(), KNOCK_STATE_ANSWERED);
  EXPECT_EQ(read_answer.message.answer(), "v=0 answer");
  ASSERT_EQ(read_answer.message.server_ice_candidates_size(), 1);
  EXPECT_EQ(read_answer.message.server_ice_candidates(0).candidate(),
            answer.ice_candidates(0).candidate());

  DeleteKnockRequest delete_knock;
  delete_knock.set_knock(knock_id);
  ASSERT_TRUE(replied(
      peernet.call<DeleteKnockResponse>(Rpc::kDeleteKnock, delete_knock, knock_token), 200, wire));
  EXPECT_EQ(peernet.call<Knock>(Rpc::kGetKnock, get_knock, knock_token).http.status, 404);

  // Teardown through the API: the server, then the room.
  DeleteServerRequest delete_server;
  delete_server.set_server(server_id);
  ASSERT_TRUE(replied(peernet.call<DeleteServerResponse>(Rpc::kDeleteServer, delete_server, token),
                      200, wire));
  list.clear_protocol();
  list.clear_version();
  listed = peernet.call<ListServersResponse>(Rpc::kListServers, list);
  ASSERT_TRUE(replied(listed, 200, wire));
  EXPECT_EQ(listed.message.servers_size(), 0);

  DeleteRoomRequest delete_room;
  delete_room.set_room(room_id);
  ASSERT_TRUE(
      replied(peernet.call<DeleteRoomResponse>(Rpc::kDeleteRoom, delete_room, room.message.token()),
              200, wire));
  EXPECT_EQ(peernet.call<GetRoomResponse>(Rpc::kGetRoom, get_room).http.status, 404);
}

using Style = PeerNetApi::Style;

INSTANTIATE_TEST_SUITE_P(
    Rest, RoutesTest,
    ::testing::Values(
        RouteCase{Style::kRest, {"Json", "application/json", "", "application/json"}},
        RouteCase{Style::kRest,
                  {"XProtobuf", "application/x-protobuf", "", "application/x-protobuf"}},
        RouteCase{Style::kRest, {"Protobuf", "application/protobuf", "", "application/protobuf"}},
        RouteCase{Style::kRest, {"Proto", "application/proto", "", "application/proto"}},
        RouteCase{Style::kRest,
                  {"JsonAcceptingProtobuf", "application/json", "application/x-protobuf",
                   "application/x-protobuf"}},
        RouteCase{Style::kRest,
                  {"ProtobufAcceptingJson", "application/x-protobuf", "application/json",
                   "application/json"}},
        RouteCase{Style::kRest, {"NoContentType", "", "", "application/json"}},
        RouteCase{Style::kRest,
                  {"CurlForm", "application/x-www-form-urlencoded", "", "application/json"}}),
    case_name);

INSTANTIATE_TEST_SUITE_P(
    Connect, RoutesTest,
    ::testing::Values(
        RouteCase{Style::kConnect, {"Json", "application/json", "", "application/json"}},
        RouteCase{Style::kConnect, {"Proto", "application/proto", "", "application/proto"}}),
    case_name);

// The seed's sample registers with `curl -d` style JSON and no Content-Type at all.
using SeedFlowTest = DaemonTest;

TEST_F(SeedFlowTest, ServerWithoutContentTypeLandsInDefaultRoom) {
  const auto response = http().request("POST", "/server", R"({"unique_id": "cam"})");
  ASSERT_EQ(response.status, 201) << response.body;
  EXPECT_EQ(response.header("Content-Type"), "application/json");
  const auto body = response.json();
  EXPECT_EQ(body["server"]["unique_id"], "cam");
  EXPECT_EQ(body["server"]["room"], "default");
  ASSERT_TRUE(body["token"].is_string());
  EXPECT_FALSE(body["token"].get<std::string>().empty());

  const auto listing = http().request("GET", "/rooms/default/servers");
  ASSERT_EQ(listing.status, 200);
  EXPECT_EQ(listing.json(), json::parse(R"({"servers": [{"unique_id": "cam"}]})"));
}

TEST_F(SeedFlowTest, CurlFormBodyIsReadAsJsonOnRestButRefusedOnConnect) {
  const Headers form{{"Content-Type", "application/x-www-form-urlencoded"}};
  const auto rest = http().request("POST", "/servers", R"({"unique_id": "curl-cam"})", form);
  ASSERT_EQ(rest.status, 201) << rest.body;
  EXPECT_EQ(rest.json()["server"]["room"], "default");

  const auto connect = http().request("POST", "/peernet.PeerNetService/CreateServer",
                                      R"({"server": {"unique_id": "curl-cam-2"}})", form);
  EXPECT_TRUE(is_error(connect, 415, "invalid_argument", "application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_listed(http(), "default", "curl-cam-2"));
}

}  // namespace
}  // namespace peernet::testing
