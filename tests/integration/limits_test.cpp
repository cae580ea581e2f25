// Each HTTP-level limit of peernetd, crossed on a daemon started with a small value for it. The
// error must say which limit (its option name), and the daemon must keep serving others.
#include <algorithm>
#include <atomic>
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
  // Meanwhile another client, on its own connection and thread, is served at once, again and
  // again.
  std::atomic<bool> trickling{true};
  std::atomic<int> served{0};
  std::atomic<long> slowest_ms{0};
  std::thread other([&, port = port()] {
    HttpClient client(port);
    while (trickling) {
      Stopwatch one;
      if (client.request("GET", "/healthz").status == 200) {
        ++served;
      }
      slowest_ms = std::max<long>(slowest_ms, one.elapsed().count());
      std::this_thread::sleep_for(milliseconds{100});
    }
  });
  // One byte every 300 ms: the whole request would take about 11 s to arrive. The daemon drops
  // the connection at request_timeout; a send after that fails (the second one at the latest).
  RawConnection slow(port());
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  Stopwatch clock;
  milliseconds dropped_after{0};
  for (char c : request) {
    try {
      slow.send(std::string(1, c));
    } catch (const std::exception&) {
      dropped_after = clock.elapsed();
      break;
    }
    std::this_thread::sleep_for(milliseconds{300});
  }
  trickling = false;
  other.join();
  EXPECT_GE(dropped_after, milliseconds{1800}) << "dropped before request_timeout";
  EXPECT_LT(dropped_after, milliseconds{4500}) << "not dropped (0 means never)";
  EXPECT_EQ(slow.read_until_close(seconds{1}).find("200 OK"), std::string::npos)
      << "the slow request must not be served";
  EXPECT_GE(served.load(), 10);
  EXPECT_LT(slowest_ms.load(), 750) << "the other client was slowed down";
}

}  // namespace
}  // namespace peernet::testing
