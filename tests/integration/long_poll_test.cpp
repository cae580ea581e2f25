// Long-polls: the serving side waiting for knocks, the knocker waiting for its answer, trickled
// ICE candidates, and the daemon's limit on how long anyone waits.
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "integration/fixtures.h"

namespace peernet::testing {
namespace {

using std::chrono::duration_cast;
using Clock = std::chrono::steady_clock;

class LongPollTest : public DaemonTest {
 protected:
  /// GET /servers/{id}/knocks?wait=N on its own connection.
  std::future<TimedResponse> poll_knocks(const Handle& server, int wait, std::string since = {}) {
    auto target = "/servers/" + server.id + "/knocks?wait=" + std::to_string(wait);
    if (!since.empty()) {
      target += "&since=" + since;
    }
    return request_in_background(port(), "GET", target, {}, auth(server.token));
  }

  /// GET /knocks/{id}?wait=N&since=R with `token`, on this test's connection or its own.
  Response read_knock(const Handle& knock, std::string_view token, int wait,
                      const std::string& since) {
    return http().request(
        "GET", "/knocks/" + knock.id + "?wait=" + std::to_string(wait) + "&since=" + since, {},
        auth(token));
  }
};

/// A revision from a JSON reply: uint64 is a string in protobuf's JSON mapping.
std::string revision_of(const json& object) {
  const auto& value = object.at("revision");
  return value.is_string() ? value.get<std::string>() : std::to_string(value.get<std::uint64_t>());
}

std::chrono::microseconds since(Clock::time_point start, Clock::time_point end) {
  return duration_cast<std::chrono::microseconds>(end - start);
}

void report_latency(std::string_view what, std::chrono::microseconds latency) {
  const auto text = std::to_string(static_cast<double>(latency.count()) / 1000.0) + " ms";
  std::cout << "[ latency  ] " << what << ": " << text << "\n";
  ::testing::Test::RecordProperty(std::string(what), text);
}

json candidate(std::string_view line) {
  return {{"candidate", line}, {"sdp_mid", "0"}, {"sdpMLineIndex", 0}};
}

json candidate_lines(const json& knock, std::string_view field) {
  json lines = json::array();
  for (const auto& c : knock.value(std::string(field), json::array())) {
    lines.push_back(c.at("candidate"));
  }
  return lines;
}

TEST_F(LongPollTest, PollWakesAsSoonAsAKnockArrives) {
  const auto server = register_server_offering(http());
  auto poll = poll_knocks(server, 5);
  ASSERT_TRUE(wait_for_long_polls(http(), 1));

  const auto knocked_at = Clock::now();
  const auto knock = create_knock(http(), server.id);
  const auto polled = await(poll);
  const auto latency = since(knocked_at, polled.arrived);
  report_latency("ListKnocks wake-up after a knock", latency);
  EXPECT_LT(latency, milliseconds{2500});

  ASSERT_EQ(polled.response.status, 200) << polled.response.body;
  const auto body = polled.response.json();
  ASSERT_EQ(body["knocks"].size(), 1U) << body;
  EXPECT_EQ(body["knocks"][0]["unique_id"], knock.id);
  EXPECT_EQ(body["knocks"][0]["offer"], "v=0 offer");
  EXPECT_EQ(body["knocks"][0]["state"], "KNOCK_STATE_PENDING");
  EXPECT_FALSE(body["knocks"][0].contains("token"));
}

TEST_F(LongPollTest, PollWithNothingToReportAnswersEmptyWhenTheWaitRunsOut) {
  const auto server = register_server_offering(http());
  const Stopwatch clock;
  const auto response =
      http().request("GET", "/servers/" + server.id + "/knocks?wait=1", {}, auth(server.token));
  const auto took = clock.elapsed();
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_GE(took, milliseconds{900});
  EXPECT_LT(took, seconds{4});
  const auto body = response.json();
  EXPECT_FALSE(body.contains("knocks")) << body;
  EXPECT_TRUE(body.contains("revision")) << body;
}

TEST_F(LongPollTest, EveryOneOfManyConcurrentPollsAnswersWhenItsWaitRunsOut) {
  // Many kept-alive connections, each registering a server and polling in rounds. A stale
  // readiness event on one of them once made the peer watch block an event-loop thread, and
  // that poll went unanswered until its client gave up (1 in a few hundred polls under load).
  constexpr int kConnections = 48;
  constexpr int kRounds = 3;
  std::vector<std::future<std::vector<std::string>>> pollers;
  for (int i = 0; i < kConnections; ++i) {
    pollers.push_back(std::async(std::launch::async, [port = port()] {
      std::vector<std::string> failures;
      HttpClient client(port, seconds{6});
      const auto server = register_server_offering(client);
      for (int round = 0; round < kRounds; ++round) {
        const auto started = Clock::now();
        try {
          const auto response = client.request("GET", "/servers/" + server.id + "/knocks?wait=1",
                                               {}, auth(server.token));
          if (response.status != 200) {
            failures.push_back(server.id + ": status " + std::to_string(response.status));
          }
        } catch (const std::exception& error) {
          failures.push_back(server.id + ": no answer after " +
                             std::to_string(since(started, Clock::now()).count() / 1000) + " ms (" +
                             error.what() + ")");
          return failures;
        }
      }
      return failures;
    }));
  }
  std::vector<std::string> failures;
  for (auto& poller : pollers) {
    for (auto& failure : poller.get()) {
      failures.push_back(std::move(failure));
    }
  }
  EXPECT_TRUE(failures.empty()) << ::testing::PrintToString(failures);
  EXPECT_EQ(metric(http(), "peernetd_long_polls"), 0.0);
}

TEST_F(LongPollTest, KnockerGetsTheAnswerInTheResponseToItsKnock) {
  const auto server = register_server_offering(http());
  auto poll = poll_knocks(server, 5);
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  auto knocking =
      request_in_background(port(), "POST", "/servers/" + server.id + "/knocks?wait=5",
                            json{{"protocol", "peernet.camera"}, {"offer", "v=0 offer"}}.dump());

  const auto polled = await(poll);
  ASSERT_EQ(polled.response.status, 200) << polled.response.body;
  ASSERT_EQ(polled.response.json()["knocks"].size(), 1U);
  const auto knock_id = polled.response.json()["knocks"][0]["unique_id"].get<std::string>();
  ASSERT_TRUE(wait_for_long_polls(http(), 1)) << "the knocker waits for its answer";

  const auto answered_at = Clock::now();
  const auto answer = http().json("PATCH", "/knocks/" + knock_id, {{"answer", "v=0 answer"}},
                                  json_headers(server.token));
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.json()["knock"]["state"], "KNOCK_STATE_ANSWERED");

  const auto knocked = await(knocking);
  report_latency("CreateKnock wake-up after the answer", since(answered_at, knocked.arrived));
  EXPECT_LT(since(answered_at, knocked.arrived), milliseconds{2500});
  ASSERT_EQ(knocked.response.status, 201) << knocked.response.body;
  const auto body = knocked.response.json();
  EXPECT_EQ(body["knock"]["unique_id"], knock_id);
  EXPECT_EQ(body["knock"]["state"], "KNOCK_STATE_ANSWERED");
  EXPECT_EQ(body["knock"]["answer"], "v=0 answer");
  EXPECT_TRUE(body["token"].is_string());
}

TEST_F(LongPollTest, KnockerWaitingIsToldOfARejection) {
  const auto server = register_server_offering(http());
  auto knocking =
      request_in_background(port(), "POST", "/servers/" + server.id + "/knocks?wait=5",
                            json{{"protocol", "peernet.camera"}, {"offer", "v=0 offer"}}.dump());
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  const auto listed =
      http().request("GET", "/servers/" + server.id + "/knocks", {}, auth(server.token));
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(listed.json()["knocks"].size(), 1U) << listed.body;
  const auto knock_path = "/knocks/" + listed.json()["knocks"][0]["unique_id"].get<std::string>();

  EXPECT_TRUE(is_error(http().json("PATCH", knock_path, {{"answer", "v=0"}, {"reject", true}},
                                   json_headers(server.token)),
                       422, "invalid_argument", "answer, reject"));
  const auto rejected = http().json("PATCH", knock_path, {{"reject", true}, {"reason", "busy"}},
                                    json_headers(server.token));
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  EXPECT_EQ(rejected.json()["knock"]["state"], "KNOCK_STATE_REJECTED");

  const auto knocked = await(knocking);
  ASSERT_EQ(knocked.response.status, 201) << knocked.response.body;
  EXPECT_EQ(knocked.response.json()["knock"]["state"], "KNOCK_STATE_REJECTED");
  EXPECT_EQ(knocked.response.json()["knock"]["reason"], "busy");
  EXPECT_FALSE(knocked.response.json()["knock"].contains("answer"));

  EXPECT_TRUE(is_error(
      http().json("PATCH", knock_path, {{"answer", "v=0 late"}}, json_headers(server.token)), 422,
      "invalid_argument", "KNOCK_STATE_REJECTED"));
  const auto listed_after =
      http().request("GET", "/servers/" + server.id + "/knocks", {}, auth(server.token));
  EXPECT_FALSE(listed_after.json().contains("knocks")) << "a rejected knock is no longer offered";
}

TEST_F(LongPollTest, AnsweringWithWaitAndSinceIsAlsoTheNextPoll) {
  const auto server = register_server_offering(http());
  const auto first = create_knock(http(), server.id);
  const auto listed =
      http().request("GET", "/servers/" + server.id + "/knocks", {}, auth(server.token));
  ASSERT_EQ(listed.status, 200);
  const auto rev = revision_of(listed.json());

  auto answering =
      request_in_background(port(), "PATCH", "/knocks/" + first.id + "?wait=2&since=" + rev,
                            json{{"answer", "v=0 answer"}}.dump(), json_headers(server.token));
  ASSERT_TRUE(wait_for_long_polls(http(), 1)) << "the PATCH parks as the next poll";
  const auto knocked_at = Clock::now();
  const auto second = create_knock(http(), server.id, "peernet.camera", "v=0 second offer");

  const auto answered = await(answering);
  report_latency("UpdateKnock next_poll wake-up after a knock",
                 since(knocked_at, answered.arrived));
  EXPECT_LT(since(knocked_at, answered.arrived), milliseconds{2500});
  ASSERT_EQ(answered.response.status, 200) << answered.response.body;
  const auto body = answered.response.json();
  EXPECT_EQ(body["knock"]["unique_id"], first.id);
  EXPECT_EQ(body["knock"]["state"], "KNOCK_STATE_ANSWERED");
  ASSERT_TRUE(body.contains("next_poll")) << body;
  ASSERT_EQ(body["next_poll"]["knocks"].size(), 1U)
      << "only what is new since " << rev << ": " << body;
  EXPECT_EQ(body["next_poll"]["knocks"][0]["unique_id"], second.id);
  EXPECT_EQ(body["next_poll"]["knocks"][0]["offer"], "v=0 second offer");
  EXPECT_GT(std::stoull(revision_of(body["next_poll"])), std::stoull(rev));

  // The first knocker sees the answer.
  const auto outcome = http().request("GET", "/knocks/" + first.id, {}, auth(first.token));
  ASSERT_EQ(outcome.status, 200);
  EXPECT_EQ(outcome.json()["answer"], "v=0 answer");
}

TEST_F(LongPollTest, KnockReadsSinceARevisionCarryOnlyNewCandidates) {
  const auto server = register_server_offering(http());
  const auto created = http().json("POST", "/servers/" + server.id + "/knocks",
                                   {{"protocol", "peernet.camera"},
                                    {"offer", "v=0 offer"},
                                    {"ice_candidates", json::array({candidate("k1")})}},
                                   json_headers());
  ASSERT_EQ(created.status, 201) << created.body;
  const Handle knock{created.json()["knock"]["unique_id"], created.json()["token"]};

  // The knocker's view: the server's candidates, each once.
  const auto full = http().request("GET", "/knocks/" + knock.id, {}, auth(knock.token));
  ASSERT_EQ(full.status, 200);
  EXPECT_EQ(full.json()["offer"], "v=0 offer");
  const auto r0 = revision_of(full.json());
  auto trickle = [&](const Handle& who, std::string_view line) {
    const auto r =
        http().json("PATCH", "/knocks/" + knock.id,
                    {{"ice_candidates", json::array({candidate(line)})}}, json_headers(who.token));
    ASSERT_EQ(r.status, 200) << r.body;
  };
  trickle(server, "s1");

  const Stopwatch clock;
  const auto first_news = read_knock(knock, knock.token, 2, r0);
  EXPECT_LT(clock.elapsed(), milliseconds{2500}) << "a change already there answers at once";
  ASSERT_EQ(first_news.status, 200) << first_news.body;
  EXPECT_EQ(candidate_lines(first_news.json(), "server_ice_candidates"), json::array({"s1"}));
  EXPECT_FALSE(first_news.json().contains("offer")) << "the offer did not change since " << r0;
  const auto r1 = revision_of(first_news.json());

  auto waiting = request_in_background(port(), "GET", "/knocks/" + knock.id + "?wait=5&since=" + r1,
                                       {}, auth(knock.token));
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  const auto trickled_at = Clock::now();
  trickle(server, "s2");
  const auto second_news = await(waiting);
  report_latency("GetKnock wake-up after a trickled candidate",
                 since(trickled_at, second_news.arrived));
  EXPECT_LT(since(trickled_at, second_news.arrived), milliseconds{2500});
  ASSERT_EQ(second_news.response.status, 200);
  EXPECT_EQ(candidate_lines(second_news.response.json(), "server_ice_candidates"),
            json::array({"s2"}));

  // The serving side's view: the knocker's candidates after its revision.
  const auto server_full = http().request("GET", "/knocks/" + knock.id, {}, auth(server.token));
  ASSERT_EQ(server_full.status, 200);
  EXPECT_EQ(candidate_lines(server_full.json(), "ice_candidates"), json::array({"k1"}));
  const auto q0 = revision_of(server_full.json());
  trickle(knock, "k2");
  const auto server_news = read_knock(knock, server.token, 2, q0);
  ASSERT_EQ(server_news.status, 200);
  EXPECT_EQ(candidate_lines(server_news.json(), "ice_candidates"), json::array({"k2"}));
  EXPECT_FALSE(server_news.json().contains("offer"));
  EXPECT_FALSE(server_news.json().contains("server_ice_candidates"))
      << "its own candidates are not echoed";
}

TEST_F(LongPollTest, DeletingAServerEndsItsPollWith404) {
  const auto server = register_server_offering(http());
  auto poll = poll_knocks(server, 5);
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  const auto deleted_at = Clock::now();
  ASSERT_EQ(http().request("DELETE", "/servers/" + server.id, {}, auth(server.token)).status, 200);
  const auto polled = await(poll);
  EXPECT_LT(since(deleted_at, polled.arrived), milliseconds{2500});
  EXPECT_TRUE(is_error(polled.response, 404, "not_found", server.id));
  EXPECT_TRUE(wait_for_long_polls(http(), 0));
}

TEST_F(LongPollTest, ConnectionCostsTheKnockerOneRequestAndTheServerOneBeyondItsPoll) {
  HttpClient server_side(port());
  HttpClient knocker(port());
  const auto server =
      register_server(server_side, {{"unique_id", unique_id("counted")},
                                    {"services", json::array({{{"protocol", "peernet.camera"}}})}});
  auto poll = std::async(std::launch::async, [&] {
    return server_side.request("GET", "/servers/" + server.id + "/knocks?wait=5", {},
                               auth(server.token));
  });
  ASSERT_TRUE(wait_for_long_polls(http(), 1));
  auto knocking = std::async(std::launch::async, [&] {
    auto response = knocker.json("POST", "/servers/" + server.id + "/knocks?wait=5",
                                 {{"protocol", "peernet.camera"}, {"offer", "v=0 offer"}});
    return TimedResponse{response, Clock::now()};
  });

  const auto polled = poll.get();
  ASSERT_EQ(polled.status, 200) << polled.body;
  ASSERT_EQ(polled.json()["knocks"].size(), 1U);
  const auto knock_id = polled.json()["knocks"][0]["unique_id"].get<std::string>();
  const auto standing = server_side.requests_sent();  // registration and the standing poll
  EXPECT_EQ(standing, 2U);

  // One PATCH answers and is the next poll (it waits 1 s for further knocks).
  const auto answer = server_side.json(
      "PATCH", "/knocks/" + knock_id + "?wait=1&since=" + revision_of(polled.json()),
      {{"answer", "v=0 answer"}}, json_headers(server.token));
  const auto patch_returned = Clock::now();
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.json()["knock"]["state"], "KNOCK_STATE_ANSWERED");
  EXPECT_TRUE(answer.json().contains("next_poll"));

  const auto knocked = knocking.get();
  ASSERT_EQ(knocked.response.status, 201) << knocked.response.body;
  EXPECT_EQ(knocked.response.json()["knock"]["answer"], "v=0 answer");
  EXPECT_LT(knocked.arrived, patch_returned) << "the knocker is not held by the server's next poll";

  EXPECT_EQ(knocker.requests_sent(), 1U) << "the knocker needs one request";
  EXPECT_EQ(server_side.requests_sent() - standing, 1U)
      << "the server needs one request beyond its poll";
}

// A daemon that lets nobody wait longer than a second.
class MaxWaitTest : public DaemonTest {
 public:
  static void SetUpTestSuite() { start_daemon({"--max-wait", "1"}); }
};

TEST_F(MaxWaitTest, LongerWaitsAreCutToTheLimit) {
  // Two servers, so that the knock on one does not end the other's poll.
  const auto polling = register_server_offering(http());
  const auto knocked_on = register_server_offering(http());
  const auto started = Clock::now();
  auto poll = request_in_background(port(), "GET", "/servers/" + polling.id + "/knocks?wait=5", {},
                                    auth(polling.token));
  auto knock =
      request_in_background(port(), "POST", "/servers/" + knocked_on.id + "/knocks?wait=5",
                            json{{"protocol", "peernet.camera"}, {"offer", "v=0 offer"}}.dump());

  const auto polled = await(poll);
  ASSERT_EQ(polled.response.status, 200) << polled.response.body;
  EXPECT_FALSE(polled.response.json().contains("knocks"));
  EXPECT_GE(since(started, polled.arrived), milliseconds{900});
  EXPECT_LT(since(started, polled.arrived), seconds{4})
      << "ListKnocks wait=5 is cut to --max-wait 1";

  const auto knocked = await(knock);
  ASSERT_EQ(knocked.response.status, 201) << knocked.response.body;
  EXPECT_EQ(knocked.response.json()["knock"]["state"], "KNOCK_STATE_PENDING")
      << "nobody answered in time";
  EXPECT_GE(since(started, knocked.arrived), milliseconds{900});
  EXPECT_LT(since(started, knocked.arrived), seconds{4})
      << "CreateKnock wait=5 is cut to --max-wait 1";
}

}  // namespace
}  // namespace peernet::testing
