// The registry's limits, each crossed over HTTP on a daemon started with small values. Every
// refusal names the option that set the limit, and the refused request changes nothing.
#include <string>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

class RegistryLimitsTest : public DaemonTest {
 public:
  static void SetUpTestSuite() {
    start_daemon({"--max-servers-per-room", "2", "--max-services-per-server", "2",
                  "--max-candidates-per-side", "2", "--max-candidate-bytes", "100",
                  "--max-sdp-bytes", "200", "--max-id-length", "16", "--max-text-bytes", "8",
                  "--max-service-bytes", "64"});
  }

 protected:
  json service(std::string_view protocol) { return {{"protocol", protocol}, {"version", "1"}}; }
};

TEST_F(RegistryLimitsTest, ServersPerRoom) {
  const auto room = create_room(http(), unique_id("full"));
  register_server(http(), {{"unique_id", unique_id("s")}, {"room", room.id}});
  register_server(http(), {{"unique_id", unique_id("s")}, {"room", room.id}});
  EXPECT_TRUE(is_error(http().json("POST", "/servers", {{"unique_id", "third"}, {"room", room.id}}),
                       429, "resource_exhausted", "max_servers_per_room"));
  EXPECT_FALSE(is_listed(http(), room.id, "third"));
}

TEST_F(RegistryLimitsTest, ServicesPerServer) {
  const auto room = create_room(http(), unique_id("svc-room"));
  const auto server = register_server(http(), {{"unique_id", unique_id("svc")},
                                               {"room", room.id},
                                               {"services", {service("a"), service("b")}}});
  EXPECT_TRUE(is_error(http().json("POST", "/servers/" + server.id + "/services", service("c"),
                                   json_headers(server.token)),
                       429, "resource_exhausted", "max_services_per_server"));
  EXPECT_TRUE(is_error(http().json("POST", "/servers",
                                   {{"unique_id", "many"},
                                    {"services", {service("a"), service("b"), service("c")}}}),
                       429, "resource_exhausted", "max_services_per_server"));
}

TEST_F(RegistryLimitsTest, IdLengthTextBytesAndServiceBytes) {
  EXPECT_TRUE(is_error(http().json("POST", "/servers", {{"unique_id", std::string(17, 'x')}}), 422,
                       "invalid_argument", "max_id_length"));
  EXPECT_TRUE(is_error(
      http().json("POST", "/servers", {{"unique_id", "named"}, {"display_name", "nine bytes"}}),
      422, "invalid_argument", "max_text_bytes"));
  json big = service("big");
  big["[peernet.file.share_name]"] = std::string(80, 'f');
  EXPECT_TRUE(is_error(http().json("POST", "/servers", {{"unique_id", "big"}, {"services", {big}}}),
                       422, "invalid_argument", "max_service_bytes"));
}

TEST_F(RegistryLimitsTest, SdpBytesAndCandidates) {
  const auto room = create_room(http(), unique_id("sdp-room"));
  const auto server = register_server(http(), {{"unique_id", unique_id("sdp")},
                                               {"room", room.id},
                                               {"services", {service("peernet.camera")}}});
  const auto target = "/servers/" + server.id + "/knocks";
  EXPECT_TRUE(
      is_error(http().json("POST", target,
                           {{"protocol", "peernet.camera"}, {"offer", std::string(201, 'o')}}),
               422, "invalid_argument", "max_sdp_bytes"));
  const json candidate = {{"candidate", "candidate:1 1 udp 1 127.0.0.1 9 typ host"}};
  EXPECT_TRUE(is_error(http().json("POST", target,
                                   {{"protocol", "peernet.camera"},
                                    {"offer", "v=0"},
                                    {"ice_candidates", {candidate, candidate, candidate}}}),
                       429, "resource_exhausted", "max_candidates_per_side"));
  EXPECT_TRUE(is_error(http().json("POST", target,
                                   {{"protocol", "peernet.camera"},
                                    {"offer", "v=0"},
                                    {"ice_candidates", {{{"candidate", std::string(101, 'c')}}}}}),
                       422, "invalid_argument", "max_candidate_bytes"));
  // Trickled candidates count against the same limit.
  const auto knock = create_knock(http(), server.id);
  const auto patch = [&] {
    return http().json("PATCH", "/knocks/" + knock.id, {{"ice_candidates", {candidate}}},
                       json_headers(knock.token));
  };
  EXPECT_EQ(patch().status, 200);
  EXPECT_EQ(patch().status, 200);
  EXPECT_TRUE(is_error(patch(), 429, "resource_exhausted", "max_candidates_per_side"));
}

class RoomLimitTest : public DaemonTest {
 public:
  static void SetUpTestSuite() { start_daemon({"--max-rooms", "3", "--max-servers", "2"}); }
};

TEST_F(RoomLimitTest, ServersInTheDaemon) {
  register_server(http(), {{"unique_id", unique_id("s")}});
  register_server(http(), {{"unique_id", unique_id("s")}});
  EXPECT_TRUE(is_error(http().json("POST", "/servers", {{"unique_id", "third"}}), 429,
                       "resource_exhausted", "max_servers"));
  EXPECT_FALSE(is_listed(http(), "default", "third"));
}

TEST_F(RoomLimitTest, RoomsInTheDaemon) {
  // The default room counts: two more fit.
  create_room(http(), unique_id("r"));
  create_room(http(), unique_id("r"));
  EXPECT_TRUE(is_error(http().json("POST", "/rooms", {{"unique_id", "one-too-many"}}), 429,
                       "resource_exhausted", "max_rooms"));
  EXPECT_EQ(http().request("GET", "/rooms/one-too-many").status, 404);
}

}  // namespace
}  // namespace peernet::testing
