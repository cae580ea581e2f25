// Each HTTP-level limit of peernetd, crossed on a daemon started with a small value for it. The
// error must say which limit (its option name), and the daemon must keep serving others.
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

/// One daemon per test, with the flags the test names.
class LimitsTest : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& flags) {
    daemon_ = std::make_unique<DaemonProcess>(flags);
    http_ = std::make_unique<HttpClient>(daemon_->port());
  }
  void TearDown() override {
    http_.reset();
    if (daemon_) {
      EXPECT_EQ(daemon_->stop(), 0) << "peernetd must exit 0 on SIGTERM";
    }
  }
  std::uint16_t port() const { return daemon_->port(); }
  HttpClient& http() { return *http_; }

 private:
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(LimitsTest, RequestsPerSecondPerClientAnswer429WithRetryAfter) {
  start({"--limit-loopback", "true", "--requests-per-second", "2", "--request-burst", "3"});
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(http().request("GET", "/rooms/default").status, 200) << "request " << i;
  }
  const auto refused = http().request("GET", "/rooms/default");
  EXPECT_TRUE(is_error(refused, 429, "resource_exhausted", "requests_per_second"));
  EXPECT_EQ(refused.header("Retry-After"), "1");
  // The bucket refills at two a second.
  EXPECT_TRUE(wait_until([&] { return http().request("GET", "/rooms/default").status == 200; },
                         milliseconds{2000}));
}

TEST_F(LimitsTest, LoopbackIsExemptUnlessAsked) {
  start(
      {"--requests-per-second", "1", "--request-burst", "1", "--max-connections-per-client", "1"});
  HttpClient second(port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(http().request("GET", "/healthz").status, 200);
    ASSERT_EQ(second.request("GET", "/healthz").status, 200);
  }
}

TEST_F(LimitsTest, ConnectionsPerClientAreCapped) {
  start({"--limit-loopback", "true", "--max-connections-per-client", "2"});
  HttpClient second(port());
  ASSERT_EQ(http().request("GET", "/healthz").status, 200);
  ASSERT_EQ(second.request("GET", "/healthz").status, 200);
  const auto third = parse_raw_response(
      raw_exchange(port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(is_error(third, 429, "resource_exhausted", "max_connections_per_client"));
  second.close();
  EXPECT_TRUE(wait_until(
      [&] {
        return parse_raw_response(
                   raw_exchange(port(),
                                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
                   .status == 200;
      },
      milliseconds{2000}))
      << "a closed connection frees its place";
  EXPECT_GE(metric(http(), "peernetd_connections_refused_total"), 1);
}

TEST_F(LimitsTest, ConnectionsInTotalAreCapped) {
  start({"--max-connections", "2"});
  HttpClient second(port());
  ASSERT_EQ(http().request("GET", "/healthz").status, 200);
  ASSERT_EQ(second.request("GET", "/healthz").status, 200);
  const auto third = parse_raw_response(
      raw_exchange(port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(is_error(third, 503, "unavailable", "max_connections"));
}

TEST_F(LimitsTest, LongRequestTargetIs414) {
  start({"--max-target-bytes", "64"});
  const std::string target = "/rooms/" + std::string(80, 'a');
  EXPECT_TRUE(
      is_error(http().request("GET", target), 414, "resource_exhausted", "max_target_bytes"));
  EXPECT_EQ(http().request("GET", "/rooms/default").status, 200);
}

TEST_F(LimitsTest, ConcurrentLongPollsAreCapped) {
  start({"--max-waiters", "1"});
  const auto server = register_server_offering(http());
  const auto target = "/servers/" + server.id + "/knocks?wait=5";
  auto first = request_in_background(port(), "GET", target, {}, {bearer(server.token)});
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  const auto second = http().request("GET", target, {}, {bearer(server.token)});
  EXPECT_TRUE(is_error(second, 429, "resource_exhausted", "max_waiters"));
  // The first poll is unharmed: a knock still wakes it.
  create_knock(http(), server.id);
  EXPECT_EQ(await(first).response.status, 200);
}

TEST_F(LimitsTest, SlowlorisIsDroppedWithoutSlowingOthers) {
  start({"--request-timeout", "2"});
  RawConnection slow(port());
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  Stopwatch clock;
  std::thread trickle([&] {
    // One byte every 300 ms: the request would take about 11 s to arrive.
    for (char c : request) {
      try {
        slow.send(std::string(1, c));
      } catch (const std::exception&) {
        return;  // dropped: what we want
      }
      std::this_thread::sleep_for(milliseconds{300});
      if (clock.elapsed() > seconds{5}) {
        return;
      }
    }
  });
  // Meanwhile another client is served at once, again and again.
  for (int i = 0; i < 10; ++i) {
    Stopwatch one;
    ASSERT_EQ(http().request("GET", "/healthz").status, 200);
    EXPECT_LT(one.elapsed(), milliseconds{500});
  }
  const auto reply = slow.read_until_close(seconds{6});
  const auto dropped_after = clock.elapsed();
  trickle.join();
  EXPECT_EQ(reply.find("200 OK"), std::string::npos) << "the slow request must not be served";
  EXPECT_GE(dropped_after, milliseconds{1800});
  EXPECT_LT(dropped_after, milliseconds{4500});
}

}  // namespace
}  // namespace peernet::testing
