// The bad-input contract of docs/bad-input.md, one test per row: what the daemon answers to
// requests that are broken, ambiguous or hostile, and that none of them changes anything. Each
// test works on a Scene of its own (a room, a server in it, a knock on that server); TearDown
// compares the daemon's observable state with the snapshot SetUp took.
//
// Six rows were bugs when these tests were written (docs/bad-input.md marks them); each test
// states the behaviour that fixed them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "integration/fixtures.h"
#include "integration/state_snapshot.h"

namespace peernet::testing {
namespace {

constexpr std::size_t kBodyLimit = 4096;
constexpr std::size_t kHeaderLimit = 4096;

/// Sends `bytes`, then closes the sending half (the client has said all it will) and reads until
/// the daemon closes, for at most 5 s.
std::string send_and_half_close(std::uint16_t port, std::string_view bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    throw std::runtime_error("socket() failed");
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string reply;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    ::shutdown(fd, SHUT_WR);
    char chunk[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, chunk, sizeof chunk, 0)) > 0) {
      reply.append(chunk, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return reply;
}

/// Splits what came back on one connection into its responses (each framed by Content-Length).
std::vector<Response> split_responses(std::string_view raw) {
  std::vector<Response> out;
  while (!raw.empty()) {
    const auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
      break;
    }
    auto response = parse_raw_response(raw.substr(0, head_end + 4));
    const auto length = static_cast<std::size_t>(std::stoul(
        response.header("Content-Length").empty() ? "0" : response.header("Content-Length")));
    response.body = std::string(raw.substr(head_end + 4, length));
    raw.remove_prefix(std::min(raw.size(), head_end + 4 + length));
    out.push_back(std::move(response));
  }
  return out;
}

/// A request line and the headers every raw request here carries.
std::string raw_request(std::string_view verb, std::string_view target,
                        std::string_view more_headers = {}) {
  return std::string(verb) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
         std::string(more_headers);
}

class BadInputTest : public DaemonTest {
 public:
  static void SetUpTestSuite() {
    // Small limits keep the oversized cases small; knocks outlive any slow run.
    start_daemon({"--max-body-bytes", std::to_string(kBodyLimit), "--max-header-bytes",
                  std::to_string(kHeaderLimit), "--knock-ttl", "600"});
  }

  static void TearDownTestSuite() {
    // After every kind of abuse above, the daemon still answers, then stops cleanly (exit 0).
    HttpClient fresh(port());
    EXPECT_EQ(fresh.request("GET", "/healthz").status, 200) << daemon().log();
    fresh.close();
    DaemonTest::TearDownTestSuite();
  }

 protected:
  void SetUp() override {
    scene_ = make_scene(http(), "bad");
    observed_ = scene_.observed();
    before_ = take_snapshot(http(), observed_);
  }

  void TearDown() override {
    EXPECT_EQ(http().request("GET", "/healthz").status, 200) << "the daemon carries on";
    EXPECT_TRUE(same_state(before_, take_snapshot(http(), observed_)));
  }

  /// For tests that set more things up first: watch them too, and start comparing from now.
  void snapshot_again(const Observed& also = {}) {
    auto& o = observed_;
    o.rooms.insert(o.rooms.end(), also.rooms.begin(), also.rooms.end());
    o.servers.insert(o.servers.end(), also.servers.begin(), also.servers.end());
    o.knocks.insert(o.knocks.end(), also.knocks.begin(), also.knocks.end());
    before_ = take_snapshot(http(), observed_);
  }

  std::string server_path() const { return "/servers/" + scene_.server.id; }
  std::string service_path() const { return server_path() + "/services/peernet.camera"; }
  std::string listing_path() const { return "/rooms/" + scene_.room.id + "/servers"; }

  /// PUT /servers/{scene server}/services/peernet.camera with the server's token: a request that
  /// would replace the scene's service if the daemon took its body.
  Response put_service(std::string_view body, std::string_view content_type = "application/json") {
    return http().request(
        "PUT", service_path(), body,
        {bearer(scene_.server.token), {"Content-Type", std::string(content_type)}});
  }

  /// The same through Connect: UpdateService with `body` as the whole request.
  Response connect_update_service(std::string_view body,
                                  std::string_view content_type = "application/json") {
    return http().request(
        "POST", "/peernet.PeerNetService/UpdateService", body,
        {bearer(scene_.server.token), {"Content-Type", std::string(content_type)}});
  }

  /// Re-registers the scene's server with its token and `fields` added: would change it if taken.
  Response reregister(const json& fields) {
    json server = {{"unique_id", scene_.server.id}, {"room", scene_.room.id}};
    server.update(fields);
    return http().json("POST", "/servers", server, json_headers(scene_.server.token));
  }

  /// GET /servers/{scene server}/knocks with a query, and the server's token.
  Response list_knocks(std::string_view query) {
    return http().request("GET", server_path() + "/knocks?" + std::string(query), {},
                          auth(scene_.server.token));
  }

  Response get_with_server_token(std::string_view target) {
    return http().request("GET", target, {}, auth(scene_.server.token));
  }

  Response raw(std::string_view bytes) { return parse_raw_response(raw_exchange(port(), bytes)); }

  /// The head of a raw PUT to the scene's service with the server's token, `more_headers` (each
  /// ending in CRLF) and the blank line: the body is up to the caller.
  std::string raw_put_head(std::string_view more_headers) const {
    return raw_request("PUT", service_path(),
                       "Authorization: Bearer " + scene_.server.token + "\r\n" +
                           std::string(more_headers) + "\r\n");
  }

  Scene scene_;
  Observed observed_;
  StateSnapshot before_;
};

// ---- bodies -----------------------------------------------------------------------------------

TEST_F(BadInputTest, MalformedJson) {
  EXPECT_TRUE(is_error(put_service(R"({"version": "2")"), 400, "invalid_argument", "invalid JSON"));
  EXPECT_TRUE(is_error(put_service("version=2"), 400, "invalid_argument", "invalid JSON"));
  EXPECT_TRUE(
      is_error(connect_update_service(R"({"server": )"), 400, "invalid_argument", "invalid JSON"));
}

TEST_F(BadInputTest, WrongJsonTypes) {
  EXPECT_TRUE(is_error(put_service(R"({"version": 2})"), 400, "invalid_argument",
                       "version: expected a string, got a number"));
  EXPECT_TRUE(is_error(put_service(R"({"protocol": ["peernet.camera"]})"), 400, "invalid_argument",
                       "protocol: expected a string, got an array"));
  EXPECT_TRUE(is_error(put_service(R"([{"version": "2"}])"), 400, "invalid_argument",
                       "body: expected an object"));
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", true}}), 400, "invalid_argument",
                       "ttl_seconds: expected an integer, got a boolean"));
  EXPECT_TRUE(is_error(
      connect_update_service(json{{"server", scene_.server.id}, {"service", "camera"}}.dump()), 400,
      "invalid_argument", "service: expected an object"));
}

TEST_F(BadInputTest, UnknownFields) {
  EXPECT_TRUE(is_error(put_service(R"({"version": "2", "colour": "red"})"), 400, "invalid_argument",
                       "colour: unknown field of peernet.Service"));
  EXPECT_TRUE(
      is_error(connect_update_service(json{{"server", scene_.server.id}, {"owner", "me"}}.dump()),
               400, "invalid_argument", "owner: unknown field of peernet.UpdateServiceRequest"));
}

TEST_F(BadInputTest, UnknownExtensionKeys) {
  EXPECT_TRUE(is_error(put_service(R"({"[peernet.nope.codec]": "VP8"})"), 400, "invalid_argument",
                       "[peernet.nope.codec]: unknown extension of peernet.Service"));
  // A real field of another message is no extension of Service either.
  EXPECT_TRUE(is_error(put_service(R"({"[peernet.Room.unique_id]": "x"})"), 400, "invalid_argument",
                       "unknown extension of peernet.Service"));
  // A known extension still has to hold its own type.
  EXPECT_TRUE(is_error(put_service(R"({"[peernet.camera.codec]": 5})"), 400, "invalid_argument",
                       "[peernet.camera.codec]: expected a string"));
}

TEST_F(BadInputTest, InvalidProtobufBytes) {
  constexpr std::string_view kBinary = "application/x-protobuf";
  EXPECT_TRUE(is_error(put_service("\xff\xff\xff\xff", kBinary), 400, "invalid_argument",
                       "not a valid binary peernet.Service message"));
  // Field 2 claims 5 bytes and the body ends after 2.
  EXPECT_TRUE(is_error(put_service("\x12\x05\x61\x62", kBinary), 400, "invalid_argument",
                       "not a valid binary peernet.Service message"));
  EXPECT_TRUE(is_error(connect_update_service("\x0a\xff", "application/proto"), 400,
                       "invalid_argument", "not a valid binary peernet.UpdateServiceRequest"));
}

TEST_F(BadInputTest, JsonLabelledProtobuf) {
  EXPECT_TRUE(is_error(put_service(R"({"version": "2"})", "application/x-protobuf"), 400,
                       "invalid_argument", "not a valid binary peernet.Service message"));
  EXPECT_TRUE(is_error(
      connect_update_service(json{{"server", scene_.server.id}}.dump(), "application/proto"), 400,
      "invalid_argument", "not a valid binary peernet.UpdateServiceRequest message"));
}

TEST_F(BadInputTest, ProtobufLabelledJson) {
  // Service{version: "2"} in binary: field 2, length 1, "2".
  EXPECT_TRUE(is_error(put_service("\x12\x01\x32"), 400, "invalid_argument", "invalid JSON"));
  EXPECT_TRUE(
      is_error(connect_update_service("\x0a\x01x"), 400, "invalid_argument", "invalid JSON"));
}

TEST_F(BadInputTest, UnsupportedContentType) {
  EXPECT_TRUE(is_error(put_service(R"({"version": "2"})", "text/plain"), 415, "invalid_argument",
                       "Content-Type 'text/plain' is not supported"));
  EXPECT_TRUE(is_error(put_service(R"({"version": "2"})", "application/xml; charset=utf-8"), 415,
                       "invalid_argument", "application/xml"));
  // curl's -d label is read as JSON in REST only; Connect clients always say what they send.
  EXPECT_TRUE(is_error(connect_update_service(json{{"server", scene_.server.id}}.dump(),
                                              "application/x-www-form-urlencoded"),
                       415, "invalid_argument", "application/x-www-form-urlencoded"));
}

TEST_F(BadInputTest, ContentTypeThatOnlyStartsLikeCurlsForm) {
  // Only curl's exact form type is read as JSON; a prefix match once let lookalikes through.
  EXPECT_TRUE(is_error(put_service(R"({"version": "2"})", "application/x-www-form-urlencodedjunk"),
                       415, "invalid_argument", "application/x-www-form-urlencodedjunk"));
}

TEST_F(BadInputTest, DuplicateJsonKeys) {
  // Which value counts? Neither: the last one used to win silently, so a filter in front of the
  // daemon and the daemon could read one request differently.
  EXPECT_TRUE(is_error(put_service(R"({"version": "2", "version": "3"})"), 400, "invalid_argument",
                       "version"));
  EXPECT_TRUE(is_error(reregister({{"display_name", "one"}, {"displayName", "two"}}), 400,
                       "invalid_argument", "display_name"));
}

// ---- numbers ----------------------------------------------------------------------------------

TEST_F(BadInputTest, Uint32OutOfRange) {
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", 4294967296}}), 422, "invalid_argument",
                       "ttl_seconds: 4294967296 is out of range"));
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", "4294967296"}}), 422, "invalid_argument",
                       "ttl_seconds: \"4294967296\" is out of range"));
  EXPECT_TRUE(is_error(list_knocks("wait=4294967296"), 422, "invalid_argument",
                       "wait_seconds: 4294967296 is out of range"));
  EXPECT_TRUE(is_error(list_knocks("since=18446744073709551616"), 422, "invalid_argument",
                       "since: 18446744073709551616 is out of range"));
  // In range for uint32 but not for the daemon: the registry's own bound.
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", 4294967295}}), 422, "invalid_argument",
                       "is outside the allowed 5 to 300"));
}

TEST_F(BadInputTest, NegativeNumbers) {
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", -1}}), 422, "invalid_argument",
                       "ttl_seconds: -1 is out of range (must not be negative)"));
  // As text they are not numbers of the field's kind at all.
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", "-1"}}), 400, "invalid_argument",
                       "ttl_seconds: \"-1\" is not an integer"));
  EXPECT_TRUE(is_error(list_knocks("wait=-1"), 400, "invalid_argument",
                       "wait_seconds: '-1' is not a whole number"));
}

TEST_F(BadInputTest, NumberTooLargeForADouble) {
  // This used to abort the daemon (an exception of the JSON parser that nothing caught). Now it is
  // out of range like any other number too large for its field (422), wherever it appears.
  EXPECT_TRUE(is_error(
      http().request("POST", "/servers",
                     R"({"unique_id": ")" + scene_.server.id + R"(", "ttl_seconds": 1e400})",
                     json_headers(scene_.server.token)),
      422, "invalid_argument", "out of range"));
  EXPECT_TRUE(is_error(put_service(R"({"[peernet.camera.width]": -1e400})"), 422,
                       "invalid_argument", "out of range"));
  // Even where no token is needed: one request must not be able to stop the daemon.
  EXPECT_TRUE(is_error(http().request("POST", "/rooms", R"({"display_name": 1e400})"), 422,
                       "invalid_argument", "out of range"));
}

TEST_F(BadInputTest, NumbersWithTrailingLetters) {
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", "12abc"}}), 400, "invalid_argument",
                       "ttl_seconds: \"12abc\" is not an integer"));
  EXPECT_TRUE(is_error(http().request("POST", "/servers", R"({"ttl_seconds": 12abc})",
                                      json_headers(scene_.server.token)),
                       400, "invalid_argument", "invalid JSON"));
  EXPECT_TRUE(is_error(list_knocks("wait=12abc"), 400, "invalid_argument",
                       "wait_seconds: '12abc' is not a whole number"));
  // The query takes plain digits only, so an exponent is no number there (and no crash).
  EXPECT_TRUE(is_error(list_knocks("wait=1e400"), 400, "invalid_argument",
                       "wait_seconds: '1e400' is not a whole number"));
  EXPECT_TRUE(is_error(reregister({{"ttl_seconds", 1.5}}), 422, "invalid_argument",
                       "ttl_seconds: 1.5 is not an integer in range"));
}

// ---- text -------------------------------------------------------------------------------------

TEST_F(BadInputTest, InvalidUtf8InJson) {
  EXPECT_TRUE(is_error(put_service("{\"version\": \"\xc3\x28\"}"), 400, "invalid_argument",
                       "ill-formed UTF-8"));
  // An escaped lone surrogate is no character either.
  EXPECT_TRUE(
      is_error(put_service(R"({"version": "\ud800"})"), 400, "invalid_argument", "surrogate"));
}

TEST_F(BadInputTest, InvalidUtf8InBinaryStrings) {
  // Service.version (field 2) and UpdateServiceRequest.server (field 1): "\xc3\x28".
  EXPECT_TRUE(is_error(put_service("\x12\x02\xc3\x28", "application/x-protobuf"), 400,
                       "invalid_argument", "version: not valid UTF-8"));
  EXPECT_TRUE(is_error(connect_update_service("\x0a\x02\xc3\x28", "application/proto"), 400,
                       "invalid_argument", "server: not valid UTF-8"));
}

// ---- paths ------------------------------------------------------------------------------------

TEST_F(BadInputTest, DotSegmentsInThePath) {
  const auto& id = scene_.server.id;
  EXPECT_TRUE(is_error(get_with_server_token("/servers/../servers/" + id), 404, "not_found",
                       "no route for /servers/../servers/" + id));
  EXPECT_TRUE(
      is_error(http().request("DELETE", server_path() + "/..", {}, auth(scene_.server.token)), 404,
               "not_found", "no route"));
  EXPECT_TRUE(is_error(get_with_server_token("/servers/.."), 404, "not_found", "server '..'"));
  EXPECT_TRUE(is_error(get_with_server_token("/servers/%2e%2e"), 404, "not_found", "server '..'"));
}

TEST_F(BadInputTest, EncodedSlashInAnId) {
  const auto& id = scene_.server.id;
  EXPECT_TRUE(is_error(get_with_server_token("/servers/" + id + "%2Fknocks"), 404, "not_found",
                       "server '" + id + "/knocks'"));
  EXPECT_TRUE(
      is_error(http().request("DELETE", "/servers/" + id + "%2F", {}, auth(scene_.server.token)),
               404, "not_found", "server '" + id + "/'"));
  EXPECT_TRUE(is_error(http().request("PUT", server_path() + "/services/peernet.camera%2Fx", "{}",
                                      json_headers(scene_.server.token)),
                       422, "invalid_argument", "service.protocol: may only contain"));
}

TEST_F(BadInputTest, NulByteInAnId) {
  EXPECT_TRUE(
      is_error(get_with_server_token(server_path() + "%00"), 404, "not_found", scene_.server.id));
  EXPECT_TRUE(is_error(
      http().request("DELETE", "/rooms/" + scene_.room.id + "%00", {}, auth(scene_.room.token)),
      404, "not_found", scene_.room.id));
  EXPECT_TRUE(is_error(http().request("GET", "/rooms/" + scene_.room.id + "%00/servers"), 422,
                       "invalid_argument", "room: may only contain"));
}

TEST_F(BadInputTest, InvalidUtf8InAPathId) {
  // Path ids are looked up, not validated: no such id exists, and the message masks the bytes.
  EXPECT_TRUE(is_error(get_with_server_token(server_path() + "%C3%28"), 404, "not_found",
                       scene_.server.id + "?("));
  EXPECT_TRUE(is_error(http().request("GET", "/rooms/%C3%28/servers"), 422, "invalid_argument",
                       "room: may only contain"));
}

TEST_F(BadInputTest, OverlongIds) {
  const std::string long_id(200, 'a');
  EXPECT_TRUE(is_error(get_with_server_token("/servers/" + long_id), 404, "not_found", long_id));
  EXPECT_TRUE(is_error(http().request("GET", "/rooms/" + long_id + "/servers"), 422,
                       "invalid_argument", "room: 200 characters is longer than the limit of 128"));
  EXPECT_TRUE(is_error(http().json("POST", "/rooms", {{"unique_id", long_id}}, json_headers()), 422,
                       "invalid_argument", "room.unique_id: 200 characters"));
}

TEST_F(BadInputTest, EncodedIdThatDecodesToAValidOne) {
  // "%62ad-..." is "bad-...": the same id, so the same server (RFC 3986 equivalence).
  const auto& id = scene_.server.id;
  ASSERT_EQ(id.front(), 'b');
  const auto plain = get_with_server_token(server_path());
  const auto encoded = get_with_server_token("/servers/%62" + id.substr(1));
  ASSERT_EQ(encoded.status, 200) << encoded.body;
  EXPECT_EQ(encoded.json()["server"]["unique_id"], id);
  EXPECT_EQ(encoded.json()["server"]["services"], plain.json()["server"]["services"]);
  const auto listed = http().request("GET", "/rooms/%62" + scene_.room.id.substr(1) + "/servers");
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.json(), http().request("GET", listing_path()).json());
}

TEST_F(BadInputTest, DoubleSlashes) {
  EXPECT_TRUE(is_error(get_with_server_token("/servers//" + scene_.server.id), 404, "not_found",
                       "no route for /servers//"));
  EXPECT_TRUE(
      is_error(get_with_server_token("/" + server_path()), 404, "not_found", "no route for //"));
  EXPECT_TRUE(is_error(http().request("GET", "/rooms//servers"), 404, "not_found", "no route"));
}

TEST_F(BadInputTest, TrailingSlash) {
  EXPECT_TRUE(is_error(get_with_server_token(server_path() + "/"), 404, "not_found",
                       "no route for " + server_path() + "/"));
  EXPECT_TRUE(is_error(
      http().request("DELETE", "/rooms/" + scene_.room.id + "/", {}, auth(scene_.room.token)), 404,
      "not_found", "no route"));
}

// ---- ids and tokens ---------------------------------------------------------------------------

TEST_F(BadInputTest, DuplicateIds) {
  EXPECT_TRUE(
      is_error(http().json("POST", "/rooms", {{"unique_id", scene_.room.id}}, json_headers()), 409,
               "already_exists", "room '" + scene_.room.id + "' already exists"));
  EXPECT_TRUE(
      is_error(http().json("POST", "/servers", {{"unique_id", scene_.server.id}}, json_headers()),
               409, "already_exists", "server id '" + scene_.server.id + "' is taken"));
  EXPECT_TRUE(
      is_error(http().json("POST", server_path() + "/services", {{"protocol", "peernet.camera"}},
                           json_headers(scene_.server.token)),
               409, "already_exists", "already has a service 'peernet.camera'"));
  EXPECT_TRUE(is_error(
      reregister({{"services",
                   json::array({{{"protocol", "peernet.file"}}, {{"protocol", "peernet.file"}}})}}),
      422, "invalid_argument", "services[1].protocol: 'peernet.file' appears twice"));
}

TEST_F(BadInputTest, ReplayedTokenOfARecreatedServer) {
  const auto id = unique_id("bad-reborn");
  const auto first = register_long_lived_server(http(), id, scene_.room.id);
  ASSERT_EQ(http().request("DELETE", "/servers/" + id, {}, auth(first.token)).status, 200);
  const auto second = register_long_lived_server(http(), id, scene_.room.id);
  snapshot_again({{}, {second}, {}});

  const auto path = "/servers/" + id;
  const auto refused = "the token is not server '" + id + "'";
  EXPECT_TRUE(is_error(http().request("GET", path, {}, auth(first.token)), 401, "unauthenticated",
                       refused));
  EXPECT_TRUE(is_error(http().request("PUT", path + "/services/peernet.camera",
                                      R"({"version": "9"})", json_headers(first.token)),
                       401, "unauthenticated", refused));
  EXPECT_TRUE(is_error(http().request("DELETE", path, {}, auth(first.token)), 401,
                       "unauthenticated", refused));
  EXPECT_TRUE(is_error(reregister({{"unique_id", id}, {"display_name", "replayed"}}), 409,
                       "already_exists", id))
      << "the scene server's token is no more this id's than the replayed one";
}

TEST_F(BadInputTest, AnotherResourcesToken) {
  const auto other = make_scene(http(), "bad-other");
  snapshot_again(other.observed());
  EXPECT_TRUE(is_error(http().request("GET", server_path(), {}, auth(other.server.token)), 401,
                       "unauthenticated", "is not server '" + scene_.server.id + "''s token"));
  EXPECT_TRUE(
      is_error(http().request("DELETE", "/rooms/" + scene_.room.id, {}, auth(other.room.token)),
               401, "unauthenticated", "is not room '" + scene_.room.id + "''s token"));
  EXPECT_TRUE(is_error(http().json("PATCH", "/knocks/" + scene_.knock.id,
                                   {{"answer", "v=0 forged"}}, json_headers(other.server.token)),
                       401, "unauthenticated", "neither knock '" + scene_.knock.id + "''s"));
  EXPECT_TRUE(
      is_error(http().request("GET", "/knocks/" + scene_.knock.id, {}, auth(other.knock.token)),
               401, "unauthenticated", "neither knock"));
}

TEST_F(BadInputTest, DeletedResourcesToken) {
  const auto gone_server =
      register_long_lived_server(http(), unique_id("bad-gone"), scene_.room.id);
  ASSERT_EQ(
      http().request("DELETE", "/servers/" + gone_server.id, {}, auth(gone_server.token)).status,
      200);
  const auto gone_knock = create_knock(http(), scene_.server.id);
  ASSERT_EQ(http().request("DELETE", "/knocks/" + gone_knock.id, {}, auth(gone_knock.token)).status,
            200);
  snapshot_again();

  EXPECT_TRUE(
      is_error(http().request("GET", "/servers/" + gone_server.id, {}, auth(gone_server.token)),
               404, "not_found", "server '" + gone_server.id + "' not found"));
  EXPECT_TRUE(is_error(http().json("PATCH", "/knocks/" + gone_knock.id,
                                   {{"ice_candidates", json::array({{{"candidate", "x"}}})}},
                                   json_headers(gone_knock.token)),
                       404, "not_found", "knock '" + gone_knock.id + "' not found"));
  // A dead thing's token opens nothing else.
  EXPECT_TRUE(
      is_error(http().request("GET", "/knocks/" + scene_.knock.id, {}, auth(gone_knock.token)), 401,
               "unauthenticated", "neither knock"));
}

TEST_F(BadInputTest, MissingOrGarbageAuthorization) {
  const auto& token = scene_.server.token;
  const std::vector<std::pair<Headers, std::string>> cases = {
      {{}, "missing token"},
      {{{"Authorization", "Bearer"}}, "missing token"},
      {{{"Authorization", "Bearer    "}}, "missing token"},
      {{{"Authorization", "Basic " + token}}, "missing token"},
      {{{"Authorization", token}}, "missing token"},
      {{{"Authorization", "Bearer " + std::string(token.size(), 'A')}}, "is not server"},
      {{{"Authorization", "Bearer " + token + "x"}}, "is not server"},
      {{{"Authorization", "Bearer " + token + " " + token}}, "is not server"},
  };
  for (const auto& [headers, problem] : cases) {
    EXPECT_TRUE(is_error(http().request("DELETE", server_path(), {}, headers), 401,
                         "unauthenticated", problem))
        << (headers.empty() ? "(none)" : headers.front().second);
  }
  // Control characters make the header itself malformed, before any token is looked at.
  EXPECT_TRUE(is_error(
      http().request("DELETE", server_path(), {}, {{"Authorization", "Bearer \x01\x02\x7f"}}), 400,
      "invalid_argument", "malformed HTTP request: bad value"));
}

TEST_F(BadInputTest, NextPollNamingAnotherServer) {
  // Refused before anything is applied (the answer used to be recorded despite the 422).
  EXPECT_TRUE(is_error(http().json("PATCH", "/knocks/" + scene_.knock.id,
                                   {{"answer", "v=0 answer"}, {"next_poll", {{"server", "other"}}}},
                                   json_headers(scene_.server.token)),
                       422, "invalid_argument", "next_poll.server"));
}

// ---- HTTP framing -----------------------------------------------------------------------------

TEST_F(BadInputTest, TruncatedBody) {
  // Content-Length promises 100 bytes, 22 come, then the client closes its side.
  const auto reply = send_and_half_close(
      port(), raw_put_head("Content-Type: application/json\r\nContent-Length: 100\r\n") +
                  R"({"version": "truncated)");
  const auto response = parse_raw_response(reply);
  EXPECT_TRUE(
      is_error(response, 400, "invalid_argument", "malformed HTTP request: partial message"))
      << reply;
  EXPECT_EQ(response.header("Connection"), "close");
}

TEST_F(BadInputTest, OversizedBody) {
  const auto body = json{{"version", std::string(kBodyLimit, '9')}}.dump();
  const auto response = put_service(body);
  EXPECT_TRUE(is_error(response, 413, "resource_exhausted",
                       "body: over the limit of 4096 bytes (max_body_bytes)"));
  EXPECT_EQ(response.header("Connection"), "close");
  // Announced too large: refused from the header alone, before any body arrives.
  EXPECT_TRUE(is_error(raw(raw_put_head("Content-Length: 1000000\r\n") + "{"), 413,
                       "resource_exhausted", "max_body_bytes"));
}

TEST_F(BadInputTest, ChunkedBadChunkSize) {
  const auto head = raw_put_head("Transfer-Encoding: chunked\r\n");
  EXPECT_TRUE(is_error(raw(head + "zz\r\n{}\r\n0\r\n\r\n"), 400, "invalid_argument",
                       "malformed HTTP request: bad chunk"));
  EXPECT_TRUE(is_error(raw(head + "fffffffffffffffffff\r\n{}\r\n0\r\n\r\n"), 400,
                       "invalid_argument", "malformed HTTP request: bad chunk"));
}

TEST_F(BadInputTest, ChunkExtensionJunk) {
  const auto head = raw_put_head("Transfer-Encoding: chunked\r\n");
  EXPECT_TRUE(is_error(raw(head + "2;\x01\x02junk\r\n{}\r\n0\r\n\r\n"), 400, "invalid_argument",
                       "malformed HTTP request: bad chunk extension"));
}

TEST_F(BadInputTest, ChunksSummingOverTheBodyLimit) {
  std::string body;
  const std::string chunk(1000, ' ');
  for (int i = 0; i < 5; ++i) {
    body += "3e8\r\n" + chunk + "\r\n";
  }
  body += "0\r\n\r\n";
  const auto response = raw(raw_put_head("Transfer-Encoding: chunked\r\n") + body);
  EXPECT_TRUE(is_error(response, 413, "resource_exhausted", "max_body_bytes"));
}

TEST_F(BadInputTest, TransferEncodingWithContentLength) {
  // Two framings at once is how requests are smuggled past proxies: refused, never guessed.
  const auto response = raw(raw_put_head("Transfer-Encoding: chunked\r\nContent-Length: 16\r\n") +
                            "10\r\n{\"version\": \"7\"}\r\n0\r\n\r\n");
  EXPECT_TRUE(
      is_error(response, 400, "invalid_argument", "malformed HTTP request: bad Content-Length"));
  EXPECT_EQ(response.header("Connection"), "close");
}

TEST_F(BadInputTest, TransferCodingItCannotDecode) {
  // RFC 9112 section 6.1: a coding the daemon cannot decode is 501, not a body read as plain.
  const auto response =
      raw(raw_put_head("Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n") +
          "10\r\n{\"version\": \"7\"}\r\n0\r\n\r\n");
  EXPECT_TRUE(is_error(response, 501, "unimplemented", "gzip"));
}

TEST_F(BadInputTest, PipelinedGarbageAfterAGoodRequest) {
  const auto replies = split_responses(raw_exchange(
      port(), raw_request("GET", listing_path(), "\r\n") + "GARBAGE \x01\x02 HTTP/9\r\n\r\n"));
  ASSERT_EQ(replies.size(), 2U);
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(replies[0].json(), http().request("GET", listing_path()).json());
  EXPECT_TRUE(is_error(replies[1], 400, "invalid_argument", "malformed HTTP request"));
  EXPECT_EQ(replies[1].header("Connection"), "close");
}

TEST_F(BadInputTest, OversizedHeaders) {
  const auto response =
      http().request("GET", server_path(), {},
                     {bearer(scene_.server.token), {"X-Filler", std::string(kHeaderLimit, 'h')}});
  EXPECT_TRUE(is_error(response, 431, "resource_exhausted",
                       "header block: over the limit of 4096 bytes (max_header_bytes)"));
  EXPECT_EQ(response.header("Connection"), "close");
  EXPECT_TRUE(
      is_error(raw(raw_request("GET", "/servers/" + std::string(kHeaderLimit, 'a'), "\r\n")), 431,
               "resource_exhausted", "max_header_bytes"));
}

TEST_F(BadInputTest, BadMethod) {
  const auto unknown = http().request("FOO", server_path(), {}, auth(scene_.server.token));
  EXPECT_TRUE(is_error(unknown, 405, "unimplemented",
                       server_path() + " does not take FOO (it takes GET, DELETE)"));
  EXPECT_EQ(unknown.header("Allow"), "GET, DELETE");
  EXPECT_TRUE(is_error(raw(raw_request("G@T", server_path(), "\r\n")), 400, "invalid_argument",
                       "malformed HTTP request: bad method"));
}

TEST_F(BadInputTest, Http10) {
  const auto reply = raw_exchange(port(), "GET " + listing_path() + " HTTP/1.0\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.0 200 OK\r\n", 0), 0U) << reply;
  EXPECT_EQ(parse_raw_response(reply).json(), http().request("GET", listing_path()).json());
}

TEST_F(BadInputTest, Http09) {
  const auto response = raw("GET " + listing_path() + "\r\n");
  EXPECT_TRUE(is_error(response, 400, "invalid_argument", "malformed HTTP request"));
  EXPECT_EQ(response.header("Connection"), "close");
}

TEST_F(BadInputTest, NoHost) {
  // RFC 9112 section 3.2 requires the 400.
  const auto response = raw("DELETE " + server_path() + " HTTP/1.1\r\nAuthorization: Bearer " +
                            scene_.server.token + "\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(is_error(response, 400, "invalid_argument", "Host"));
}

}  // namespace
}  // namespace peernet::testing
