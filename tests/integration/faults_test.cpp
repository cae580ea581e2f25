// Faults a daemon on the internet meets: SIGTERM in the middle of traffic, a flood of knocks at
// one server, and clients that vanish half-way through a request or a long-poll. Each test starts
// its own peernetd, bounds every wait, and reports its timings (see docs/faults.md).
#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

/// One daemon per test, with the flags the test names.
class FaultsTest : public ::testing::Test {
 protected:
  void start(const std::vector<std::string>& flags) {
    daemon_ = std::make_unique<DaemonProcess>(flags);
    http_ = std::make_unique<HttpClient>(daemon_->port(), seconds{5});
  }
  void TearDown() override {
    http_.reset();
    if (daemon_ && daemon_->running()) {
      EXPECT_EQ(daemon_->stop(), 0) << "peernetd must exit 0 on SIGTERM";
    }
  }
  DaemonProcess& daemon() { return *daemon_; }
  std::uint16_t port() const { return daemon_->port(); }
  HttpClient& http() { return *http_; }

 private:
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpClient> http_;
};

void report(const std::string& what, const std::string& value) {
  std::cout << "[ figure   ] " << what << ": " << value << "\n";
  ::testing::Test::RecordProperty(what, value);
}

std::string ms(milliseconds value) { return std::to_string(value.count()) + " ms"; }

/// VmRSS of a process in KiB, from /proc/<pid>/status; -1 when it cannot be read.
long rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

/// Waits for every future, each bounded by what is left of `timeout`; whether all finished.
template <class T>
bool all_finish(std::vector<std::future<T>>& futures, milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  return std::all_of(futures.begin(), futures.end(), [&](std::future<T>& f) {
    return f.wait_until(give_up) == std::future_status::ready;
  });
}

// ---- SIGTERM under load -----------------------------------------------------------------------

/// What one load thread saw.
struct LoadTally {
  int complete = 0;    // a whole response (Beast checks Content-Length) with an expected status
  int unexpected = 0;  // a whole response with a status the request should never get
  int closed = 0;      // the connection closed or was refused between responses: clean
  int truncated = 0;   // the connection closed in the middle of a response: never allowed
  std::string first_unexpected;
};

/// Registers a server, knocks on it and lists the room, in a loop until `done`.
LoadTally run_load(std::uint16_t port, int thread, const std::atomic<bool>& done,
                   std::atomic<int>& requests) {
  LoadTally tally;
  HttpClient client(port, seconds{5});
  auto attempt = [&](std::string_view verb, const std::string& target, const std::string& body,
                     std::initializer_list<int> expected) -> Response {
    try {
      auto response = client.request(verb, target, body, json_headers());
      ++requests;
      if (std::find(expected.begin(), expected.end(), response.status) != expected.end() ||
          response.status == 503) {  // 503 "shutting down" is a whole, honest answer
        ++tally.complete;
      } else {
        ++tally.unexpected;
        if (tally.first_unexpected.empty()) {
          tally.first_unexpected = std::to_string(response.status) + " " + response.body;
        }
      }
      return response;
    } catch (const std::exception& e) {
      // Beast's parser reports "partial message" only when the stream ended inside a message.
      if (std::string_view(e.what()).find("partial message") != std::string_view::npos) {
        ++tally.truncated;
      } else {
        ++tally.closed;
        std::this_thread::sleep_for(milliseconds{5});  // refused at once: don't spin
      }
      return Response{};
    }
  };
  for (int i = 0; !done.load(); ++i) {
    const auto id = "load-" + std::to_string(thread) + "-" + std::to_string(i);
    const json server = {
        {"unique_id", id},
        {"services", json::array({{{"protocol", "peernet.camera"}, {"version", "1"}}})}};
    if (attempt("POST", "/servers", server.dump(), {201}).status != 201) {
      continue;
    }
    const json knock = {{"protocol", "peernet.camera"}, {"offer", "v=0 offer"}};
    attempt("POST", "/servers/" + id + "/knocks", knock.dump(), {201});
    attempt("GET", "/rooms/default/servers", {}, {200});
  }
  return tally;
}

TEST_F(FaultsTest, SigtermUnderLoadExitsZeroAndAnswersEveryone) {
  start({"--max-servers-per-room", "100000", "--threads", "2"});
  // Four long-polls parked on four servers.
  std::vector<std::future<TimedResponse>> polls;
  for (int i = 0; i < 4; ++i) {
    const auto server = register_server_offering(http());
    polls.push_back(request_in_background(
        port(), "GET", "/servers/" + server.id + "/knocks?wait=30", {}, auth(server.token)));
  }
  ASSERT_TRUE(wait_for_long_polls(http(), 4));
  http().close();  // this test's own connection must not hold up the drain

  std::atomic<bool> done{false};
  std::atomic<int> requests{0};
  std::vector<std::future<LoadTally>> load;
  for (int t = 0; t < 8; ++t) {
    load.push_back(
        std::async(std::launch::async, [&, t] { return run_load(port(), t, done, requests); }));
  }
  // Traffic is flowing on every thread before the signal.
  EXPECT_TRUE(wait_until([&] { return requests.load() >= 1000; }, seconds{5}));
  const int before_signal = requests.load();

  Stopwatch clock;
  const auto code = daemon().stop(seconds{3});
  const auto exit_time = clock.elapsed();
  done = true;
  report("SIGTERM to exit under load", ms(exit_time));
  report("requests answered before SIGTERM", std::to_string(before_signal));
  EXPECT_EQ(code, 0) << "peernetd must exit 0 within 3 s of SIGTERM; its output:\n"
                     << daemon().log();
  EXPECT_LT(exit_time, seconds{3});

  // Every parked long-poll was answered 503 with Retry-After, not dropped.
  ASSERT_TRUE(all_finish(polls, seconds{3})) << "a parked long-poll hung";
  for (auto& poll : polls) {
    try {
      const auto polled = poll.get().response;
      EXPECT_TRUE(is_error(polled, 503, "unavailable", "shutting down"));
      EXPECT_FALSE(polled.header("Retry-After").empty()) << "503 without Retry-After";
    } catch (const std::exception& e) {
      ADD_FAILURE() << "a parked long-poll got no response: " << e.what();
    }
  }

  // No load thread hangs; each saw whole responses or clean closes, never half a body.
  ASSERT_TRUE(all_finish(load, seconds{6})) << "a client thread hung after the daemon exited";
  LoadTally total;
  for (auto& f : load) {
    const auto t = f.get();
    total.complete += t.complete;
    total.unexpected += t.unexpected;
    total.closed += t.closed;
    total.truncated += t.truncated;
    if (total.first_unexpected.empty()) {
      total.first_unexpected = t.first_unexpected;
    }
  }
  report("load responses complete / closed / truncated", std::to_string(total.complete) + " / " +
                                                             std::to_string(total.closed) + " / " +
                                                             std::to_string(total.truncated));
  EXPECT_EQ(total.truncated, 0) << "a response was cut in the middle of its body";
  EXPECT_EQ(total.unexpected, 0) << "first: " << total.first_unexpected;
  EXPECT_GT(total.complete, 0);
}

// ---- A burst of knocks at one server ----------------------------------------------------------

TEST_F(FaultsTest, KnockBurstIsCappedAndOthersStayServed) {
  constexpr int kKnocks = 10'000;
  constexpr int kThreads = 4;
  constexpr int kLimit = 64;  // max_pending_knocks_per_server's default
  start({});
  const auto server = register_server_offering(http());
  const auto rss_start = rss_kib(daemon().pid());

  struct BurstTally {
    int created = 0;
    int refused = 0;  // 429 naming max_pending_knocks_per_server
    int other = 0;
    std::string first_other;
  };
  std::atomic<int> next{0};
  const json knock = {{"protocol", "peernet.camera"}, {"offer", "v=0 offer"}};
  const auto target = "/servers/" + server.id + "/knocks";
  Stopwatch burst_clock;
  std::vector<std::future<BurstTally>> burst;
  for (int t = 0; t < kThreads; ++t) {
    burst.push_back(std::async(std::launch::async, [&] {
      BurstTally tally;
      HttpClient client(port(), seconds{5});
      while (next++ < kKnocks) {
        const auto response = client.json("POST", target, knock, json_headers());
        if (response.status == 201) {
          ++tally.created;
        } else if (is_error(response, 429, "resource_exhausted", "max_pending_knocks_per_server")) {
          ++tally.refused;
        } else if (++tally.other == 1) {
          tally.first_other = std::to_string(response.status) + " " + response.body;
        }
      }
      return tally;
    }));
  }

  // Meanwhile another client checks health and lists the room, each answer timed.
  milliseconds slowest_health{0};
  milliseconds slowest_listing{0};
  int probes = 0;
  {
    HttpClient probe(port(), seconds{5});
    auto timed = [&](const std::string& target_path, milliseconds& slowest) {
      Stopwatch one;
      EXPECT_EQ(probe.request("GET", target_path).status, 200) << target_path;
      slowest = std::max(slowest, one.elapsed());
    };
    auto burst_running = [&] {
      return std::any_of(burst.begin(), burst.end(), [](std::future<BurstTally>& f) {
        return f.wait_for(milliseconds{0}) != std::future_status::ready;
      });
    };
    while (probes < 3 || (burst_running() && burst_clock.elapsed() < seconds{20})) {
      timed("/healthz", slowest_health);
      timed("/rooms/default/servers", slowest_listing);
      ++probes;
      std::this_thread::sleep_for(milliseconds{10});
    }
  }
  ASSERT_TRUE(all_finish(burst, seconds{20})) << "the burst did not finish";
  const auto burst_time = burst_clock.elapsed();

  BurstTally total;
  for (auto& f : burst) {
    const auto t = f.get();
    total.created += t.created;
    total.refused += t.refused;
    total.other += t.other;
    if (total.first_other.empty()) {
      total.first_other = t.first_other;
    }
  }
  const auto rss_end = rss_kib(daemon().pid());
  report("10000 knocks over 4 connections",
         ms(burst_time) + " (" +
             std::to_string(kKnocks * 1000 / std::max<long>(1, burst_time.count())) + " req/s)");
  report("slowest /healthz during the burst", ms(slowest_health));
  report("slowest room listing during the burst", ms(slowest_listing));
  report("probes during the burst", std::to_string(probes));
  report("VmRSS before / after the burst",
         std::to_string(rss_start) + " / " + std::to_string(rss_end) + " KiB");

  EXPECT_EQ(total.created, kLimit);
  EXPECT_EQ(total.refused, kKnocks - kLimit);
  EXPECT_EQ(total.other, 0) << "first: " << total.first_other;
  EXPECT_LT(slowest_health, milliseconds{750});
  EXPECT_LT(slowest_listing, milliseconds{750});
  EXPECT_EQ(metric(http(), "peernetd_knocks"), kLimit);
  ASSERT_GT(rss_end, 0) << "cannot read /proc/" << daemon().pid() << "/status";
  EXPECT_LT(rss_end, 100 * 1024) << "VmRSS in KiB";
}

// ---- Clients that vanish ----------------------------------------------------------------------

TEST_F(FaultsTest, ClientVanishingMidRequestIsFreed) {
  start({});
  const auto baseline = metric(http(), "peernetd_connections");  // counts http()'s own
  const auto accepted = metric(http(), "peernetd_connections_accepted_total");
  {
    RawConnection half(port());
    half.send(
        "POST /servers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 200\r\n\r\n{\"unique_id\": \"half-a-body\", ");
    ASSERT_TRUE(wait_until(
        [&] { return metric(http(), "peernetd_connections_accepted_total") == accepted + 1; },
        seconds{2}));
    EXPECT_EQ(metric(http(), "peernetd_connections"), baseline + 1);
    half.close();
  }
  Stopwatch clock;
  double last = -1;
  EXPECT_TRUE(wait_until(
      [&] { return (last = metric(http(), "peernetd_connections")) == baseline; }, seconds{1}))
      << "peernetd_connections stayed " << last << " instead of " << baseline;
  report("connection freed after a half body", ms(clock.elapsed()));
  EXPECT_FALSE(is_listed(http(), "default", "half-a-body"));
}

TEST_F(FaultsTest, ClientVanishingMidLongPollIsFreed) {
  start({});
  const auto server = register_server_offering(http());
  const auto baseline = metric(http(), "peernetd_connections");
  {
    RawConnection poller(port());
    poller.send("GET /servers/" + server.id + "/knocks?wait=30 HTTP/1.1\r\nHost: x\r\n" +
                "Authorization: Bearer " + server.token + "\r\n\r\n");
    ASSERT_TRUE(wait_for_long_polls(http(), 1));
    EXPECT_EQ(metric(http(), "peernetd_connections"), baseline + 1);
    poller.close();
  }
  Stopwatch clock;
  double polls = -1;
  double connections = -1;
  EXPECT_TRUE(wait_until(
      [&] {
        polls = metric(http(), "peernetd_long_polls");
        connections = metric(http(), "peernetd_connections");
        return polls == 0 && connections == baseline;
      },
      seconds{1}))
      << "after 1 s: peernetd_long_polls " << polls << ", peernetd_connections " << connections
      << " (baseline " << baseline << ")";
  report("long-poll freed after its client left", ms(clock.elapsed()));
  // The server can still be polled and knocked: nothing of the dead poll is left in the way.
  auto again = request_in_background(port(), "GET", "/servers/" + server.id + "/knocks?wait=5", {},
                                     auth(server.token));
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  create_knock(http(), server.id);
  EXPECT_EQ(await(again).response.status, 200);
}

}  // namespace
}  // namespace peernet::testing
