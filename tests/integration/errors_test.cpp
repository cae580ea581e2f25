// Every error status the daemon sends, each with its JSON body: a Connect code and a message
// that names the field or the limit at fault.
#include <string>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

class ErrorsTest : public DaemonTest {
 public:
  static void SetUpTestSuite() {
    start_daemon({"--max-body-bytes", "1024", "--max-header-bytes", "2048",
                  "--max-pending-knocks-per-server", "2"});
  }

 protected:
  Response post_server(std::string_view body) {
    return http().request("POST", "/servers", body, json_headers());
  }
};

TEST_F(ErrorsTest, MalformedJsonIs400) {
  EXPECT_TRUE(is_error(post_server(R"({"unique_id": )"), 400, "invalid_argument", "invalid JSON"));
  EXPECT_TRUE(is_error(post_server("unique_id=cam"), 400, "invalid_argument", "invalid JSON"));
}

TEST_F(ErrorsTest, WrongJsonTypeIs400) {
  EXPECT_TRUE(is_error(post_server(R"({"unique_id": 5})"), 400, "invalid_argument", "unique_id"));
  EXPECT_TRUE(is_error(post_server(R"({"services": {"protocol": "x"}})"), 400, "invalid_argument",
                       "services"));
  EXPECT_TRUE(
      is_error(post_server(R"({"ttl_seconds": "soon"})"), 400, "invalid_argument", "ttl_seconds"));
  EXPECT_TRUE(is_error(post_server("[1, 2]"), 400, "invalid_argument", "body"));
}

TEST_F(ErrorsTest, UnknownJsonFieldIs400) {
  const auto id = unique_id("unknown-field");
  EXPECT_TRUE(is_error(post_server(json{{"unique_id", id}, {"colour", "red"}}.dump()), 400,
                       "invalid_argument", "colour"));
  EXPECT_TRUE(
      is_error(post_server(json{
                   {"unique_id", id},
                   {"services", json::array({{{"protocol", "x"}, {"[peernet.nope.codec]", 1}}})}}
                               .dump()),
               400, "invalid_argument", "[peernet.nope.codec]"));
  EXPECT_FALSE(is_listed(http(), "default", id));
}

TEST_F(ErrorsTest, BadQueryParameterIs400) {
  const auto server = register_server_offering(http());
  EXPECT_TRUE(is_error(http().request("GET", "/rooms/default/servers?colour=red"), 400,
                       "invalid_argument", "colour"));
  EXPECT_TRUE(is_error(http().request("GET", "/rooms/default/servers?protocol=%zz"), 400,
                       "invalid_argument", "protocol"));
  const auto knocks = "/servers/" + server.id + "/knocks";
  EXPECT_TRUE(is_error(http().request("GET", knocks + "?wait=soon", {}, auth(server.token)), 400,
                       "invalid_argument", "wait_seconds"));
  EXPECT_TRUE(is_error(http().request("GET", knocks + "?since=-1", {}, auth(server.token)), 400,
                       "invalid_argument", "since"));
  EXPECT_TRUE(is_error(http().request("GET", knocks + "?wait=1&wait=2", {}, auth(server.token)),
                       400, "invalid_argument", "wait"));
}

TEST_F(ErrorsTest, MalformedHttpIs400AndClosesTheConnection) {
  for (const std::string request :
       {"NOT HTTP AT ALL\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n"}) {
    const auto raw = raw_exchange(port(), request);
    const auto response = parse_raw_response(raw);
    EXPECT_TRUE(is_error(response, 400, "invalid_argument", "malformed HTTP request")) << raw;
    EXPECT_EQ(response.header("Connection"), "close") << raw;
  }
  EXPECT_EQ(http().request("GET", "/healthz").status, 200) << "the daemon carries on";
}

TEST_F(ErrorsTest, InvalidBinaryProtobufIs400) {
  const Headers binary{{"Content-Type", "application/x-protobuf"}};
  EXPECT_TRUE(
      is_error(http().request("POST", "/servers", std::string("\xff\xff\xff\xff", 4), binary), 400,
               "invalid_argument", "not a valid binary peernet.Server message"));
  // Field 1 (unique_id), 2 bytes that are not UTF-8; built by hand since protobuf refuses to.
  const std::string not_utf8("\x0a\x02\xc3\x28", 4);
  EXPECT_TRUE(is_error(http().request("POST", "/servers", not_utf8, binary), 400,
                       "invalid_argument", "unique_id: not valid UTF-8"));
}

TEST_F(ErrorsTest, MissingTokenIs401) {
  const auto server = register_server_offering(http());
  EXPECT_TRUE(is_error(http().request("GET", "/servers/" + server.id), 401, "unauthenticated",
                       "missing token"));
}

TEST_F(ErrorsTest, UnknownRouteRoomServerOrKnockIs404) {
  EXPECT_TRUE(is_error(http().request("GET", "/nowhere"), 404, "not_found", "/nowhere"));
  EXPECT_TRUE(is_error(http().request("GET", "/rooms/"), 404, "not_found", "/rooms/"));
  EXPECT_TRUE(is_error(
      http().json("POST", "/peernet.PeerNetService/Teleport", json::object(), json_headers()), 404,
      "not_found", "Teleport"));
  EXPECT_TRUE(
      is_error(http().request("GET", "/rooms/no-such-room"), 404, "not_found", "no-such-room"));
  EXPECT_TRUE(is_error(http().request("GET", "/rooms/no-such-room/servers"), 404, "not_found",
                       "no-such-room"));
  EXPECT_TRUE(is_error(http().request("GET", "/servers/no-such-server", {}, auth("whatever")), 404,
                       "not_found", "no-such-server"));
  EXPECT_TRUE(
      is_error(http().json("POST", "/servers/no-such-server/knocks",
                           {{"protocol", "peernet.camera"}, {"offer", "v=0"}}, json_headers()),
               404, "not_found", "no-such-server"));
  EXPECT_TRUE(is_error(http().request("GET", "/knocks/no-such-knock", {}, auth("whatever")), 404,
                       "not_found", "no-such-knock"));
  const auto server = register_server_offering(http(), "peernet.camera");
  EXPECT_TRUE(
      is_error(http().json("POST", "/servers/" + server.id + "/knocks",
                           {{"protocol", "peernet.sensor"}, {"offer", "v=0"}}, json_headers()),
               404, "not_found", "peernet.sensor"));
  EXPECT_TRUE(
      is_error(http().request("DELETE", "/servers/" + server.id + "/services/peernet.sensor", {},
                              auth(server.token)),
               404, "not_found", "peernet.sensor"));
  EXPECT_TRUE(is_error(http().json("POST", "/servers", {{"room", "no-such-room"}}, json_headers()),
                       404, "not_found", "no-such-room"));
}

TEST_F(ErrorsTest, KnownPathWithAnotherMethodIs405WithAllow) {
  struct Case {
    std::string verb, target, allow;
  };
  for (const auto& c :
       {Case{"DELETE", "/healthz", "GET, HEAD"}, Case{"PUT", "/rooms", "POST"},
        Case{"PATCH", "/servers/x", "GET, DELETE"}, Case{"POST", "/knocks/x", "GET, PATCH, DELETE"},
        Case{"GET", "/peernet.PeerNetService/GetRoom", "POST"}}) {
    const auto response = http().request(c.verb, c.target);
    EXPECT_TRUE(is_error(response, 405, "unimplemented", c.verb)) << c.verb << " " << c.target;
    EXPECT_EQ(response.header("Allow"), c.allow) << c.verb << " " << c.target;
  }
}

TEST_F(ErrorsTest, TakenIdsAndDuplicateServicesAre409) {
  const auto room = unique_id("dup-room");
  create_room(http(), room);
  EXPECT_TRUE(is_error(http().json("POST", "/rooms", {{"unique_id", room}}, json_headers()), 409,
                       "already_exists", room));
  const auto server = register_server_offering(http(), "peernet.camera");
  EXPECT_TRUE(is_error(http().json("POST", "/servers/" + server.id + "/services",
                                   {{"protocol", "peernet.camera"}}, json_headers(server.token)),
                       409, "already_exists", "peernet.camera"));
}

TEST_F(ErrorsTest, BodyOverTheLimitIs413) {
  const auto id = unique_id("big");
  const auto response =
      http().json("POST", "/servers", {{"unique_id", id}, {"display_name", std::string(1500, 'x')}},
                  json_headers());
  EXPECT_TRUE(is_error(response, 413, "resource_exhausted", "1024"));
  EXPECT_NE(response.json().value("message", "").find("max_body_bytes"), std::string::npos)
      << response.body;
  EXPECT_FALSE(is_listed(http(), "default", id));
}

TEST_F(ErrorsTest, UnsupportedContentTypeIs415) {
  const auto response =
      http().request("POST", "/servers", "<p>cam</p>", {{"Content-Type", "text/html"}});
  EXPECT_TRUE(is_error(response, 415, "invalid_argument", "text/html"));
}

TEST_F(ErrorsTest, ValueOfTheWrongFormOrOutOfRangeIs422) {
  EXPECT_TRUE(is_error(post_server(R"({"unique_id": "bad id!"})"), 422, "invalid_argument",
                       "server.unique_id"));
  EXPECT_TRUE(
      is_error(post_server(R"({"ttl_seconds": 1})"), 422, "invalid_argument", "ttl_seconds"));
  EXPECT_TRUE(
      is_error(post_server(R"({"ttl_seconds": 100000})"), 422, "invalid_argument", "ttl_seconds"));
  EXPECT_TRUE(
      is_error(http().request("GET", "/rooms/bad%20id!/servers"), 422, "invalid_argument", "room"));
  EXPECT_FALSE(is_listed(http(), "default", "bad id!"));
}

TEST_F(ErrorsTest, PendingKnocksOverTheLimitAre429) {
  const auto server = register_server_offering(http());
  const auto first = create_knock(http(), server.id);
  create_knock(http(), server.id);
  const auto third =
      http().json("POST", "/servers/" + server.id + "/knocks",
                  {{"protocol", "peernet.camera"}, {"offer", "v=0"}}, json_headers());
  EXPECT_TRUE(is_error(third, 429, "resource_exhausted", "max_pending_knocks_per_server"));
  EXPECT_FALSE(third.header("Retry-After").empty());

  // Answering one makes room for another.
  ASSERT_EQ(http()
                .json("PATCH", "/knocks/" + first.id, {{"answer", "v=0 answer"}},
                      json_headers(server.token))
                .status,
            200);
  create_knock(http(), server.id);
}

TEST_F(ErrorsTest, HeaderBlockOverTheLimitIs431) {
  const auto response =
      http().request("GET", "/healthz", {}, {{"X-Filler", std::string(3000, 'h')}});
  EXPECT_TRUE(is_error(response, 431, "resource_exhausted", "2048"));
  EXPECT_NE(response.json().value("message", "").find("max_header_bytes"), std::string::npos)
      << response.body;
  EXPECT_EQ(http().request("GET", "/healthz").status, 200) << "the daemon carries on";
}

}  // namespace
}  // namespace peernet::testing
