#include "core/memory_registry.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "camera.pb.h"
#include "core/ids.h"
#include "core/limits.h"
#include "unit/fake_clock.h"

namespace peernet::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::string_view kCamera = "peernet.camera";
constexpr std::string_view kSensor = "peernet.sensor";
constexpr std::string_view kOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n";
constexpr std::string_view kAnswer = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\n";

/// The value of a call that must succeed; an error ends the test with its message.
template <typename T>
T must(Result<T> result) {
  if (!result.ok()) {
    throw std::runtime_error("unexpected error: " + result.error().message);
  }
  return std::move(result).value();
}

/// Expects `result` to have failed with `code`, its message naming `mentions`.
template <typename T>
void expect_error(const Result<T>& result, ErrorCode code, std::string_view mentions = {},
                  std::source_location where = std::source_location::current()) {
  const ::testing::ScopedTrace trace(where.file_name(), static_cast<int>(where.line()),
                                     "expect_error");
  ASSERT_FALSE(result.ok()) << "the call succeeded";
  EXPECT_EQ(static_cast<int>(result.error().code), static_cast<int>(code))
      << result.error().message;
  EXPECT_THAT(result.error().message, HasSubstr(std::string(mentions)));
}

Service make_service(std::string_view protocol, std::string_view version = "1") {
  Service service;
  service.set_protocol(std::string(protocol));
  service.set_version(std::string(version));
  return service;
}

Server make_server(std::string_view id, const std::vector<Service>& services,
                   std::uint32_t ttl_seconds = 0) {
  Server server;
  server.set_unique_id(std::string(id));
  server.set_display_name("Server " + std::string(id));
  for (const auto& service : services) {
    *server.add_services() = service;
  }
  if (ttl_seconds != 0) {
    server.set_ttl_seconds(ttl_seconds);
  }
  return server;
}

IceCandidate make_candidate(std::string_view line) {
  IceCandidate candidate;
  candidate.set_candidate(std::string(line));
  candidate.set_sdp_mid("0");
  candidate.set_sdp_line_index(0);
  return candidate;
}

UpdateKnockRequest answer_with(std::string_view answer) {
  UpdateKnockRequest update;
  update.set_answer(std::string(answer));
  return update;
}

UpdateKnockRequest reject_because(std::string_view reason) {
  UpdateKnockRequest update;
  update.set_reject(true);
  update.set_reason(std::string(reason));
  return update;
}

UpdateKnockRequest trickle(std::string_view line) {
  UpdateKnockRequest update;
  *update.add_ice_candidates() = make_candidate(line);
  return update;
}

std::vector<std::string> candidate_lines(
    const google::protobuf::RepeatedPtrField<IceCandidate>& candidates) {
  std::vector<std::string> lines;
  for (const auto& c : candidates) {
    lines.push_back(c.candidate());
  }
  return lines;
}

std::vector<std::string> server_ids(const ListServersResponse& listed) {
  std::vector<std::string> ids;
  for (const auto& s : listed.servers()) {
    ids.push_back(s.unique_id());
  }
  return ids;
}

std::vector<std::string> knock_ids(const ListKnocksResponse& listed) {
  std::vector<std::string> ids;
  for (const auto& k : listed.knocks()) {
    ids.push_back(k.unique_id());
  }
  return ids;
}

/// A registered server as its owner knows it.
struct ServerHandle {
  std::string id;
  std::string token;
};

/// A knock as its knocker knows it.
struct KnockHandle {
  std::string id;
  std::string token;
  std::uint64_t revision = 0;
};

class MemoryRegistryTest : public ::testing::Test {
 protected:
  MemoryRegistryTest() { use_limits(RegistryLimits{}); }

  void use_limits(RegistryLimits limits) {
    registry_ = std::make_unique<MemoryRegistry>(clock_, std::move(limits));
  }

  MemoryRegistry& registry() { return *registry_; }

  /// Moves time on and lets the registry forget what is due, as the daemon's timer would.
  void advance(std::chrono::nanoseconds by) {
    clock_.advance(by);
    registry_->expire(clock_.now());
  }

  ServerHandle add_server(std::string_view id,
                          std::vector<Service> services = {make_service(kCamera)},
                          std::uint32_t ttl_seconds = 0) {
    auto registered = must(registry().register_server(make_server(id, services, ttl_seconds), ""));
    return {registered.response.server().unique_id(), registered.response.token()};
  }

  KnockHandle knock_on(const ServerHandle& server, std::vector<IceCandidate> candidates = {}) {
    Knock knock;
    knock.set_protocol(std::string(kCamera));
    knock.set_offer(std::string(kOffer));
    for (auto& c : candidates) {
      *knock.add_ice_candidates() = std::move(c);
    }
    auto created = must(registry().create_knock(server.id, knock));
    return {created.knock().unique_id(), created.token(), created.knock().revision()};
  }

  bool server_listed(std::string_view id, std::string_view room = "default") {
    ListServersRequest request;
    request.set_room(std::string(room));
    const auto ids = server_ids(must(registry().list_servers(request)));
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  }

  test::FakeClock clock_;
  std::unique_ptr<MemoryRegistry> registry_;
};

// ---- rooms ----------------------------------------------------------------------------------

Room make_room(std::string_view id, std::string_view display_name = "Lab") {
  Room room;
  room.set_unique_id(std::string(id));
  room.set_display_name(std::string(display_name));
  return room;
}

TEST_F(MemoryRegistryTest, CreatesRoomWithChosenId) {
  const auto created = must(registry().create_room(make_room("lab", "The lab")));
  EXPECT_EQ(created.room().unique_id(), "lab");
  EXPECT_FALSE(created.token().empty());

  const auto room = must(registry().get_room("lab"));
  EXPECT_EQ(room.unique_id(), "lab");
  EXPECT_EQ(room.display_name(), "The lab");
}

TEST_F(MemoryRegistryTest, GeneratesUnguessableRoomIds) {
  const auto first = must(registry().create_room(make_room("")));
  const auto second = must(registry().create_room(make_room("")));
  EXPECT_EQ(first.room().unique_id().size(), 22U);
  EXPECT_EQ(second.room().unique_id().size(), 22U);
  EXPECT_TRUE(is_valid_id(first.room().unique_id()));
  EXPECT_NE(first.room().unique_id(), second.room().unique_id());
  EXPECT_NE(first.token(), second.token());
  EXPECT_TRUE(registry().get_room(second.room().unique_id()).ok());
}

TEST_F(MemoryRegistryTest, RefusesDuplicateRoomId) {
  must(registry().create_room(make_room("lab")));
  expect_error(registry().create_room(make_room("lab")), ErrorCode::kAlreadyExists, "lab");
}

TEST_F(MemoryRegistryTest, UnknownRoomIsNotFound) {
  expect_error(registry().get_room("nowhere"), ErrorCode::kNotFound, "nowhere");
}

TEST_F(MemoryRegistryTest, DeletingRoomNeedsItsToken) {
  const auto lab = must(registry().create_room(make_room("lab")));
  const auto other = must(registry().create_room(make_room("other")));

  expect_error(registry().delete_room("lab", ""), ErrorCode::kUnauthenticated);
  expect_error(registry().delete_room("lab", "not-the-token"), ErrorCode::kUnauthenticated);
  expect_error(registry().delete_room("lab", other.token()), ErrorCode::kUnauthenticated);
  EXPECT_TRUE(registry().get_room("lab").ok());

  EXPECT_TRUE(registry().delete_room("lab", lab.token()).ok());
  expect_error(registry().get_room("lab"), ErrorCode::kNotFound);
  EXPECT_TRUE(registry().get_room("other").ok());
}

TEST_F(MemoryRegistryTest, DefaultRoomExistsAndCannotBeDeleted) {
  EXPECT_EQ(must(registry().get_room("default")).unique_id(), "default");
  EXPECT_FALSE(registry().delete_room("default", "").ok());
  EXPECT_FALSE(registry().delete_room("default", "guess").ok());
  EXPECT_TRUE(registry().get_room("default").ok());
}

TEST_F(MemoryRegistryTest, DeletingRoomRemovesItsServers) {
  const auto lab = must(registry().create_room(make_room("lab")));
  auto server = make_server("cam", {make_service(kCamera)});
  server.set_room("lab");
  const auto registered = must(registry().register_server(server, ""));
  const auto bystander = add_server("elsewhere");

  ASSERT_TRUE(registry().delete_room("lab", lab.token()).ok());
  expect_error(registry().get_server("cam", registered.response.token()), ErrorCode::kNotFound);
  EXPECT_TRUE(registry().get_server(bystander.id, bystander.token).ok());
  EXPECT_EQ(registry().stats().servers, 1U);
}

// ---- servers --------------------------------------------------------------------------------

TEST_F(MemoryRegistryTest, ServerWithoutRoomJoinsDefaultRoom) {
  const auto registered = must(registry().register_server(make_server("cam", {}), ""));
  EXPECT_TRUE(registered.created);
  EXPECT_EQ(registered.response.server().room(), "default");
  EXPECT_TRUE(server_listed("cam"));
}

TEST_F(MemoryRegistryTest, ServerWithoutIdGetsGeneratedOne) {
  const auto a = add_server("");
  const auto b = add_server("");
  EXPECT_EQ(a.id.size(), 22U);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.token, b.token);
}

TEST_F(MemoryRegistryTest, ServerInUnknownRoomIsNotFound) {
  auto server = make_server("cam", {});
  server.set_room("nowhere");
  expect_error(registry().register_server(server, ""), ErrorCode::kNotFound, "nowhere");
}

TEST_F(MemoryRegistryTest, InvalidIdsAreRefusedNamingTheField) {
  const std::vector<std::string> bad_ids = {"has space",           "..",          ".",
                                            std::string(129, 'a'), "caf\xc3\xa9", "a/b"};
  for (const auto& bad : bad_ids) {
    SCOPED_TRACE(bad);
    expect_error(registry().register_server(make_server(bad, {}), ""), ErrorCode::kInvalidValue,
                 "server.unique_id");
    auto in_bad_room = make_server("cam", {});
    in_bad_room.set_room(bad);
    expect_error(registry().register_server(in_bad_room, ""), ErrorCode::kInvalidValue,
                 "server.room");
    expect_error(registry().create_room(make_room(bad)), ErrorCode::kInvalidValue,
                 "room.unique_id");
    expect_error(registry().register_server(make_server("cam", {make_service(bad)}), ""),
                 ErrorCode::kInvalidValue, "server.services[0].protocol");
  }
  EXPECT_TRUE(registry().register_server(make_server(std::string(128, 'a'), {}), "").ok());
}

TEST_F(MemoryRegistryTest, TtlDefaultsToThirtySeconds) {
  const auto registered = must(registry().register_server(make_server("cam", {}), ""));
  EXPECT_EQ(registered.response.server().ttl_seconds(), 30U);
}

TEST_F(MemoryRegistryTest, TtlWithinBoundsIsGranted) {
  for (const std::uint32_t ttl : {5U, 120U, 300U}) {
    const auto registered =
        must(registry().register_server(make_server("ttl" + std::to_string(ttl), {}, ttl), ""));
    EXPECT_EQ(registered.response.server().ttl_seconds(), ttl);
  }
}

TEST_F(MemoryRegistryTest, TtlOutsideBoundsIsRefused) {
  for (const std::uint32_t ttl : {4U, 301U, 4'000'000'000U}) {
    SCOPED_TRACE(ttl);
    expect_error(registry().register_server(make_server("cam", {}, ttl), ""),
                 ErrorCode::kInvalidValue, "server.ttl_seconds");
  }
}

TEST_F(MemoryRegistryTest, DuplicateProtocolsAreRefused) {
  const auto server = make_server(
      "cam", {make_service(kCamera), make_service(kSensor), make_service(kCamera, "2")});
  expect_error(registry().register_server(server, ""), ErrorCode::kInvalidValue,
               "server.services[2].protocol");
  EXPECT_EQ(registry().stats().servers, 0U);
}

TEST_F(MemoryRegistryTest, ReRegisteringWithOwnTokenReplacesFields) {
  const auto first = add_server("cam", {make_service(kCamera)});

  auto changed = make_server("cam", {make_service(kSensor, "2")}, 60);
  changed.set_display_name("Porch");
  const auto again = must(registry().register_server(changed, first.token));
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.response.token(), first.token);

  const auto held = must(registry().get_server("cam", first.token));
  EXPECT_EQ(held.display_name(), "Porch");
  EXPECT_EQ(held.ttl_seconds(), 60U);
  ASSERT_EQ(held.services_size(), 1);
  EXPECT_EQ(held.services(0).protocol(), kSensor);
  EXPECT_EQ(held.services(0).version(), "2");
  EXPECT_EQ(registry().stats().servers, 1U);
}

TEST_F(MemoryRegistryTest, SomeoneElsesLiveIdIsRefused) {
  add_server("cam");
  const auto other = add_server("other");
  expect_error(registry().register_server(make_server("cam", {}), ""), ErrorCode::kAlreadyExists,
               "cam");
  expect_error(registry().register_server(make_server("cam", {}), other.token),
               ErrorCode::kAlreadyExists, "cam");
}

TEST_F(MemoryRegistryTest, ListingShowsOnlyPublicFields) {
  add_server("cam", {make_service(kCamera)});
  ListServersRequest request;
  request.set_room("default");
  const auto listed = must(registry().list_servers(request));
  ASSERT_EQ(listed.servers_size(), 1);
  const auto& server = listed.servers(0);
  EXPECT_EQ(server.unique_id(), "cam");
  EXPECT_EQ(server.display_name(), "Server cam");
  ASSERT_EQ(server.services_size(), 1);
  EXPECT_EQ(server.services(0).protocol(), kCamera);
  EXPECT_FALSE(server.has_room());
  EXPECT_FALSE(server.has_ttl_seconds());
  EXPECT_FALSE(server.has_expire_time());
}

TEST_F(MemoryRegistryTest, ListingFiltersByProtocolAndVersion) {
  add_server("cam1", {make_service(kCamera, "1")});
  add_server("cam2", {make_service(kCamera, "2"), make_service(kSensor)});
  add_server("thermo", {make_service(kSensor)});

  auto list = [&](std::string_view protocol, std::string_view version) {
    ListServersRequest request;
    request.set_room("default");
    request.set_protocol(std::string(protocol));
    request.set_version(std::string(version));
    auto ids = server_ids(must(registry().list_servers(request)));
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  EXPECT_THAT(list("", ""), ElementsAre("cam1", "cam2", "thermo"));
  EXPECT_THAT(list(kCamera, ""), ElementsAre("cam1", "cam2"));
  EXPECT_THAT(list(kCamera, "2"), ElementsAre("cam2"));
  EXPECT_THAT(list(kSensor, ""), ElementsAre("cam2", "thermo"));
  EXPECT_THAT(list("peernet.file", ""), IsEmpty());
}

TEST_F(MemoryRegistryTest, GetServerNeedsTokenAndShowsLifetime) {
  const auto cam = add_server("cam", {}, 45);
  const auto other = add_server("other");
  expect_error(registry().get_server("cam", ""), ErrorCode::kUnauthenticated);
  expect_error(registry().get_server("cam", other.token), ErrorCode::kUnauthenticated);
  expect_error(registry().get_server("ghost", cam.token), ErrorCode::kNotFound, "ghost");

  const auto held = must(registry().get_server("cam", cam.token));
  EXPECT_EQ(held.room(), "default");
  EXPECT_EQ(held.ttl_seconds(), 45U);
  using google::protobuf::util::TimeUtil;
  const auto expected = std::chrono::duration_cast<std::chrono::seconds>(
      (clock_.system_now() + seconds{45}).time_since_epoch());
  EXPECT_EQ(held.expire_time().seconds(), expected.count())
      << TimeUtil::ToString(held.expire_time());
}

TEST_F(MemoryRegistryTest, DeleteServerNeedsItsToken) {
  const auto cam = add_server("cam");
  const auto other = add_server("other");
  expect_error(registry().delete_server("cam", ""), ErrorCode::kUnauthenticated);
  expect_error(registry().delete_server("cam", other.token), ErrorCode::kUnauthenticated);
  EXPECT_TRUE(server_listed("cam"));
  EXPECT_TRUE(registry().delete_server("cam", cam.token).ok());
  EXPECT_FALSE(server_listed("cam"));
}

// ---- services -------------------------------------------------------------------------------

TEST_F(MemoryRegistryTest, CreateServiceRefusesExistingProtocol) {
  const auto cam = add_server("cam", {make_service(kCamera)});
  EXPECT_EQ(must(registry().create_service("cam", cam.token, make_service(kSensor))).protocol(),
            kSensor);
  EXPECT_EQ(must(registry().get_server("cam", cam.token)).services_size(), 2);
  expect_error(registry().create_service("cam", cam.token, make_service(kCamera, "2")),
               ErrorCode::kAlreadyExists, kCamera);
}

TEST_F(MemoryRegistryTest, PutServiceCreatesOrReplaces) {
  const auto cam = add_server("cam", {make_service(kCamera, "1")});
  must(registry().put_service("cam", cam.token, make_service(kCamera, "2")));
  must(registry().put_service("cam", cam.token, make_service(kSensor, "1")));

  const auto held = must(registry().get_server("cam", cam.token));
  ASSERT_EQ(held.services_size(), 2);
  EXPECT_EQ(held.services(0).protocol(), kCamera);
  EXPECT_EQ(held.services(0).version(), "2");
  EXPECT_EQ(held.services(1).protocol(), kSensor);
}

TEST_F(MemoryRegistryTest, DeleteServiceIsNotFoundWhenAbsent) {
  const auto cam = add_server("cam", {make_service(kCamera), make_service(kSensor)});
  EXPECT_TRUE(registry().delete_service("cam", cam.token, kCamera).ok());
  expect_error(registry().delete_service("cam", cam.token, kCamera), ErrorCode::kNotFound, kCamera);
  const auto held = must(registry().get_server("cam", cam.token));
  ASSERT_EQ(held.services_size(), 1);
  EXPECT_EQ(held.services(0).protocol(), kSensor);
}

TEST_F(MemoryRegistryTest, ServiceChangesNeedTheServerToken) {
  const auto cam = add_server("cam", {make_service(kCamera)});
  const auto other = add_server("other");
  for (const std::string& token : {std::string(), std::string("guess"), other.token}) {
    SCOPED_TRACE(token);
    expect_error(registry().create_service("cam", token, make_service(kSensor)),
                 ErrorCode::kUnauthenticated);
    expect_error(registry().put_service("cam", token, make_service(kSensor)),
                 ErrorCode::kUnauthenticated);
    expect_error(registry().delete_service("cam", token, kCamera), ErrorCode::kUnauthenticated);
  }
  const auto held = must(registry().get_server("cam", cam.token));
  ASSERT_EQ(held.services_size(), 1);
  EXPECT_EQ(held.services(0).protocol(), kCamera);
}

TEST_F(MemoryRegistryTest, ExtensionBytesSurvive) {
  auto camera = make_service(kCamera);
  camera.SetExtension(peernet::camera::codec, "VP8");
  // A field of some protocol the daemon has never heard of.
  camera.GetReflection()->MutableUnknownFields(&camera)->AddLengthDelimited(1000, "opaque");
  const auto cam = add_server("cam", {camera});

  const auto held = must(registry().get_server("cam", cam.token));
  ASSERT_EQ(held.services_size(), 1);
  EXPECT_EQ(held.services(0).GetExtension(peernet::camera::codec), "VP8");
  EXPECT_EQ(held.services(0).SerializeAsString(), camera.SerializeAsString());

  camera.SetExtension(peernet::camera::codec, "H264");
  must(registry().put_service("cam", cam.token, camera));
  ListServersRequest request;
  request.set_room("default");
  const auto listed = must(registry().list_servers(request));
  ASSERT_EQ(listed.servers_size(), 1);
  EXPECT_EQ(listed.servers(0).services(0).GetExtension(peernet::camera::codec), "H264");
  EXPECT_EQ(listed.servers(0).services(0).SerializeAsString(), camera.SerializeAsString());
}

// ---- knocks ---------------------------------------------------------------------------------

Knock make_knock(std::string_view protocol, std::string_view offer, std::string_view version = {}) {
  Knock knock;
  knock.set_protocol(std::string(protocol));
  knock.set_offer(std::string(offer));
  if (!version.empty()) {
    knock.set_version(std::string(version));
  }
  return knock;
}

TEST_F(MemoryRegistryTest, KnockOnUnknownServerIsNotFound) {
  expect_error(registry().create_knock("ghost", make_knock(kCamera, kOffer)), ErrorCode::kNotFound,
               "ghost");
}

TEST_F(MemoryRegistryTest, KnockOnServiceNotOfferedIsNotFound) {
  add_server("cam", {make_service(kCamera, "1")});
  expect_error(registry().create_knock("cam", make_knock(kSensor, kOffer)), ErrorCode::kNotFound,
               kSensor);
  expect_error(registry().create_knock("cam", make_knock(kCamera, kOffer, "2")),
               ErrorCode::kNotFound, kCamera);
  EXPECT_TRUE(registry().create_knock("cam", make_knock(kCamera, kOffer, "1")).ok());
}

TEST_F(MemoryRegistryTest, KnockNeedsAnOfferWithinTheSdpLimit) {
  RegistryLimits limits;
  limits.max_sdp_bytes = 100;
  use_limits(limits);
  add_server("cam");
  // A missing required field is a malformed request (400); a value out of bounds is 422.
  expect_error(registry().create_knock("cam", make_knock(kCamera, "")), ErrorCode::kMalformed,
               "knock.offer");
  expect_error(registry().create_knock("cam", make_knock(kCamera, std::string(101, 'x'))),
               ErrorCode::kInvalidValue, "knock.offer");
  EXPECT_TRUE(registry().create_knock("cam", make_knock(kCamera, std::string(100, 'x'))).ok());
}

TEST_F(MemoryRegistryTest, PendingKnockLimitIsEnforced) {
  RegistryLimits limits;
  limits.max_pending_knocks_per_server = 2;
  use_limits(limits);
  const auto cam = add_server("cam", {make_service(kCamera)}, 300);
  const auto first = knock_on(cam);
  knock_on(cam);
  expect_error(registry().create_knock("cam", make_knock(kCamera, kOffer)),
               ErrorCode::kLimitExceeded, "max_pending_knocks_per_server");

  // An answered knock no longer counts as waiting.
  must(registry().update_knock(first.id, cam.token, answer_with(kAnswer)));
  const auto third = knock_on(cam);
  expect_error(registry().create_knock("cam", make_knock(kCamera, kOffer)),
               ErrorCode::kLimitExceeded, "max_pending_knocks_per_server");

  // Nor does a rejected, withdrawn or expired one; and trickling does not count twice.
  must(registry().update_knock(third.id, third.token,
                               trickle("candidate:1 1 udp 1 ::1 9 typ host")));
  must(registry().update_knock(third.id, cam.token, reject_because("busy")));
  const auto fourth = knock_on(cam);
  expect_error(registry().create_knock("cam", make_knock(kCamera, kOffer)),
               ErrorCode::kLimitExceeded, "max_pending_knocks_per_server");
  must(registry().delete_knock(fourth.id, fourth.token));
  knock_on(cam);
  expect_error(registry().create_knock("cam", make_knock(kCamera, kOffer)),
               ErrorCode::kLimitExceeded, "max_pending_knocks_per_server");
  advance(seconds{61});
  knock_on(cam);
  knock_on(cam);
  expect_error(registry().create_knock("cam", make_knock(kCamera, kOffer)),
               ErrorCode::kLimitExceeded, "max_pending_knocks_per_server");
}

TEST_F(MemoryRegistryTest, PollSeesTrickledCandidatesAmongManyFinishedKnocks) {
  const auto cam = add_server("cam");
  // A busy server: many answered knocks linger for late candidates.
  std::vector<KnockHandle> finished;
  for (int i = 0; i < 200; ++i) {
    finished.push_back(knock_on(cam));
    must(registry().update_knock(finished.back().id, cam.token, answer_with(kAnswer)));
  }
  const auto seen = must(registry().list_knocks("cam", cam.token, 0));
  EXPECT_EQ(seen.knocks_size(), 200);

  // A late candidate on an old knock, then a new knock: the next poll has exactly those two.
  must(registry().update_knock(finished[3].id, finished[3].token,
                               trickle("candidate:2 1 udp 1 ::1 9 typ host")));
  const auto fresh = knock_on(cam);
  const auto next = must(registry().list_knocks("cam", cam.token, seen.revision()));
  EXPECT_THAT(knock_ids(next), ElementsAre(finished[3].id, fresh.id));
  EXPECT_THAT(candidate_lines(next.knocks(0).ice_candidates()),
              ElementsAre("candidate:2 1 udp 1 ::1 9 typ host"));
  EXPECT_THAT(knock_ids(must(registry().list_knocks("cam", cam.token, next.revision()))),
              IsEmpty());
}

TEST_F(MemoryRegistryTest, ListKnocksReturnsOnlyKnocksNewerThanSince) {
  const auto cam = add_server("cam");
  const auto first = knock_on(cam);

  const auto all = must(registry().list_knocks("cam", cam.token, 0));
  ASSERT_THAT(knock_ids(all), ElementsAre(first.id));
  EXPECT_EQ(all.knocks(0).offer(), kOffer);
  EXPECT_EQ(all.knocks(0).state(), KNOCK_STATE_PENDING);
  EXPECT_EQ(all.knocks(0).protocol(), kCamera);

  EXPECT_THAT(knock_ids(must(registry().list_knocks("cam", cam.token, all.revision()))), IsEmpty());

  const auto second = knock_on(cam);
  const auto newer = must(registry().list_knocks("cam", cam.token, all.revision()));
  EXPECT_THAT(knock_ids(newer), ElementsAre(second.id));
  EXPECT_GT(newer.revision(), all.revision());
  EXPECT_THAT(knock_ids(must(registry().list_knocks("cam", cam.token, 0))),
              ElementsAre(first.id, second.id));
}

TEST_F(MemoryRegistryTest, ListKnocksNeedsTheServerToken) {
  add_server("cam");
  const auto other = add_server("other");
  expect_error(registry().list_knocks("cam", "", 0), ErrorCode::kUnauthenticated);
  expect_error(registry().list_knocks("cam", other.token, 0), ErrorCode::kUnauthenticated);
}

TEST_F(MemoryRegistryTest, ServerAnswersAndKnockerSeesTheAnswer) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam);

  const auto updated = must(registry().update_knock(knock.id, cam.token, answer_with(kAnswer)));
  EXPECT_EQ(updated.server, "cam");
  EXPECT_EQ(updated.knock.state(), KNOCK_STATE_ANSWERED);

  const auto seen = must(registry().get_knock(knock.id, knock.token, knock.revision));
  EXPECT_EQ(seen.state(), KNOCK_STATE_ANSWERED);
  EXPECT_EQ(seen.answer(), kAnswer);
  EXPECT_FALSE(seen.has_offer()) << "the knocker's own offer did not change since its revision";
}

TEST_F(MemoryRegistryTest, KnockShowsWhenItWasMadeAndWhenItExpires) {
  const auto cam = add_server("cam", {make_service(kCamera)}, 300);
  const auto made_at = clock_.system_now();
  const auto knock = knock_on(cam);
  advance(seconds{15});
  const auto seen = must(registry().get_knock(knock.id, knock.token, 0));
  const auto epoch_seconds = [](auto t) {
    return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
  };
  EXPECT_EQ(seen.create_time().seconds(), epoch_seconds(made_at));
  EXPECT_EQ(seen.expire_time().seconds(), epoch_seconds(made_at + seconds{60}));
  EXPECT_EQ(seen.server(), "cam");
  EXPECT_EQ(seen.unique_id(), knock.id);
}

TEST_F(MemoryRegistryTest, KnockerCannotAnswer) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam);
  expect_error(registry().update_knock(knock.id, knock.token, answer_with(kAnswer)),
               ErrorCode::kUnauthenticated);
  expect_error(registry().update_knock(knock.id, knock.token, reject_because("no")),
               ErrorCode::kUnauthenticated);
  EXPECT_EQ(must(registry().get_knock(knock.id, knock.token, 0)).state(), KNOCK_STATE_PENDING);
}

TEST_F(MemoryRegistryTest, AnswerAndRejectTogetherIsInvalid) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam);
  auto both = answer_with(kAnswer);
  both.set_reject(true);
  expect_error(registry().update_knock(knock.id, cam.token, both), ErrorCode::kInvalidValue,
               "answer");
  EXPECT_EQ(must(registry().get_knock(knock.id, knock.token, 0)).state(), KNOCK_STATE_PENDING);
}

TEST_F(MemoryRegistryTest, RejectedKnockCarriesReasonAndLeavesTheList) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam);
  const auto updated = must(registry().update_knock(knock.id, cam.token, reject_because("busy")));
  EXPECT_EQ(updated.knock.state(), KNOCK_STATE_REJECTED);

  const auto seen = must(registry().get_knock(knock.id, knock.token, 0));
  EXPECT_EQ(seen.state(), KNOCK_STATE_REJECTED);
  EXPECT_EQ(seen.reason(), "busy");
  EXPECT_THAT(knock_ids(must(registry().list_knocks("cam", cam.token, 0))), IsEmpty());
}

TEST_F(MemoryRegistryTest, TrickledCandidatesReachTheOtherSideOnceEach) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam, {make_candidate("k1")});

  // The serving side reads the knock with the knocker's first candidate.
  const auto first_read = must(registry().get_knock(knock.id, cam.token, 0));
  EXPECT_EQ(first_read.offer(), kOffer);
  EXPECT_THAT(candidate_lines(first_read.ice_candidates()), ElementsAre("k1"));

  // Server candidates reach the knocker, only the new ones after `since`.
  must(registry().update_knock(knock.id, cam.token, trickle("s1")));
  const auto knocker_read = must(registry().get_knock(knock.id, knock.token, knock.revision));
  EXPECT_THAT(candidate_lines(knocker_read.server_ice_candidates()), ElementsAre("s1"));
  EXPECT_THAT(candidate_lines(knocker_read.ice_candidates()), IsEmpty());
  must(registry().update_knock(knock.id, cam.token, trickle("s2")));
  const auto knocker_again =
      must(registry().get_knock(knock.id, knock.token, knocker_read.revision()));
  EXPECT_THAT(candidate_lines(knocker_again.server_ice_candidates()), ElementsAre("s2"));

  // Knocker candidates reach the server, likewise, and put the knock back in its list.
  must(registry().update_knock(knock.id, knock.token, trickle("k2")));
  const auto server_read = must(registry().get_knock(knock.id, cam.token, first_read.revision()));
  EXPECT_THAT(candidate_lines(server_read.ice_candidates()), ElementsAre("k2"));
  EXPECT_FALSE(server_read.has_offer());
  const auto polled = must(registry().list_knocks("cam", cam.token, first_read.revision()));
  ASSERT_EQ(polled.knocks_size(), 1);
  EXPECT_THAT(candidate_lines(polled.knocks(0).ice_candidates()), ElementsAre("k2"));

  // Without `since`, each side gets everything the other side added.
  EXPECT_THAT(candidate_lines(must(registry().get_knock(knock.id, cam.token, 0)).ice_candidates()),
              ElementsAre("k1", "k2"));
  EXPECT_THAT(
      candidate_lines(must(registry().get_knock(knock.id, knock.token, 0)).server_ice_candidates()),
      ElementsAre("s1", "s2"));
}

TEST_F(MemoryRegistryTest, ForeignTokensAreRefused) {
  const auto cam = add_server("cam");
  const auto other = add_server("other");
  const auto mine = knock_on(cam);
  const auto theirs = knock_on(cam);
  for (const std::string& token : {std::string(), theirs.token, other.token}) {
    SCOPED_TRACE(token);
    expect_error(registry().get_knock(mine.id, token, 0), ErrorCode::kUnauthenticated);
    expect_error(registry().update_knock(mine.id, token, trickle("x")),
                 ErrorCode::kUnauthenticated);
    expect_error(registry().delete_knock(mine.id, token), ErrorCode::kUnauthenticated);
  }
  EXPECT_THAT(candidate_lines(must(registry().get_knock(mine.id, cam.token, 0)).ice_candidates()),
              IsEmpty());
}

TEST_F(MemoryRegistryTest, EitherSideDeletesAKnock) {
  const auto cam = add_server("cam");
  const auto withdrawn = knock_on(cam);
  const auto dismissed = knock_on(cam);
  EXPECT_TRUE(registry().delete_knock(withdrawn.id, withdrawn.token).ok());
  EXPECT_TRUE(registry().delete_knock(dismissed.id, cam.token).ok());
  expect_error(registry().get_knock(withdrawn.id, withdrawn.token, 0), ErrorCode::kNotFound);
  expect_error(registry().get_knock(dismissed.id, dismissed.token, 0), ErrorCode::kNotFound);
  EXPECT_THAT(knock_ids(must(registry().list_knocks("cam", cam.token, 0))), IsEmpty());
  EXPECT_EQ(registry().stats().knocks, 0U);
}

// ---- watches --------------------------------------------------------------------------------

TEST_F(MemoryRegistryTest, KnocksWatchFiresWhenAKnockArrives) {
  const auto cam = add_server("cam");
  const auto since = must(registry().list_knocks("cam", cam.token, 0)).revision();
  int fired = 0;
  auto watch = must(registry().watch_knocks("cam", cam.token, since, [&] { ++fired; }));
  EXPECT_TRUE(watch.active());
  EXPECT_EQ(fired, 0);
  knock_on(cam);
  EXPECT_EQ(fired, 1);
}

TEST_F(MemoryRegistryTest, KnocksWatchFiresAtOnceWhenAKnockIsAlreadyNewer) {
  const auto cam = add_server("cam");
  const auto since = must(registry().list_knocks("cam", cam.token, 0)).revision();
  knock_on(cam);
  int fired = 0;
  auto watch = must(registry().watch_knocks("cam", cam.token, since, [&] { ++fired; }));
  EXPECT_EQ(fired, 1);
}

TEST_F(MemoryRegistryTest, DroppedWatchNeverFires) {
  const auto cam = add_server("cam");
  int fired = 0;
  {
    auto watch = must(registry().watch_knocks("cam", cam.token, 0, [&] { ++fired; }));
    EXPECT_EQ(registry().stats().watches, 1U);
  }
  EXPECT_EQ(registry().stats().watches, 0U);
  knock_on(cam);
  EXPECT_EQ(fired, 0);
}

TEST_F(MemoryRegistryTest, KnockerWatchFiresOnAnswerNotOnOwnChanges) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam);
  int fired = 0;
  auto watch =
      must(registry().watch_knock(knock.id, knock.token, knock.revision, [&] { ++fired; }));
  must(registry().update_knock(knock.id, knock.token, trickle("k1")));
  EXPECT_EQ(fired, 0);
  must(registry().update_knock(knock.id, cam.token, answer_with(kAnswer)));
  EXPECT_EQ(fired, 1);
}

TEST_F(MemoryRegistryTest, WatchesFireWhenTheirSubjectIsDeleted) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam);
  const auto since_knock = must(registry().list_knocks("cam", cam.token, 0)).revision();
  int knocks_fired = 0;
  int knock_fired = 0;
  auto knocks_watch =
      must(registry().watch_knocks("cam", cam.token, since_knock, [&] { ++knocks_fired; }));
  auto knock_watch =
      must(registry().watch_knock(knock.id, knock.token, knock.revision, [&] { ++knock_fired; }));
  ASSERT_EQ(knocks_fired + knock_fired, 0);

  ASSERT_TRUE(registry().delete_server("cam", cam.token).ok());
  EXPECT_EQ(knocks_fired, 1);
  EXPECT_EQ(knock_fired, 1);
}

TEST_F(MemoryRegistryTest, KnockWatchFiresWhenTheKnockIsWithdrawn) {
  const auto cam = add_server("cam");
  const auto knock = knock_on(cam);
  const auto seen = must(registry().get_knock(knock.id, cam.token, 0));
  int fired = 0;
  auto watch = must(registry().watch_knock(knock.id, cam.token, seen.revision(), [&] { ++fired; }));
  EXPECT_EQ(fired, 0);
  ASSERT_TRUE(registry().delete_knock(knock.id, knock.token).ok());
  EXPECT_EQ(fired, 1);
}

// ---- expiry ---------------------------------------------------------------------------------

TEST_F(MemoryRegistryTest, ServerExpiresAfterItsTtlAndNotBefore) {
  const auto cam = add_server("cam");
  advance(seconds{30} - milliseconds{1});
  EXPECT_TRUE(server_listed("cam"));
  EXPECT_TRUE(registry().get_server("cam", cam.token).ok());
  EXPECT_EQ(registry().stats().servers_expired, 0U);

  advance(milliseconds{1});
  EXPECT_FALSE(server_listed("cam"));
  expect_error(registry().get_server("cam", cam.token), ErrorCode::kNotFound);
  EXPECT_EQ(registry().stats().servers_expired, 1U);
  EXPECT_EQ(registry().stats().servers, 0U);
}

TEST_F(MemoryRegistryTest, PollingForKnocksPushesExpiryBack) {
  const auto cam = add_server("cam");
  advance(seconds{20});
  must(registry().list_knocks("cam", cam.token, 0));
  advance(seconds{29});
  EXPECT_TRUE(server_listed("cam"));
  advance(seconds{1});
  EXPECT_FALSE(server_listed("cam"));
}

TEST_F(MemoryRegistryTest, LongPollKeepsServerAliveThenOneMoreTtl) {
  const auto cam = add_server("cam");
  {
    auto watch = must(registry().watch_knocks("cam", cam.token, 0, [] {}));
    for (int i = 0; i < 10; ++i) {
      advance(seconds{29});
    }
    EXPECT_TRUE(server_listed("cam"));
  }
  advance(seconds{30} - milliseconds{1});
  EXPECT_TRUE(server_listed("cam"));
  advance(milliseconds{1});
  EXPECT_FALSE(server_listed("cam"));
}

TEST_F(MemoryRegistryTest, StaleLongPollOfDeletedRegistrationDoesNotShortenNewOnesLife) {
  const auto old = add_server("cam");
  auto stale = must(registry().watch_knocks("cam", old.token, 0, [] {}));
  ASSERT_TRUE(registry().delete_server("cam", old.token).ok());

  // The serving program restarts under the same id while its old long-poll is still being
  // answered; that old poll ends, then the new registration starts its own long-poll.
  const auto renewed = add_server("cam");
  stale = Watch{};
  auto live = must(registry().watch_knocks("cam", renewed.token, 0, [] {}));
  advance(seconds{31});
  EXPECT_TRUE(server_listed("cam"));
}

TEST_F(MemoryRegistryTest, PendingKnockExpiresThenIsForgotten) {
  const auto cam = add_server("cam", {make_service(kCamera)}, 300);
  const auto knock = knock_on(cam);
  int fired = 0;
  auto watch =
      must(registry().watch_knock(knock.id, knock.token, knock.revision, [&] { ++fired; }));

  advance(seconds{60} - milliseconds{1});
  EXPECT_EQ(fired, 0);
  EXPECT_EQ(must(registry().get_knock(knock.id, knock.token, 0)).state(), KNOCK_STATE_PENDING);

  advance(milliseconds{1});
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(registry().stats().knocks_expired, 1U);
  EXPECT_EQ(must(registry().get_knock(knock.id, knock.token, 0)).state(), KNOCK_STATE_EXPIRED);
  EXPECT_THAT(knock_ids(must(registry().list_knocks("cam", cam.token, 0))), IsEmpty());

  advance(seconds{10} - milliseconds{1});
  EXPECT_TRUE(registry().get_knock(knock.id, knock.token, 0).ok());
  advance(milliseconds{1});
  expect_error(registry().get_knock(knock.id, knock.token, 0), ErrorCode::kNotFound);
}

TEST_F(MemoryRegistryTest, AnsweredKnockIsForgottenLingerAfterTheKnockerReadIt) {
  const auto cam = add_server("cam", {make_service(kCamera)}, 300);
  const auto knock = knock_on(cam);
  must(registry().update_knock(knock.id, cam.token, answer_with(kAnswer)));

  // Unread, the answer waits for the knocker longer than the linger.
  advance(seconds{20});
  EXPECT_EQ(must(registry().get_knock(knock.id, knock.token, 0)).answer(), kAnswer);

  advance(seconds{10} - milliseconds{1});
  EXPECT_TRUE(registry().get_knock(knock.id, cam.token, 0).ok());
  advance(milliseconds{1});
  expect_error(registry().get_knock(knock.id, knock.token, 0), ErrorCode::kNotFound);
  EXPECT_EQ(registry().stats().knocks, 0U);
  EXPECT_EQ(registry().stats().knocks_expired, 0U) << "an answered knock did not expire";
}

TEST_F(MemoryRegistryTest, NextDeadlineIsTheEarliest) {
  EXPECT_EQ(registry().next_deadline(), std::nullopt);
  const auto start = clock_.now();
  const auto cam = add_server("cam", {make_service(kCamera)}, 30);
  EXPECT_EQ(registry().next_deadline(), start + seconds{30});
  knock_on(cam);
  EXPECT_EQ(registry().next_deadline(), start + seconds{30});
  add_server("quick", {}, 5);
  EXPECT_EQ(registry().next_deadline(), start + seconds{5});
}

TEST_F(MemoryRegistryTest, DeadlineListenerFiresWhenAnEarlierDeadlineAppears) {
  int calls = 0;
  registry().on_deadline_change([&] { ++calls; });
  const auto cam = add_server("cam", {make_service(kCamera)}, 30);
  EXPECT_EQ(calls, 1);
  add_server("slow", {}, 60);
  knock_on(cam);
  EXPECT_EQ(calls, 1);
  add_server("quick", {}, 5);
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace peernet::core
