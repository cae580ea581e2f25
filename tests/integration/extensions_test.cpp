// Service extensions: the ones the daemon knows by name and the ones it can only carry as bytes.
#include <string>

#include <gtest/gtest.h>

#include "camera.pb.h"
#include "integration/fixtures.h"
#include "peernet.pb.h"

namespace peernet::testing {
namespace {

using ExtensionsTest = DaemonTest;

/// Field 1000 of Service (no .proto the daemon was built with names it), length-delimited,
/// holding "opaque": tag (1000 << 3 | 2) = 8002 as a varint is C2 3E.
const std::string kUnknownField = std::string("\xC2\x3E\x06", 3) + "opaque";

const Headers kProtobuf{{"Content-Type", "application/x-protobuf"},
                        {"Accept", "application/x-protobuf"}};

TEST_F(ExtensionsTest, KnownAndUnknownExtensionsSurviveInBinaryAndOnlyKnownOnesShowInJson) {
  const auto room = unique_id("ext-room");
  create_room(http(), room);

  Service service;
  service.set_protocol("peernet.camera");
  service.set_version("1");
  service.SetExtension(camera::codec, "H264");
  const std::string service_bytes = service.SerializeAsString() + kUnknownField;

  // The Server message built by hand around the service bytes, so nothing on this side gets a
  // chance to re-encode them.
  Server server;
  server.set_unique_id(unique_id("ext-cam"));
  server.set_room(room);
  std::string server_bytes = server.SerializeAsString();
  server_bytes += '\x22';  // field 4 (services), length-delimited
  server_bytes += static_cast<char>(service_bytes.size());
  server_bytes += service_bytes;
  ASSERT_LT(service_bytes.size(), 128U);

  const auto created = http().request("POST", "/servers", server_bytes, kProtobuf);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("Content-Type"), "application/x-protobuf");
  EXPECT_NE(created.body.find(service_bytes), std::string::npos)
      << "the registration's reply carries the service byte for byte";

  const auto binary = http().request("GET", "/rooms/" + room + "/servers", {}, kProtobuf);
  ASSERT_EQ(binary.status, 200);
  ASSERT_EQ(binary.header("Content-Type"), "application/x-protobuf");
  ListServersResponse listed;
  ASSERT_TRUE(binary.decode_proto(listed));
  ASSERT_EQ(listed.servers_size(), 1);
  ASSERT_EQ(listed.servers(0).services_size(), 1);
  EXPECT_EQ(listed.servers(0).services(0).GetExtension(camera::codec), "H264");
  EXPECT_EQ(listed.servers(0).services(0).SerializeAsString(), service_bytes)
      << "known and unknown extension fields come back byte for byte";
  EXPECT_NE(binary.body.find(service_bytes), std::string::npos);

  const auto as_json = http().request("GET", "/rooms/" + room + "/servers");
  ASSERT_EQ(as_json.status, 200);
  ASSERT_EQ(as_json.header("Content-Type"), "application/json");
  const auto shown = as_json.json()["servers"][0]["services"][0];
  EXPECT_EQ(shown, json::parse(R"({"protocol": "peernet.camera", "version": "1",
                                   "[peernet.camera.codec]": "H264"})"))
      << "JSON names the camera extension and leaves out field 1000";
  EXPECT_EQ(as_json.body.find("opaque"), std::string::npos) << as_json.body;
  EXPECT_EQ(as_json.body.find("1000"), std::string::npos) << as_json.body;
}

TEST_F(ExtensionsTest, JsonReadsExtensionsByBracketedName) {
  const auto id = unique_id("json-cam");
  register_server(http(), {{"unique_id", id},
                           {"services", json::array({{{"protocol", "peernet.camera"},
                                                      {"[peernet.camera.codec]", "VP9"},
                                                      {"[peernet.camera.width]", 640}}})}});

  const auto binary = http().request("GET", "/rooms/default/servers?protocol=peernet.camera", {},
                                     {{"Accept", "application/x-protobuf"}});
  ASSERT_EQ(binary.status, 200);
  ListServersResponse listed;
  ASSERT_TRUE(binary.decode_proto(listed));
  bool found = false;
  for (const auto& server : listed.servers()) {
    if (server.unique_id() == id) {
      found = true;
      EXPECT_EQ(server.services(0).GetExtension(camera::codec), "VP9");
      EXPECT_EQ(server.services(0).GetExtension(camera::width), 640U);
    }
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace peernet::testing
