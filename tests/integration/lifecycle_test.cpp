// The daemon as a process: health and metrics, clients that leave, graceful stop, and its
// command line and config file.
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

using LifecycleTest = DaemonTest;

TEST_F(LifecycleTest, HealthzSaysOkToGetAndHead) {
  const auto get = http().request("GET", "/healthz");
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "ok\n");
  EXPECT_EQ(get.header("Content-Type").rfind("text/plain", 0), 0U) << get.header("Content-Type");

  const auto head = http().request("HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("Content-Length"), "3") << "HEAD tells the size a GET would get";
  EXPECT_EQ(http().request("GET", "/healthz").body, "ok\n")
      << "the connection is still in step after HEAD";
}

TEST_F(LifecycleTest, MetricsArePrometheusText) {
  ASSERT_EQ(http().request("GET", "/healthz").status, 200);
  const auto response = http().request("GET", "/metrics");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0U)
      << response.header("Content-Type");
  EXPECT_NE(response.body.find("# TYPE peernetd_requests_total counter\n"), std::string::npos)
      << response.body;
  EXPECT_TRUE(std::regex_search(
      response.body,
      std::regex(R"(\npeernetd_requests_total\{method="healthz",code="200"\} [1-9])")))
      << response.body;

  const std::regex comment(R"(# (HELP|TYPE) [a-z_]+ .+)");
  const std::regex sample(R"([a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9][0-9.e+]*)");
  std::istringstream lines(response.body);
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(std::regex_match(line, comment) || std::regex_match(line, sample))
        << "not Prometheus text: " << line;
  }
  for (const auto* name :
       {"peernetd_connections", "peernetd_long_polls", "peernetd_servers", "peernetd_knocks"}) {
    EXPECT_GE(metric(http(), name), 0) << name;
  }
}

TEST_F(LifecycleTest, ClientLeavingMidPollFreesThePollAndTheConnection) {
  const auto server = register_server_offering(http());
  const double connections = metric(http(), "peernetd_connections");
  RawConnection leaver(port());
  leaver.send("GET /servers/" + server.id +
              "/knocks?wait=20 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
              server.token + "\r\n\r\n");
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  EXPECT_EQ(metric(http(), "peernetd_connections"), connections + 1);

  const Stopwatch clock;
  leaver.close();
  EXPECT_TRUE(wait_for_long_polls(http(), 0, seconds{1}))
      << "the poll of a client that left is dropped";
  EXPECT_TRUE(
      wait_until([&] { return metric(http(), "peernetd_connections") == connections; }, seconds{1}))
      << "its connection is closed";
  EXPECT_LT(clock.elapsed(), seconds{1});
  EXPECT_TRUE(is_listed(http(), "default", server.id));
}

TEST(ShutdownTest, LongPollGets503AndTheDaemonExitsCleanly) {
  DaemonProcess daemon;
  HttpClient http(daemon.port());
  const auto server = register_server_offering(http);
  auto poll = request_in_background(
      daemon.port(), "GET", "/servers/" + server.id + "/knocks?wait=20", {}, auth(server.token));
  ASSERT_TRUE(wait_for_long_polls(http, 1));

  const Stopwatch clock;
  daemon.terminate();
  const auto polled = await(poll);
  EXPECT_TRUE(is_error(polled.response, 503, "unavailable", "shutting down"));
  EXPECT_EQ(polled.response.header("Retry-After"), "1");
  EXPECT_EQ(polled.response.header("Connection"), "close");
  EXPECT_EQ(daemon.wait_exit(seconds{3}), 0) << daemon.log();
  EXPECT_LT(clock.elapsed(), seconds{3});
}

TEST(CommandLineTest, VersionPrintsTheVersion) {
  const auto result = run_peernetd({"--version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_TRUE(std::regex_match(result.output, std::regex(R"(peernetd \d+\.\d+\.\d+\s*)")))
      << result.output;
}

TEST(CommandLineTest, HelpListsTheOptions) {
  const auto result = run_peernetd({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const auto* flag :
       {"--max-wait", "--config", "--port-file", "--server-ttl", "--max-body-bytes"}) {
    EXPECT_NE(result.output.find(flag), std::string::npos) << flag << " missing from:\n"
                                                           << result.output;
  }
}

TEST(CommandLineTest, UnknownFlagOrBadValueFails) {
  const auto unknown = run_peernetd({"--no-such-flag"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.output.find("--no-such-flag"), std::string::npos) << unknown.output;

  const auto bad_value = run_peernetd({"--max-wait", "soon"});
  EXPECT_NE(bad_value.exit_code, 0);
  EXPECT_NE(bad_value.output.find("max_wait"), std::string::npos) << bad_value.output;
}

TEST(CommandLineTest, ConfigFileSetsTheDefaultRoom) {
  const TempDir dir;
  const auto config = dir.path() / "peernetd.toml";
  std::ofstream(config) << "# written by the integration test\ndefault_room = \"lobby\"\n";
  DaemonProcess daemon({"--config", config.string()});
  HttpClient http(daemon.port());

  const auto registered = http.request("POST", "/servers", R"({"unique_id": "roomless"})");
  ASSERT_EQ(registered.status, 201) << registered.body;
  EXPECT_EQ(registered.json()["server"]["room"], "lobby");
  EXPECT_TRUE(is_listed(http, "lobby", "roomless"));
  EXPECT_TRUE(is_error(http.request("GET", "/rooms/default"), 404, "not_found", "default"));
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

TEST(CommandLineTest, ConfigFileWithAnUnknownOptionFails) {
  const TempDir dir;
  const auto config = dir.path() / "peernetd.toml";
  std::ofstream(config) << "default_rooom = \"lobby\"\n";
  const auto result = run_peernetd({"--config", config.string()});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("default_rooom"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace peernet::testing
