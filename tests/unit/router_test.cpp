#include "http/router.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace peernet::http {
namespace {

using core::ErrorCode;
using ::testing::HasSubstr;

using Params = std::vector<std::pair<std::string, std::string>>;

Params sorted_params(const Route& route) {
  Params params;
  for (const auto& [name, value] : route.params) {
    params.emplace_back(std::string(name), value);
  }
  std::sort(params.begin(), params.end());
  return params;
}

/// One row of docs/routes.md, as a request and what the router must make of it.
struct RestCase {
  std::string_view verb;
  std::string_view target;
  Method method;
  std::string_view body_field;
  Params params;
};

std::ostream& operator<<(std::ostream& out, const RestCase& c) {
  return out << c.verb << ' ' << c.target;
}

class RestRouteTest : public ::testing::TestWithParam<RestCase> {};

TEST_P(RestRouteTest, MapsToMethodWithParams) {
  const auto& c = GetParam();
  const auto routed = route(c.verb, c.target);
  ASSERT_TRUE(routed.ok()) << routed.error().message;
  EXPECT_EQ(routed->method, c.method) << method_name(routed->method);
  EXPECT_EQ(routed->style, Style::kRest);
  EXPECT_EQ(routed->body_field, c.body_field);
  auto expected = c.params;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(sorted_params(routed.value()), expected);
}

INSTANTIATE_TEST_SUITE_P(
    RoutesTable, RestRouteTest,
    ::testing::Values(
        RestCase{"POST", "/rooms", Method::kCreateRoom, "room", {}},
        RestCase{"GET", "/rooms/lab", Method::kGetRoom, "", {{"room", "lab"}}},
        RestCase{"DELETE", "/rooms/lab", Method::kDeleteRoom, "", {{"room", "lab"}}},
        RestCase{"POST", "/servers", Method::kCreateServer, "server", {}},
        RestCase{"POST", "/server", Method::kCreateServer, "server", {}},
        RestCase{"GET", "/rooms/lab/servers", Method::kListServers, "", {{"room", "lab"}}},
        RestCase{"GET",
                 "/rooms/lab/servers?protocol=peernet.camera&version=1",
                 Method::kListServers,
                 "",
                 {{"room", "lab"}, {"protocol", "peernet.camera"}, {"version", "1"}}},
        RestCase{"GET", "/servers/cam", Method::kGetServer, "", {{"server", "cam"}}},
        RestCase{"DELETE", "/servers/cam", Method::kDeleteServer, "", {{"server", "cam"}}},
        RestCase{"POST",
                 "/servers/cam/services",
                 Method::kCreateService,
                 "service",
                 {{"server", "cam"}}},
        RestCase{"PUT",
                 "/servers/cam/services/peernet.camera",
                 Method::kUpdateService,
                 "service",
                 {{"server", "cam"}, {"service.protocol", "peernet.camera"}}},
        RestCase{"DELETE",
                 "/servers/cam/services/peernet.camera",
                 Method::kDeleteService,
                 "",
                 {{"server", "cam"}, {"protocol", "peernet.camera"}}},
        RestCase{"POST", "/servers/cam/knocks", Method::kCreateKnock, "knock", {{"server", "cam"}}},
        RestCase{"POST",
                 "/servers/cam/knocks?wait=20",
                 Method::kCreateKnock,
                 "knock",
                 {{"server", "cam"}, {"wait_seconds", "20"}}},
        RestCase{"GET",
                 "/servers/cam/knocks?wait=30&since=7",
                 Method::kListKnocks,
                 "",
                 {{"server", "cam"}, {"wait_seconds", "30"}, {"since", "7"}}},
        RestCase{"GET",
                 "/knocks/k1?since=3&wait=5",
                 Method::kGetKnock,
                 "",
                 {{"knock", "k1"}, {"wait_seconds", "5"}, {"since", "3"}}},
        RestCase{"PATCH", "/knocks/k1", Method::kUpdateKnock, "*", {{"knock", "k1"}}},
        RestCase{"PATCH",
                 "/knocks/k1?wait=5&since=3",
                 Method::kUpdateKnock,
                 "*",
                 {{"knock", "k1"}, {"next_poll.wait_seconds", "5"}, {"next_poll.since", "3"}}},
        RestCase{"DELETE", "/knocks/k1", Method::kDeleteKnock, "", {{"knock", "k1"}}},
        RestCase{"GET", "/healthz", Method::kHealth, "", {}},
        RestCase{"GET", "/metrics", Method::kMetrics, "", {}},
        // Escapes are decoded in path values, and '+' is a space only in the query.
        RestCase{"GET",
                 "/servers/caf%C3%A9%2Fx+y",
                 Method::kGetServer,
                 "",
                 {{"server", "caf\xc3\xa9/x+y"}}},
        RestCase{"GET",
                 "/rooms/my%20room/servers?protocol=a+b%26c",
                 Method::kListServers,
                 "",
                 {{"room", "my room"}, {"protocol", "a b&c"}}},
        RestCase{"GET", "/knocks/k1?", Method::kGetKnock, "", {{"knock", "k1"}}}));

// ---- Connect --------------------------------------------------------------------------------

constexpr Method kRpcs[] = {
    Method::kCreateRoom,    Method::kGetRoom,       Method::kDeleteRoom,  Method::kCreateServer,
    Method::kGetServer,     Method::kDeleteServer,  Method::kListServers, Method::kCreateService,
    Method::kDeleteService, Method::kUpdateService, Method::kCreateKnock, Method::kDeleteKnock,
    Method::kGetKnock,      Method::kListKnocks,    Method::kUpdateKnock,
};

std::string connect_path(Method method) {
  return "/peernet.PeerNetService/" + std::string(method_name(method));
}

TEST(ConnectRouteTest, EveryRpcIsAPostWithTheWholeRequestAsBody) {
  static_assert(std::size(kRpcs) == 15);
  for (const auto method : kRpcs) {
    const auto path = connect_path(method);
    SCOPED_TRACE(path);
    const auto routed = route("POST", path);
    ASSERT_TRUE(routed.ok()) << routed.error().message;
    EXPECT_EQ(routed->method, method);
    EXPECT_EQ(routed->style, Style::kConnect);
    EXPECT_EQ(routed->body_field, "*");
    EXPECT_TRUE(routed->params.empty());
  }
}

TEST(ConnectRouteTest, RpcNamesAreTheProtosNames) {
  EXPECT_EQ(connect_path(Method::kCreateRoom), "/peernet.PeerNetService/CreateRoom");
  EXPECT_EQ(connect_path(Method::kListKnocks), "/peernet.PeerNetService/ListKnocks");
  EXPECT_EQ(connect_path(Method::kUpdateService), "/peernet.PeerNetService/UpdateService");
}

TEST(ConnectRouteTest, OtherVerbsAreNotAllowed) {
  for (const auto method : kRpcs) {
    const auto path = connect_path(method);
    SCOPED_TRACE(path);
    for (const auto* verb : {"GET", "PUT", "DELETE"}) {
      const auto routed = route(verb, path);
      ASSERT_FALSE(routed.ok());
      EXPECT_EQ(routed.error().code, ErrorCode::kMethodNotAllowed);
    }
    EXPECT_EQ(allowed_verbs(path), "POST");
  }
}

TEST(ConnectRouteTest, UnknownRpcIsNotFound) {
  for (const auto* path : {"/peernet.PeerNetService/ListRooms", "/peernet.PeerNetService/",
                           "/peernet.PeerNetService/createroom", "/peernet.Other/CreateRoom"}) {
    SCOPED_TRACE(path);
    const auto routed = route("POST", path);
    ASSERT_FALSE(routed.ok());
    EXPECT_EQ(routed.error().code, ErrorCode::kNotFound);
  }
}

// ---- errors ---------------------------------------------------------------------------------

ErrorCode error_of(std::string_view verb, std::string_view target) {
  const auto routed = route(verb, target);
  if (routed.ok()) {
    ADD_FAILURE() << verb << ' ' << target << " was routed to " << method_name(routed->method);
    return ErrorCode::kInternal;
  }
  return routed.error().code;
}

TEST(RouteErrorTest, UnknownPathIsNotFound) {
  for (const auto* target : {"/", "/nothing", "/rooms/lab/servers/cam", "/knocks", "/ROOMS/lab",
                             "/servers/cam/knocks/k1", "/rooms//servers"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(error_of("GET", target), ErrorCode::kNotFound);
  }
}

TEST(RouteErrorTest, TrailingSlashIsNotFound) {
  for (const auto* target : {"/rooms/", "/rooms/lab/", "/servers/", "/knocks/k1/", "/healthz/"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(error_of("GET", target), ErrorCode::kNotFound);
  }
}

struct VerbCase {
  std::string_view wrong_verb;
  std::string_view target;
  std::string_view allowed;
};

TEST(RouteErrorTest, KnownPathWithWrongVerbListsTheRightOnes) {
  const VerbCase cases[] = {
      {"PUT", "/rooms/lab", "GET, DELETE"},
      {"GET", "/rooms", "POST"},
      {"GET", "/servers", "POST"},
      {"DELETE", "/server", "POST"},
      {"POST", "/rooms/lab/servers", "GET"},
      {"PATCH", "/servers/cam", "GET, DELETE"},
      {"GET", "/servers/cam/services", "POST"},
      {"GET", "/servers/cam/services/peernet.camera", "PUT, DELETE"},
      {"PUT", "/servers/cam/knocks", "POST, GET"},
      {"POST", "/knocks/k1?wait=1", "GET, PATCH, DELETE"},
      {"POST", "/healthz", "GET, HEAD"},
      {"DELETE", "/metrics", "GET"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target);
    const auto routed = route(c.wrong_verb, c.target);
    ASSERT_FALSE(routed.ok());
    EXPECT_EQ(routed.error().code, ErrorCode::kMethodNotAllowed);
    EXPECT_EQ(allowed_verbs(c.target), c.allowed);
    EXPECT_THAT(routed.error().message, HasSubstr(std::string(c.allowed)));
  }
}

TEST(RouteErrorTest, UnknownQueryParameterIsMalformed) {
  const auto routed = route("GET", "/rooms/lab?verbose=1");
  ASSERT_FALSE(routed.ok());
  EXPECT_EQ(routed.error().code, ErrorCode::kMalformed);
  EXPECT_THAT(routed.error().message, HasSubstr("verbose"));

  EXPECT_EQ(error_of("POST", "/servers/cam/knocks?since=1"), ErrorCode::kMalformed)
      << "CreateKnock takes wait, not since";
  EXPECT_EQ(error_of("GET", "/servers/cam/knocks?wait_seconds=1"), ErrorCode::kMalformed)
      << "query parameters have their short names";
  EXPECT_EQ(error_of("GET", "/rooms/lab/servers?room=other"), ErrorCode::kMalformed);
}

TEST(RouteErrorTest, RepeatedQueryParameterIsMalformed) {
  const auto routed = route("GET", "/knocks/k1?wait=1&since=2&wait=3");
  ASSERT_FALSE(routed.ok());
  EXPECT_EQ(routed.error().code, ErrorCode::kMalformed);
  EXPECT_THAT(routed.error().message, HasSubstr("wait"));
  EXPECT_EQ(error_of("PATCH", "/knocks/k1?since=1&since=1"), ErrorCode::kMalformed);
}

TEST(RouteErrorTest, MalformedEscapeIsMalformed) {
  for (const auto* target : {"/rooms/%zz", "/rooms/%4", "/rooms/ab%", "/servers/%g1/knocks",
                             "/knocks/k1?wait=%", "/rooms/lab/servers?protocol=%2"}) {
    SCOPED_TRACE(target);
    EXPECT_EQ(error_of("GET", target), ErrorCode::kMalformed);
  }
}

}  // namespace
}  // namespace peernet::http
