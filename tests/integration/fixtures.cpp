#include "integration/fixtures.h"

#include <atomic>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace peernet::testing {

std::unique_ptr<DaemonProcess> DaemonTest::daemon_;

void DaemonTest::start_daemon(const std::vector<std::string>& flags) {
  daemon_ = std::make_unique<DaemonProcess>(flags);
}

void DaemonTest::TearDownTestSuite() {
  if (daemon_) {
    // Every suite ends with a graceful stop: SIGTERM must drain and exit 0.
    const auto code = daemon_->stop();
    EXPECT_EQ(code, 0) << "peernetd did not stop cleanly on SIGTERM; its output:\n"
                       << daemon_->log();
    daemon_.reset();
  }
}

DaemonProcess& DaemonTest::daemon() {
  if (!daemon_) {
    throw std::runtime_error("the suite's peernetd did not start");
  }
  return *daemon_;
}

HttpClient& DaemonTest::http() {
  if (!http_) {
    http_ = std::make_unique<HttpClient>(port());
  }
  return *http_;
}

std::string unique_id(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return std::string(prefix) + "-" + std::to_string(++counter);
}

Headers auth(std::string_view token) { return token.empty() ? Headers{} : Headers{bearer(token)}; }

Headers json_headers(std::string_view token) {
  Headers headers = auth(token);
  headers.emplace_back("Content-Type", "application/json");
  return headers;
}

namespace {

Handle expect_created(const Response& response, const std::string& what, const json& object) {
  if (response.status != 201) {
    throw std::runtime_error(what + ": expected 201, got " + std::to_string(response.status) + " " +
                             response.body);
  }
  const auto body = response.json();
  return Handle{body.at(object).at("unique_id").get<std::string>(),
                body.at("token").get<std::string>()};
}

}  // namespace

Handle register_server(HttpClient& http, const json& server) {
  return expect_created(http.json("POST", "/servers", server, json_headers()),
                        "register " + server.dump(), "server");
}

Handle register_server_offering(HttpClient& http, std::string_view protocol) {
  return register_server(http,
                         {{"unique_id", unique_id("srv")},
                          {"services", json::array({{{"protocol", protocol}, {"version", "1"}}})}});
}

Handle create_knock(HttpClient& http, std::string_view server, std::string_view protocol,
                    std::string_view offer) {
  const json knock = {{"protocol", protocol}, {"offer", offer}};
  return expect_created(
      http.json("POST", "/servers/" + std::string(server) + "/knocks", knock, json_headers()),
      "knock on " + std::string(server), "knock");
}

Handle create_room(HttpClient& http, std::string_view id) {
  return expect_created(http.json("POST", "/rooms", {{"unique_id", id}}, json_headers()), "room",
                        "room");
}

double metric(HttpClient& http, std::string_view name) {
  const auto response = http.request("GET", "/metrics");
  std::istringstream lines(response.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ') {
      return std::stod(line.substr(name.size() + 1));
    }
  }
  throw std::runtime_error("no metric " + std::string(name) + " in:\n" + response.body);
}

bool wait_until(const std::function<bool()>& condition, milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= give_up) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds{10});
  }
  return true;
}

::testing::AssertionResult wait_for_long_polls(HttpClient& http, double count,
                                               milliseconds timeout) {
  double last = -1;
  if (wait_until([&] { return (last = metric(http, "peernetd_long_polls")) == count; }, timeout)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "peernetd_long_polls stayed " << last << ", expected " << count;
}

::testing::AssertionResult is_error(const Response& response, int status, std::string_view code,
                                    std::string_view message_part) {
  const auto body = response.json();
  auto failure = [&]() {
    return ::testing::AssertionFailure()
           << "expected " << status << " with code \"" << code << "\" and a message naming \""
           << message_part << "\", got " << response.status << " ("
           << response.header("Content-Type") << ") " << response.body;
  };
  if (response.status != status ||
      response.header("Content-Type").rfind("application/json", 0) != 0 || !body.is_object() ||
      !body.contains("code") || !body.contains("message") || !body["message"].is_string() ||
      body["code"] != code) {
    return failure();
  }
  if (body["message"].get<std::string>().find(message_part) == std::string::npos) {
    return failure();
  }
  return ::testing::AssertionSuccess();
}

bool is_listed(HttpClient& http, std::string_view room, std::string_view server) {
  const auto response = http.request("GET", "/rooms/" + std::string(room) + "/servers");
  if (response.status != 200) {
    throw std::runtime_error("listing room " + std::string(room) + ": " +
                             std::to_string(response.status));
  }
  for (const auto& listed : response.json().value("servers", json::array())) {
    if (listed.value("unique_id", "") == server) {
      return true;
    }
  }
  return false;
}

std::future<TimedResponse> request_in_background(std::uint16_t port, std::string verb,
                                                 std::string target, std::string body,
                                                 Headers headers) {
  return std::async(std::launch::async, [=] {
    HttpClient client(port);
    TimedResponse out;
    out.response = client.request(verb, target, body, headers);
    out.arrived = std::chrono::steady_clock::now();
    return out;
  });
}

TimedResponse await(std::future<TimedResponse>& pending, milliseconds timeout) {
  if (pending.wait_for(timeout) != std::future_status::ready) {
    // The client's own deadline ends the request soon after; get() then throws or returns.
    throw std::runtime_error("a background request did not finish in time");
  }
  return pending.get();
}

}  // namespace peernet::testing
