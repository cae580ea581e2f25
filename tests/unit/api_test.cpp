#include "http/api.h"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/memory_registry.h"
#include "http/error_reply.h"
#include "http/router.h"
#include "peernet.pb.h"
#include "unit/fake_clock.h"

namespace peernet::http {
namespace {

using core::ErrorCode;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr std::string_view kCameraServer =
    R"({"unique_id": "cam", "services": [{"protocol": "peernet.camera", "version": "1"}]})";
constexpr std::string_view kKnockBody = R"({"protocol": "peernet.camera", "offer": "v=0"})";

/// A copy of the message of a successful reply, as the type the method answers with.
template <typename M>
M message_of(const Reply& reply) {
  if (reply.error) {
    throw std::runtime_error("the call failed: " + reply.error->message);
  }
  const auto* message = dynamic_cast<const M*>(reply.message.get());
  if (message == nullptr) {
    throw std::runtime_error("the reply holds no " + M::descriptor()->full_name());
  }
  return *message;
}

class ApiTest : public ::testing::Test {
 protected:
  /// Routes and handles one request, as a session would after reading it.
  Outcome call(std::string_view verb, std::string_view target, std::string_view body = {},
               std::string_view token = {}, codec::Encoding encoding = codec::Encoding::kJson) {
    auto routed = route(verb, target);
    if (!routed) {
      throw std::runtime_error("no route: " + routed.error().message);
    }
    return handle(Call{std::move(routed).value(), body, encoding, token}, context_);
  }

  static Reply reply(Outcome outcome) {
    if (!std::holds_alternative<Reply>(outcome)) {
      throw std::runtime_error("the call waits instead of answering");
    }
    return std::get<Reply>(std::move(outcome));
  }

  static Wait wait(Outcome outcome) {
    if (!std::holds_alternative<Wait>(outcome)) {
      const auto& r = std::get<Reply>(outcome);
      throw std::runtime_error("the call answered at once: " +
                               (r.error ? r.error->message : std::string("(no error)")));
    }
    return std::get<Wait>(std::move(outcome));
  }

  static void expect_failure(const Outcome& outcome, ErrorCode code, std::string_view mentions) {
    ASSERT_TRUE(std::holds_alternative<Reply>(outcome));
    const auto& r = std::get<Reply>(outcome);
    ASSERT_TRUE(r.error.has_value()) << "the call succeeded";
    EXPECT_EQ(static_cast<int>(r.error->code), static_cast<int>(code)) << r.error->message;
    EXPECT_THAT(r.error->message, HasSubstr(std::string(mentions)));
  }

  /// Registers the camera server over REST; returns its token.
  std::string register_camera() {
    return message_of<CreateServerResponse>(reply(call("POST", "/servers", kCameraServer))).token();
  }

  CreateKnockResponse knock_on_camera() {
    return message_of<CreateKnockResponse>(reply(call("POST", "/servers/cam/knocks", kKnockBody)));
  }

  test::FakeClock clock_;
  core::MemoryRegistry registry_{clock_, core::RegistryLimits{}};
  Context context_{registry_, seconds{30}, {}};
};

TEST_F(ApiTest, RestCreateServerBodyIsAServer) {
  const auto created = reply(call("POST", "/servers", kCameraServer));
  EXPECT_EQ(created.status, 201U);
  const auto response = message_of<CreateServerResponse>(created);
  EXPECT_EQ(response.server().unique_id(), "cam");
  EXPECT_EQ(response.server().services(0).protocol(), "peernet.camera");
  EXPECT_FALSE(response.token().empty());

  const auto again = reply(call("POST", "/server", kCameraServer, response.token()));
  EXPECT_EQ(again.status, 200U) << "re-registering is not creating";
  EXPECT_EQ(message_of<CreateServerResponse>(again).token(), response.token());
}

TEST_F(ApiTest, ConnectCreateServerBodyIsTheRequest) {
  const auto created = reply(
      call("POST", "/peernet.PeerNetService/CreateServer", R"({"server": {"unique_id": "cam"}})"));
  EXPECT_EQ(message_of<CreateServerResponse>(created).server().unique_id(), "cam");

  // A REST body sent to the Connect path names fields the request does not have.
  const auto refused =
      reply(call("POST", "/peernet.PeerNetService/CreateServer", R"({"unique_id": "cam"})"));
  ASSERT_TRUE(refused.error.has_value());
  EXPECT_EQ(connect_code(refused.error->code), "invalid_argument");
  EXPECT_THAT(refused.error->message,
              HasSubstr("unique_id: unknown field of peernet.CreateServerRequest"));
}

TEST_F(ApiTest, BinaryBodiesAreDecoded) {
  Server server;
  server.set_unique_id("cam");
  server.add_services()->set_protocol("peernet.camera");
  const auto body = server.SerializeAsString();
  const auto created = reply(call("POST", "/servers", body, {}, codec::Encoding::kProto));
  EXPECT_EQ(message_of<CreateServerResponse>(created).server().unique_id(), "cam");
  expect_failure(call("POST", "/servers",
                      "\x0a\x05"
                      "ab",
                      {}, codec::Encoding::kProto),
                 ErrorCode::kMalformed, "body");
}

TEST_F(ApiTest, PathValueFillsTheRequest) {
  const auto token = register_camera();
  const auto updated =
      reply(call("PUT", "/servers/cam/services/peernet.sensor", R"({"version": "2"})", token));
  const auto service = message_of<UpdateServiceResponse>(updated).service();
  EXPECT_EQ(service.protocol(), "peernet.sensor");
  EXPECT_EQ(service.version(), "2");
  EXPECT_EQ(reply(call("PUT", "/servers/cam/services/peernet.sensor",
                       R"({"protocol": "peernet.sensor"})", token))
                .status,
            200U)
      << "a body that agrees with the path is fine";
}

TEST_F(ApiTest, BodyContradictingThePathIsInvalid) {
  const auto token = register_camera();
  expect_failure(
      call("PUT", "/servers/cam/services/peernet.sensor", R"({"protocol": "peernet.file"})", token),
      ErrorCode::kInvalidValue, "service.protocol");

  const auto knock = knock_on_camera();
  const auto target = "/knocks/" + knock.knock().unique_id();
  expect_failure(call("PATCH", target, R"({"knock": "someone-else", "answer": "v=0"})", token),
                 ErrorCode::kInvalidValue, "knock");
  EXPECT_EQ(message_of<Knock>(reply(call("GET", target, {}, knock.token()))).state(),
            KNOCK_STATE_PENDING)
      << "the refused update changed nothing";
}

TEST_F(ApiTest, RouteWithoutBodyRefusesOne) {
  expect_failure(call("GET", "/rooms/default", "{}"), ErrorCode::kMalformed, "body");
  EXPECT_EQ(message_of<GetRoomResponse>(reply(call("GET", "/rooms/default"))).room().unique_id(),
            "default");
}

TEST_F(ApiTest, QueryNumbersAreChecked) {
  const auto token = register_camera();
  expect_failure(call("GET", "/servers/cam/knocks?wait=soon", {}, token), ErrorCode::kMalformed,
                 "wait_seconds");
  expect_failure(call("GET", "/servers/cam/knocks?since=-1", {}, token), ErrorCode::kMalformed,
                 "since");
  expect_failure(call("GET", "/servers/cam/knocks?wait=4294967296", {}, token),
                 ErrorCode::kInvalidValue, "wait_seconds");
}

TEST_F(ApiTest, CreateKnockWithWaitAnswersWithTheAnswer) {
  const auto token = register_camera();
  auto pending = wait(call("POST", "/servers/cam/knocks?wait=20", kKnockBody));
  EXPECT_EQ(pending.duration, seconds{20});

  bool woken = false;
  auto watch = pending.subscribe([&] { woken = true; });
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  EXPECT_FALSE(woken);

  const auto listed = registry_.list_knocks("cam", token, 0);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->knocks_size(), 1);
  UpdateKnockRequest answer;
  answer.set_answer("v=0 answer");
  ASSERT_TRUE(registry_.update_knock(listed->knocks(0).unique_id(), token, answer).ok());
  EXPECT_TRUE(woken);

  const auto done = reply(pending.resume(false));
  EXPECT_EQ(done.status, 201U);
  const auto response = message_of<CreateKnockResponse>(done);
  EXPECT_EQ(response.knock().state(), KNOCK_STATE_ANSWERED);
  EXPECT_EQ(response.knock().answer(), "v=0 answer");
  EXPECT_FALSE(response.token().empty());
}

TEST_F(ApiTest, CreateKnockWaitRunningOutAnswersThePendingKnock) {
  register_camera();
  auto pending = wait(call("POST", "/peernet.PeerNetService/CreateKnock",
                           R"({"server": "cam", "wait_seconds": 3,
                               "knock": {"protocol": "peernet.camera", "offer": "v=0"}})"));
  EXPECT_EQ(pending.duration, seconds{3});
  const auto response = message_of<CreateKnockResponse>(reply(pending.resume(true)));
  EXPECT_EQ(response.knock().state(), KNOCK_STATE_PENDING);
  EXPECT_FALSE(response.token().empty());
}

TEST_F(ApiTest, WaitIsCappedByMaxWait) {
  register_camera();
  context_.max_wait = seconds{5};
  EXPECT_EQ(wait(call("POST", "/servers/cam/knocks?wait=600", kKnockBody)).duration, seconds{5});
  EXPECT_EQ(wait(call("POST", "/servers/cam/knocks?wait=4", kKnockBody)).duration, seconds{4});
  EXPECT_EQ(reply(call("POST", "/servers/cam/knocks?wait=0", kKnockBody)).status, 201U);
}

TEST_F(ApiTest, ListKnocksLongPollWakesForANewKnock) {
  const auto token = register_camera();
  auto poll = wait(call("GET", "/servers/cam/knocks?wait=30&since=0", {}, token));
  bool woken = false;
  auto watch = poll.subscribe([&] { woken = true; });
  ASSERT_TRUE(watch.ok());
  EXPECT_FALSE(woken);
  const auto knock = knock_on_camera();
  EXPECT_TRUE(woken);
  const auto listed = message_of<ListKnocksResponse>(reply(poll.resume(false)));
  ASSERT_EQ(listed.knocks_size(), 1);
  EXPECT_EQ(listed.knocks(0).unique_id(), knock.knock().unique_id());
}

TEST_F(ApiTest, UpdateKnockWithNextPollAnswersThenPolls) {
  const auto token = register_camera();
  const auto first = knock_on_camera();
  const auto seen = registry_.list_knocks("cam", token, 0);
  ASSERT_TRUE(seen.ok());

  const auto target =
      "/knocks/" + first.knock().unique_id() + "?wait=30&since=" + std::to_string(seen->revision());
  auto poll = wait(call("PATCH", target, R"({"answer": "v=0 answer"})", token));
  EXPECT_EQ(poll.duration, seconds{30});

  bool woken = false;
  auto watch = poll.subscribe([&] { woken = true; });
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  EXPECT_FALSE(woken) << "no knock is newer than the revision the server passed";
  const auto second = knock_on_camera();
  EXPECT_TRUE(woken);

  const auto response = message_of<UpdateKnockResponse>(reply(poll.resume(false)));
  EXPECT_EQ(response.knock().unique_id(), first.knock().unique_id());
  EXPECT_EQ(response.knock().state(), KNOCK_STATE_ANSWERED);
  ASSERT_TRUE(response.has_next_poll());
  ASSERT_EQ(response.next_poll().knocks_size(), 1);
  EXPECT_EQ(response.next_poll().knocks(0).unique_id(), second.knock().unique_id());
  EXPECT_GT(response.next_poll().revision(), seen->revision());
}

TEST_F(ApiTest, UpdateKnockWithoutWaitPollsAtOnce) {
  const auto token = register_camera();
  const auto first = knock_on_camera();
  const auto second = knock_on_camera();
  const auto done = reply(call("PATCH", "/knocks/" + first.knock().unique_id(),
                               R"({"reject": true, "next_poll": {"since": "0"}})", token));
  const auto response = message_of<UpdateKnockResponse>(done);
  EXPECT_EQ(response.knock().state(), KNOCK_STATE_REJECTED);
  ASSERT_EQ(response.next_poll().knocks_size(), 1);
  EXPECT_EQ(response.next_poll().knocks(0).unique_id(), second.knock().unique_id());
}

TEST_F(ApiTest, RegistryErrorsComeBackAsReplies) {
  const auto token = register_camera();
  expect_failure(call("GET", "/servers/cam"), ErrorCode::kUnauthenticated, "token");
  expect_failure(call("GET", "/servers/ghost", {}, token), ErrorCode::kNotFound, "ghost");
  expect_failure(call("POST", "/servers", kCameraServer), ErrorCode::kAlreadyExists, "cam");
}

}  // namespace
}  // namespace peernet::http
