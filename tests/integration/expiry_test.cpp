// Lifetimes: servers that stop polling and knocks nobody answers are forgotten, in real time,
// with every TTL at its one-second minimum.
#include <iostream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

class ExpiryTest : public DaemonTest {
 public:
  static void SetUpTestSuite() {
    start_daemon(
        {"--server-ttl-min", "1", "--server-ttl", "1", "--knock-ttl", "1", "--knock-linger", "1"});
  }
};

TEST_F(ExpiryTest, ServerThatDoesNotPollDisappears) {
  const Stopwatch clock;
  const auto server = register_server_offering(http());
  ASSERT_TRUE(is_listed(http(), "default", server.id));
  ASSERT_TRUE(wait_until([&] { return !is_listed(http(), "default", server.id); }, seconds{5}))
      << "a server with a 1 s TTL is still listed after 5 s";
  const auto gone_after = clock.elapsed();
  std::cout << "[ expiry   ] a silent server with a 1 s TTL left the listing after "
            << gone_after.count() << " ms\n";
  EXPECT_GE(gone_after, milliseconds{900}) << "it went before its TTL was up";
  EXPECT_TRUE(is_error(http().request("GET", "/servers/" + server.id, {}, auth(server.token)), 404,
                       "not_found", server.id));
  EXPECT_GE(metric(http(), "peernetd_servers_expired_total"), 1);
}

TEST_F(ExpiryTest, ServerHoldingALongPollStaysListed) {
  const auto server = register_server_offering(http());
  const Stopwatch clock;
  auto poll = request_in_background(port(), "GET", "/servers/" + server.id + "/knocks?wait=3", {},
                                    auth(server.token));
  // Listed on every look for two seconds, twice its TTL.
  while (clock.elapsed() < seconds{2}) {
    ASSERT_TRUE(is_listed(http(), "default", server.id))
        << "gone after " << clock.elapsed().count() << " ms";
    std::this_thread::sleep_for(milliseconds{100});
  }
  const auto polled = await(poll);
  EXPECT_EQ(polled.response.status, 200) << polled.response.body;
  // Once the poll is over, the TTL runs again.
  EXPECT_TRUE(wait_until([&] { return !is_listed(http(), "default", server.id); }, seconds{5}));
}

TEST_F(ExpiryTest, UnansweredKnockExpiresForTheKnockerWaitingOnIt) {
  // The server asks for a long TTL so that only the knock runs out.
  const auto server =
      register_server(http(), {{"unique_id", unique_id("patient")},
                               {"ttl_seconds", 60},
                               {"services", json::array({{{"protocol", "peernet.camera"}}})}});
  const Stopwatch clock;
  const auto knocked = http().json("POST", "/servers/" + server.id + "/knocks?wait=5",
                                   {{"protocol", "peernet.camera"}, {"offer", "v=0 offer"}});
  const auto took = clock.elapsed();
  ASSERT_EQ(knocked.status, 201) << knocked.body;
  const auto body = knocked.json();
  EXPECT_EQ(body["knock"]["state"], "KNOCK_STATE_EXPIRED");
  EXPECT_GE(took, milliseconds{900});
  EXPECT_LT(took, seconds{4})
      << "the knocker learns of the expiry when it happens, not when its wait ends";

  // The expired knock is not offered to the server, and is forgotten after its linger.
  const auto listed =
      http().request("GET", "/servers/" + server.id + "/knocks", {}, auth(server.token));
  ASSERT_EQ(listed.status, 200);
  EXPECT_FALSE(listed.json().contains("knocks")) << listed.body;
  const auto knock_path = "/knocks/" + body["knock"]["unique_id"].get<std::string>();
  const Headers knock_auth = auth(body["token"].get<std::string>());
  EXPECT_TRUE(wait_until(
      [&] { return http().request("GET", knock_path, {}, knock_auth).status == 404; }, seconds{5}));
  EXPECT_GE(metric(http(), "peernetd_knocks_expired_total"), 1);
}

}  // namespace
}  // namespace peernet::testing
