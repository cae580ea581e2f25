#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/daemon_process.h"
#include "integration/http_client.h"

namespace peernet::testing {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

/// A test suite with one peernetd for all its tests. Suites that need other flags define their
/// own SetUpTestSuite() that calls start_daemon() with them.
class DaemonTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() { start_daemon({}); }
  static void TearDownTestSuite();

 protected:
  static void start_daemon(const std::vector<std::string>& flags);
  static DaemonProcess& daemon();
  static std::uint16_t port() { return daemon().port(); }

  /// A client of this test (one kept-alive connection).
  HttpClient& http();

 private:
  static std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<HttpClient> http_;
};

/// An id no other test of the run uses: "<prefix>-<n>".
std::string unique_id(std::string_view prefix);

/// Headers for a JSON body, with the bearer token when one is given.
Headers json_headers(std::string_view token = {});
/// Only the bearer token.
Headers auth(std::string_view token);

/// What creating a server or a knock returns: its id and the secret that goes with it.
struct Handle {
  std::string id;
  std::string token;
};

/// Registers a server (POST /servers, JSON); throws unless the daemon answers 201.
Handle register_server(HttpClient& http, const json& server);
/// A server with one service of `protocol` (version "1") in the default room.
Handle register_server_offering(HttpClient& http, std::string_view protocol = "peernet.camera");
/// Creates a knock without waiting; throws unless the daemon answers 201.
Handle create_knock(HttpClient& http, std::string_view server,
                    std::string_view protocol = "peernet.camera",
                    std::string_view offer = "v=0 offer");
/// Creates a room; throws unless the daemon answers 201.
Handle create_room(HttpClient& http, std::string_view id);

/// The value of an unlabelled metric in GET /metrics; throws when it is missing.
double metric(HttpClient& http, std::string_view name);

/// Checks `condition` every 10 ms until it holds or `timeout` passes; whether it held.
bool wait_until(const std::function<bool()>& condition, milliseconds timeout);
/// Waits until peernetd_long_polls equals `count` (a request is parked in the daemon).
::testing::AssertionResult wait_for_long_polls(HttpClient& http, double count,
                                               milliseconds timeout = seconds{5});

/// The response is an error: this status, a JSON body with this Connect code and a message that
/// contains `message_part` (the field or limit it names).
::testing::AssertionResult is_error(const Response& response, int status, std::string_view code,
                                    std::string_view message_part);

/// Whether a server id is listed in a room (GET /rooms/{room}/servers, JSON).
bool is_listed(HttpClient& http, std::string_view room, std::string_view server);

/// Elapsed time since construction.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  milliseconds elapsed() const {
    return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start_);
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// A request made on its own connection in another thread (a long-poll the test wakes up), with
/// the moment its reply arrived.
struct TimedResponse {
  Response response;
  std::chrono::steady_clock::time_point arrived;
};
std::future<TimedResponse> request_in_background(std::uint16_t port, std::string verb,
                                                 std::string target, std::string body = {},
                                                 Headers headers = {});
/// Waits for a background request, failing (not hanging) when it takes more than `timeout`.
TimedResponse await(std::future<TimedResponse>& pending, milliseconds timeout = seconds{10});

}  // namespace peernet::testing
