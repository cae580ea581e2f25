// libpeernet's signaling client against the real peernetd on loopback: URLs, the serving and
// connecting sides' calls, how errors reach the caller, cancellation, kept-alive connections and
// TLS trust. Each test runs its own daemon and an io_context on the test thread.
#include "signaling/signaling_client.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "integration/daemon_process.h"

namespace peernet::lib {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using peernet::testing::DaemonProcess;
using peernet::testing::TempDir;

/// Longest a test waits for one handler; far beyond any call here, short of a hung test run.
constexpr milliseconds kHandlerTimeout{15'000};

std::string describe(const Error& error) {
  return std::string(to_string(error.code())) + ": " + error.what();
}

template <class T>
std::string describe(const Result<T>& result) {
  return result.ok() ? std::string("ok") : describe(result.error());
}

/// What a call handed its handler, and how many times it was called.
template <class T>
class Pending {
 public:
  SignalingClient::Handler<T> handler() {
    return [state = state_](Result<T> result) {
      ++state->calls;
      state->result.emplace(std::move(result));
    };
  }
  bool done() const { return state_->calls > 0; }
  int calls() const { return state_->calls; }
  Result<T>& result() { return *state_->result; }

 private:
  struct State {
    std::optional<Result<T>> result;
    int calls = 0;
  };
  // Shared with the handler, which may run after this object is gone (a test that failed).
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

/// GET `target` from 127.0.0.1:port on a connection of its own; empty when it fails.
std::string http_get(std::uint16_t port, const std::string& target) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(false);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  std::string body;
  stream.expires_after(seconds{5});
  stream.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
        if (ec) {
          return;
        }
        http::async_write(stream, request, [&](beast::error_code ec2, auto) {
          if (ec2) {
            return;
          }
          http::async_read(stream, buffer, response, [&](beast::error_code ec3, auto) {
            if (!ec3) {
              body = response.body();
            }
          });
        });
      });
  io.run_for(seconds{6});
  return body;
}

/// A value from the daemon's /metrics, such as "peernetd_long_polls"; nullopt when absent.
std::optional<std::uint64_t> metric(std::uint16_t port, std::string_view name) {
  const auto text = http_get(port, "/metrics");
  const auto line = "\n" + std::string(name) + " ";
  const auto at = text.find(line);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  return std::stoull(text.substr(at + line.size()));
}

/// A loopback port nobody listens on: bound, read back, closed.
std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

DaemonAddress loopback(std::uint16_t port, bool tls = false) {
  return DaemonAddress{"127.0.0.1", std::to_string(port), tls};
}

CreateServerRequest server_offering(const std::string& id, const std::string& protocol) {
  CreateServerRequest request;
  auto* server = request.mutable_server();
  server->set_unique_id(id);
  server->set_display_name(id + " (test)");
  auto* service = server->add_services();
  service->set_protocol(protocol);
  service->set_version("1");
  return request;
}

ListServersRequest default_room(const std::string& protocol) {
  ListServersRequest request;
  request.set_room("default");
  request.set_protocol(protocol);
  return request;
}

// ---- DaemonAddress --------------------------------------------------------------------------

TEST(DaemonAddressTest, ParsesHttpAndHttpsWithTheDefaultPort) {
  auto plain = DaemonAddress::parse("http://localhost");
  ASSERT_TRUE(plain.ok()) << describe(plain);
  EXPECT_EQ(plain->host, "localhost");
  EXPECT_EQ(plain->port, "8470");
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->url(), "http://localhost:8470");

  auto secure = DaemonAddress::parse("HTTPS://box.local:9443/");
  ASSERT_TRUE(secure.ok()) << describe(secure);
  EXPECT_EQ(secure->host, "box.local");
  EXPECT_EQ(secure->port, "9443");
  EXPECT_TRUE(secure->tls);
  EXPECT_EQ(secure->url(), "https://box.local:9443");

  auto address = DaemonAddress::parse("http://192.168.1.20:8471");
  ASSERT_TRUE(address.ok()) << describe(address);
  EXPECT_EQ(address->url(), "http://192.168.1.20:8471");
}

TEST(DaemonAddressTest, TakesIpv6InBracketsAndPrintsItBack) {
  auto with_port = DaemonAddress::parse("http://[::1]:8471");
  ASSERT_TRUE(with_port.ok()) << describe(with_port);
  EXPECT_EQ(with_port->host, "::1");
  EXPECT_EQ(with_port->port, "8471");
  EXPECT_EQ(with_port->url(), "http://[::1]:8471");

  auto without = DaemonAddress::parse("https://[fe80::1]/");
  ASSERT_TRUE(without.ok()) << describe(without);
  EXPECT_EQ(without->url(), "https://[fe80::1]:8470");
}

TEST(DaemonAddressTest, RefusesWhatIsNotAPeernetdUrlAndSaysWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"127.0.0.1:8470", "no scheme"},
      {"localhost", "no scheme"},
      {"ftp://box", "neither http nor https"},
      {"http://", "host is empty"},
      {"http://:8470", "host is empty"},
      {"http://box/peernet", "path"},
      {"http://box:8470/rooms/home", "path"},
      {"http://box?room=home", "query"},
      {"http://box#top", "fragment"},
      {"http://user:secret@box", "user information"},
      {"http://box:", "port"},
      {"http://box:0", "port '0'"},
      {"http://box:65536", "port '65536'"},
      {"http://box:http", "port 'http'"},
      {"http://::1", "brackets"},
      {"http://[::1", "closing ']'"},
      {"http://[box]:8470", "not an IPv6 address"},
      {"http://[::1]8470", "':port'"},
      {"http://my box", "characters"},
  };
  for (const auto& [url, problem] : cases) {
    auto parsed = DaemonAddress::parse(url);
    ASSERT_FALSE(parsed.ok()) << url << " was accepted as " << parsed->url();
    EXPECT_EQ(parsed.error().code(), Errc::kInvalid) << url;
    EXPECT_NE(std::string(parsed.error().what()).find(problem), std::string::npos)
        << url << ": " << parsed.error().what();
  }
  // A URL with a password is not repeated in the message.
  auto with_password = DaemonAddress::parse("http://user:secret@box");
  ASSERT_FALSE(with_password.ok());
  EXPECT_EQ(std::string(with_password.error().what()).find("secret"), std::string::npos);
}

// ---- Against a plain-HTTP peernetd ----------------------------------------------------------

/// An io_context run on the test thread, and ways to run it until a handler has been called.
class IoTest : public ::testing::Test {
 protected:
  /// Runs the io_context until `done()` or `timeout`; whether `done()` became true.
  bool run_until(const std::function<bool()>& done, milliseconds timeout = kHandlerTimeout) {
    // `done` is asked once per turn and its answer kept: a check that makes a request of its
    // own (a /metrics read) may well answer differently when asked again.
    const auto give_up = Clock::now() + timeout;
    while (true) {
      if (done()) {
        return true;
      }
      if (Clock::now() >= give_up) {
        return false;
      }
      if (io_.stopped()) {
        io_.restart();
      }
      io_.run_one_for(milliseconds{20});
    }
  }

  template <class T>
  bool run_until(const Pending<T>& pending, milliseconds timeout = kHandlerTimeout) {
    return run_until([&] { return pending.done(); }, timeout);
  }

  /// Runs the io_context for `duration`, whatever completes.
  void run_for(milliseconds duration) {
    run_until([] { return false; }, duration);
  }

  /// Starts a call with `start(handler)` and runs until its handler has been called.
  template <class T, class Start>
  Result<T> call(Start&& start) {
    Pending<T> pending;
    start(pending.handler());
    if (!run_until(pending)) {
      return Error{Errc::kClosed, "the test gave up waiting for the handler"};
    }
    return std::move(pending.result());
  }

  asio::io_context io_;
};

class SignalingClientTest : public IoTest {
 protected:
  explicit SignalingClientTest(const std::vector<std::string>& flags = {}) : daemon_(flags) {}

  std::uint16_t port() const { return daemon_.port(); }
  DaemonAddress address() const { return loopback(port()); }

  Result<CreateServerResponse> register_server(SignalingClient& client, const std::string& id,
                                               const std::string& protocol = "peernet.camera") {
    return call<CreateServerResponse>(
        [&](auto handler) { client.create_server(server_offering(id, protocol), {}, handler); });
  }

  /// Runs the io_context until the daemon holds `count` long-polls (each check is a request of
  /// its own, on its own connection).
  bool wait_for_long_polls(std::uint64_t count) {
    return run_until([&] { return metric(port(), "peernetd_long_polls") == count; },
                     milliseconds{5000});
  }

  /// Starts a 30 s ListKnocks long-poll of `registered`'s server, whose outcome lands in the
  /// result; the caller waits for the daemon to hold it.
  static Pending<ListKnocksResponse> start_poll(SignalingClient& client,
                                                const CreateServerResponse& registered) {
    ListKnocksRequest request;
    request.set_server(registered.server().unique_id());
    request.set_wait_seconds(30);
    Pending<ListKnocksResponse> poll;
    client.list_knocks(request, registered.token(), poll.handler());
    return poll;
  }

  DaemonProcess daemon_;
};

TEST_F(SignalingClientTest, RegistersServersAndListsTheDefaultRoomByProtocol) {
  SignalingClient client(io_.get_executor(), address());
  auto camera = register_server(client, "garage-camera", "peernet.camera");
  ASSERT_TRUE(camera.ok()) << describe(camera);
  EXPECT_FALSE(camera->token().empty());
  EXPECT_EQ(camera->server().unique_id(), "garage-camera");
  EXPECT_GT(camera->server().ttl_seconds(), 0U);
  auto sensor = register_server(client, "porch", "peernet.sensor");
  ASSERT_TRUE(sensor.ok()) << describe(sensor);
  EXPECT_NE(sensor->token(), camera->token());

  auto cameras = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_TRUE(cameras.ok()) << describe(cameras);
  ASSERT_EQ(cameras->servers_size(), 1) << cameras->DebugString();
  EXPECT_EQ(cameras->servers(0).unique_id(), "garage-camera");
  EXPECT_EQ(cameras->servers(0).display_name(), "garage-camera (test)");
  ASSERT_EQ(cameras->servers(0).services_size(), 1);
  EXPECT_EQ(cameras->servers(0).services(0).protocol(), "peernet.camera");

  auto nothing = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.file"), handler); });
  ASSERT_TRUE(nothing.ok()) << describe(nothing);
  EXPECT_EQ(nothing->servers_size(), 0);
}

TEST_F(SignalingClientTest, AServerAddsAServiceAndDeletesItself) {
  SignalingClient client(io_.get_executor(), address());
  auto registered = register_server(client, "garage-camera");
  ASSERT_TRUE(registered.ok()) << describe(registered);
  const auto token = registered->token();

  UpdateServiceRequest service;
  service.set_server("garage-camera");
  service.mutable_service()->set_protocol("peernet.sensor");
  service.mutable_service()->set_version("1");
  auto updated = call<UpdateServiceResponse>(
      [&](auto handler) { client.update_service(service, token, handler); });
  ASSERT_TRUE(updated.ok()) << describe(updated);
  EXPECT_EQ(updated->service().protocol(), "peernet.sensor");
  auto sensors = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.sensor"), handler); });
  ASSERT_TRUE(sensors.ok()) << describe(sensors);
  ASSERT_EQ(sensors->servers_size(), 1);
  EXPECT_EQ(sensors->servers(0).services_size(), 2);

  DeleteServerRequest deletion;
  deletion.set_server("garage-camera");
  auto deleted = call<DeleteServerResponse>(
      [&](auto handler) { client.delete_server(deletion, token, handler); });
  ASSERT_TRUE(deleted.ok()) << describe(deleted);
  auto cameras = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_TRUE(cameras.ok()) << describe(cameras);
  EXPECT_EQ(cameras->servers_size(), 0);
  auto again = call<DeleteServerResponse>(
      [&](auto handler) { client.delete_server(deletion, token, handler); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), Errc::kNotFound) << describe(again);
}

TEST_F(SignalingClientTest, KnockRoundTripWithTheAnswerAsTheNextPoll) {
  SignalingClient serving(io_.get_executor(), address());
  SignalingClient knocking(io_.get_executor(), address());
  auto registered = register_server(serving, "garage-camera");
  ASSERT_TRUE(registered.ok()) << describe(registered);
  const auto token = registered->token();

  // The serving side's long-poll is waiting before anyone knocks.
  ListKnocksRequest poll_request;
  poll_request.set_server("garage-camera");
  poll_request.set_wait_seconds(5);
  Pending<ListKnocksResponse> poll;
  serving.list_knocks(poll_request, token, poll.handler());
  ASSERT_TRUE(wait_for_long_polls(1));
  EXPECT_FALSE(poll.done());

  CreateKnockRequest knock_request;
  knock_request.set_server("garage-camera");
  knock_request.mutable_knock()->set_protocol("peernet.camera");
  knock_request.mutable_knock()->set_offer("v=0 (the viewer's offer)");
  knock_request.set_wait_seconds(5);
  Pending<CreateKnockResponse> knocked;
  knocking.create_knock(knock_request, knocked.handler());

  ASSERT_TRUE(run_until(poll));
  auto& polled = poll.result();
  ASSERT_TRUE(polled.ok()) << describe(polled);
  ASSERT_EQ(polled->knocks_size(), 1) << polled->DebugString();
  const auto& knock = polled->knocks(0);
  EXPECT_EQ(knock.offer(), "v=0 (the viewer's offer)");
  EXPECT_EQ(knock.protocol(), "peernet.camera");
  EXPECT_EQ(knock.state(), KNOCK_STATE_PENDING);
  EXPECT_FALSE(knocked.done()) << "the knocker should still be waiting for the answer";

  UpdateKnockRequest answer;
  answer.set_knock(knock.unique_id());
  answer.set_answer("v=0 (the camera's answer)");
  answer.mutable_next_poll()->set_server("garage-camera");
  answer.mutable_next_poll()->set_wait_seconds(2);
  answer.mutable_next_poll()->set_since(polled->revision());
  Pending<UpdateKnockResponse> answered;
  serving.update_knock(answer, token, answered.handler());

  ASSERT_TRUE(run_until(knocked));
  auto& outcome = knocked.result();
  ASSERT_TRUE(outcome.ok()) << describe(outcome);
  EXPECT_EQ(outcome->knock().state(), KNOCK_STATE_ANSWERED);
  EXPECT_EQ(outcome->knock().answer(), "v=0 (the camera's answer)");
  EXPECT_EQ(outcome->knock().unique_id(), knock.unique_id());
  EXPECT_FALSE(outcome->token().empty());
  // The answering request goes on as the serving side's next poll.
  EXPECT_FALSE(answered.done());

  ASSERT_TRUE(run_until(answered));
  auto& update = answered.result();
  ASSERT_TRUE(update.ok()) << describe(update);
  EXPECT_EQ(update->knock().state(), KNOCK_STATE_ANSWERED);
  ASSERT_TRUE(update->has_next_poll());
  EXPECT_EQ(update->next_poll().knocks_size(), 0) << update->DebugString();
  EXPECT_GE(update->next_poll().revision(), polled->revision());

  // Registration, poll, answer-and-poll; and one request for the knocker, as the README says.
  EXPECT_EQ(serving.requests_sent(), 3U);
  EXPECT_EQ(knocking.requests_sent(), 1U);
  EXPECT_EQ(poll.calls() + knocked.calls() + answered.calls(), 3);

  // The knocker reads its knock again with its own token, then withdraws it.
  GetKnockRequest read;
  read.set_knock(knock.unique_id());
  auto reread =
      call<Knock>([&](auto handler) { knocking.get_knock(read, outcome->token(), handler); });
  ASSERT_TRUE(reread.ok()) << describe(reread);
  EXPECT_EQ(reread->state(), KNOCK_STATE_ANSWERED);
  EXPECT_EQ(reread->answer(), "v=0 (the camera's answer)");
  DeleteKnockRequest withdraw;
  withdraw.set_knock(knock.unique_id());
  auto withdrawn = call<DeleteKnockResponse>(
      [&](auto handler) { knocking.delete_knock(withdraw, outcome->token(), handler); });
  ASSERT_TRUE(withdrawn.ok()) << describe(withdrawn);
  auto gone =
      call<Knock>([&](auto handler) { knocking.get_knock(read, outcome->token(), handler); });
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), Errc::kNotFound) << describe(gone);
}

TEST_F(SignalingClientTest, AnUnknownServerIsNotFound) {
  SignalingClient client(io_.get_executor(), address());
  ListKnocksRequest request;
  request.set_server("never-registered");
  auto polled = call<ListKnocksResponse>(
      [&](auto handler) { client.list_knocks(request, "some-token", handler); });
  ASSERT_FALSE(polled.ok());
  EXPECT_EQ(polled.error().code(), Errc::kNotFound) << describe(polled);
  const std::string message = polled.error().what();
  EXPECT_NE(message.find("peernetd: 404 not_found: server 'never-registered' not found"),
            std::string::npos)
      << message;
}

TEST_F(SignalingClientTest, AWrongTokenIsADaemonErrorWithTheDaemonsMessage) {
  SignalingClient client(io_.get_executor(), address());
  auto registered = register_server(client, "garage-camera");
  ASSERT_TRUE(registered.ok()) << describe(registered);

  ListKnocksRequest request;
  request.set_server("garage-camera");
  auto polled = call<ListKnocksResponse>(
      [&](auto handler) { client.list_knocks(request, "not-the-token", handler); });
  ASSERT_FALSE(polled.ok());
  EXPECT_EQ(polled.error().code(), Errc::kDaemon) << describe(polled);
  const std::string message = polled.error().what();
  EXPECT_NE(message.find("peernetd: 401 unauthenticated: the token is not server 'garage-camera'"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("not-the-token"), std::string::npos) << message;

  auto missing =
      call<ListKnocksResponse>([&](auto handler) { client.list_knocks(request, {}, handler); });
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Errc::kDaemon);
  EXPECT_NE(std::string(missing.error().what()).find("missing token"), std::string::npos)
      << describe(missing);
}

TEST_F(SignalingClientTest, AClosedPortIsUnreachableAtOnce) {
  const auto port = closed_port();
  SignalingClient client(io_.get_executor(), loopback(port));
  const auto started = Clock::now();
  auto listed = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  const auto took = Clock::now() - started;
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), Errc::kUnreachable) << describe(listed);
  EXPECT_EQ(std::string(listed.error().what()),
            "peernetd at http://127.0.0.1:" + std::to_string(port) +
                " is unreachable: Connection refused");
  EXPECT_LT(took, seconds{2});
}

TEST_F(SignalingClientTest, APeerThatNeverAnswersIsUnreachableAfterTheTimeout) {
  // Accepts the connection and then says nothing.
  tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket silent(io_);
  acceptor.async_accept(silent, [](beast::error_code) {});

  SignalingClient client(io_.get_executor(), loopback(acceptor.local_endpoint().port()));
  client.set_timeout(milliseconds{300});
  const auto started = Clock::now();
  auto listed = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  const auto took = Clock::now() - started;
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), Errc::kUnreachable) << describe(listed);
  EXPECT_NE(std::string(listed.error().what()).find("no reply within 0.3 s"), std::string::npos)
      << describe(listed);
  EXPECT_GE(took, milliseconds{250});
  EXPECT_LT(took, seconds{3});
}

TEST_F(SignalingClientTest, CancelEndsAPendingLongPollWithClosedAndTheClientGoesOn) {
  SignalingClient client(io_.get_executor(), address());
  auto registered = register_server(client, "garage-camera");
  ASSERT_TRUE(registered.ok()) << describe(registered);
  auto poll = start_poll(client, registered.value());
  ASSERT_TRUE(wait_for_long_polls(1));

  const auto cancelled_at = Clock::now();
  client.cancel();
  ASSERT_TRUE(run_until(poll, seconds{2}));
  EXPECT_LT(Clock::now() - cancelled_at, seconds{1});
  ASSERT_FALSE(poll.result().ok());
  EXPECT_EQ(poll.result().error().code(), Errc::kClosed) << describe(poll.result());
  // The daemon sees the poll go away.
  EXPECT_TRUE(wait_for_long_polls(0));
  EXPECT_EQ(poll.calls(), 1);

  auto listed = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_TRUE(listed.ok()) << describe(listed);
  EXPECT_EQ(listed->servers_size(), 1);
}

TEST_F(SignalingClientTest, DestroyingTheClientEndsItsCallsWithClosed) {
  auto client = std::make_unique<SignalingClient>(io_.get_executor(), address());
  auto registered = register_server(*client, "garage-camera");
  ASSERT_TRUE(registered.ok()) << describe(registered);
  auto poll = start_poll(*client, registered.value());
  ASSERT_TRUE(wait_for_long_polls(1));

  client.reset();
  ASSERT_TRUE(run_until(poll, seconds{2}));
  ASSERT_FALSE(poll.result().ok());
  EXPECT_EQ(poll.result().error().code(), Errc::kClosed);
  run_for(milliseconds{100});
  EXPECT_EQ(poll.calls(), 1);
  EXPECT_TRUE(wait_for_long_polls(0));
}

TEST_F(SignalingClientTest, ABadTokenFailsLaterNotInsideTheCallAndSendsNothing) {
  SignalingClient client(io_.get_executor(), address());
  DeleteServerRequest request;
  request.set_server("garage-camera");
  Pending<DeleteServerResponse> deleted;
  client.delete_server(request, "token\r\nX-Injected: 1", deleted.handler());
  EXPECT_FALSE(deleted.done()) << "the handler ran inside the call that started it";
  ASSERT_TRUE(run_until(deleted));
  ASSERT_FALSE(deleted.result().ok());
  EXPECT_EQ(deleted.result().error().code(), Errc::kInvalid) << describe(deleted.result());
  EXPECT_EQ(client.requests_sent(), 0U);
}

TEST_F(SignalingClientTest, SequentialCallsShareOneConnection) {
  SignalingClient client(io_.get_executor(), address());
  for (int i = 0; i < 5; ++i) {
    auto listed = call<ListServersResponse>(
        [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
    ASSERT_TRUE(listed.ok()) << describe(listed);
  }
  EXPECT_EQ(client.requests_sent(), 5U);
  // The client's one connection, and the one this question comes on.
  EXPECT_EQ(metric(port(), "peernetd_connections_accepted_total"), 2U);
}

TEST_F(SignalingClientTest, KeepsAtMostFourIdleConnections) {
  SignalingClient client(io_.get_executor(), address());
  std::vector<Pending<ListServersResponse>> calls(6);
  for (auto& pending : calls) {
    client.list_servers(default_room("peernet.camera"), pending.handler());
  }
  ASSERT_TRUE(run_until([&] {
    return std::all_of(calls.begin(), calls.end(), [](const auto& p) { return p.done(); });
  }));
  for (auto& pending : calls) {
    ASSERT_TRUE(pending.result().ok()) << describe(pending.result());
  }
  // Six connections were opened at once; the client keeps four, plus this question's own.
  EXPECT_EQ(metric(port(), "peernetd_connections_accepted_total"), 7U);
  EXPECT_TRUE(
      run_until([&] { return metric(port(), "peernetd_connections") == 5U; }, milliseconds{5000}));
}

TEST_F(SignalingClientTest, ConcurrentCallsEachGetTheirOwnConnection) {
  SignalingClient client(io_.get_executor(), address());
  auto registered = register_server(client, "garage-camera");
  ASSERT_TRUE(registered.ok()) << describe(registered);
  auto poll = start_poll(client, registered.value());
  ASSERT_TRUE(wait_for_long_polls(1));

  // Not queued behind the long-poll.
  const auto started = Clock::now();
  auto listed = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_TRUE(listed.ok()) << describe(listed);
  EXPECT_LT(Clock::now() - started, seconds{5});
  EXPECT_FALSE(poll.done());
  client.cancel();
  ASSERT_TRUE(run_until(poll, seconds{2}));
}

// ---- A daemon that closes idle connections after a second -----------------------------------

class SignalingClientIdleTest : public SignalingClientTest {
 protected:
  SignalingClientIdleTest() : SignalingClientTest({"--idle-timeout", "1"}) {}
};

TEST_F(SignalingClientIdleTest, AConnectionTheDaemonClosedWhileIdleIsRetriedUnseen) {
  SignalingClient client(io_.get_executor(), address());
  auto first = register_server(client, "garage-camera");
  ASSERT_TRUE(first.ok()) << describe(first);
  // Until the daemon has dropped the client's connection; the one left is this question's own.
  ASSERT_TRUE(
      run_until([&] { return metric(port(), "peernetd_connections") == 1U; }, milliseconds{5000}));

  auto listed = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_TRUE(listed.ok()) << describe(listed);
  EXPECT_EQ(listed->servers_size(), 1);
  // The request went out twice: on the dead connection, then on a new one.
  EXPECT_EQ(client.requests_sent(), 3U);
}

// ---- A daemon that speaks HTTPS only, with its generated certificate -------------------------

class SignalingClientTlsTest : public IoTest {
 protected:
  explicit SignalingClientTlsTest(const std::string& mode = "required",
                                  const std::vector<std::string>& flags = {})
      : daemon_(daemon_flags(mode, flags)) {}

  std::vector<std::string> daemon_flags(const std::string& mode,
                                        const std::vector<std::string>& flags) const {
    std::vector<std::string> all{"--tls-mode",           mode,          "--state-directory",
                                 state_.path().string(), "--log-level", "info"};
    all.insert(all.end(), flags.begin(), flags.end());
    return all;
  }

  std::string certificate() const { return (state_.path() / "tls" / "peernetd.crt").string(); }

  /// The fingerprint peernetd logged ("AB:CD:..."), empty when it logged none.
  std::string logged_fingerprint() const {
    const std::string marker = "SHA-256 fingerprint ";
    const auto log = daemon_.log();
    const auto at = log.find(marker);
    if (at == std::string::npos) {
      return {};
    }
    const auto start = at + marker.size();
    const auto end = log.find_first_not_of("0123456789ABCDEFabcdef:", start);
    return log.substr(start, end - start);
  }

  /// One ListServers call on a new client with `trust`, run to its end.
  Result<ListServersResponse> list_with(const TlsTrust& trust) {
    client_ = std::make_unique<SignalingClient>(io_.get_executor(), loopback(daemon_.port(), true),
                                                trust);
    return call<ListServersResponse>(
        [&](auto handler) { client_->list_servers(default_room("peernet.camera"), handler); });
  }

  TempDir state_;
  DaemonProcess daemon_;
  std::unique_ptr<SignalingClient> client_;
};

TEST_F(SignalingClientTlsTest, TrustsTheDaemonsOwnCertificateAsACaFile) {
  auto listed = list_with(TlsTrust{certificate(), {}});
  ASSERT_TRUE(listed.ok()) << describe(listed);
  EXPECT_EQ(listed->servers_size(), 0);

  // By name too: the certificate names localhost, and the name is what gets checked.
  SignalingClient by_name(io_.get_executor(),
                          DaemonAddress{"localhost", std::to_string(daemon_.port()), true},
                          TlsTrust{certificate(), {}});
  auto named = call<ListServersResponse>(
      [&](auto handler) { by_name.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_TRUE(named.ok()) << describe(named);
}

TEST_F(SignalingClientTlsTest, ATrustedCertificateForAnotherNameIsRefused) {
  // "127.1" reaches 127.0.0.1 (the resolver reads the short form) but is not a name the
  // certificate carries: signed by a trusted issuer is not enough.
  SignalingClient other_name(io_.get_executor(),
                             DaemonAddress{"127.1", std::to_string(daemon_.port()), true},
                             TlsTrust{certificate(), {}});
  auto listed = call<ListServersResponse>(
      [&](auto handler) { other_name.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), Errc::kUnreachable) << describe(listed);
  EXPECT_NE(std::string(listed.error().what()).find("hostname mismatch"), std::string::npos)
      << describe(listed);
  EXPECT_EQ(other_name.requests_sent(), 0U);
}

TEST_F(SignalingClientTlsTest, AcceptsThePinnedFingerprintAsLoggedOrInLowerCase) {
  const auto fingerprint = logged_fingerprint();
  ASSERT_EQ(fingerprint.size(), 95U) << daemon_.log();

  auto as_logged = list_with(TlsTrust{{}, fingerprint});
  ASSERT_TRUE(as_logged.ok()) << describe(as_logged);

  std::string bare;
  for (const char c : fingerprint) {
    if (c != ':') {
      bare += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  auto lower = list_with(TlsTrust{{}, bare});
  ASSERT_TRUE(lower.ok()) << describe(lower);
}

TEST_F(SignalingClientTlsTest, AWrongPinIsATlsFailureAndNothingIsSent) {
  const std::string wrong(64, 'a');
  auto listed = list_with(TlsTrust{{}, wrong});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), Errc::kUnreachable) << describe(listed);
  const std::string message = listed.error().what();
  EXPECT_NE(message.find("TLS"), std::string::npos) << message;
  EXPECT_NE(message.find("not the pinned"), std::string::npos) << message;
  // The real fingerprint is named, so the user can tell a changed certificate from a typo.
  EXPECT_NE(message.find(logged_fingerprint()), std::string::npos) << message;
  EXPECT_EQ(client_->requests_sent(), 0U);
}

TEST_F(SignalingClientTlsTest, WithoutTrustASelfSignedCertificateIsRefused) {
  auto listed = list_with(TlsTrust{});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), Errc::kUnreachable) << describe(listed);
  const std::string message = listed.error().what();
  EXPECT_NE(message.find("TLS handshake failed"), std::string::npos) << message;
  EXPECT_NE(message.find("self-signed"), std::string::npos) << message;
  EXPECT_EQ(client_->requests_sent(), 0U);
}

TEST_F(SignalingClientTlsTest, AnUnreadableCaFileOrAMalformedPinIsTheCallersMistake) {
  auto no_file = list_with(TlsTrust{(state_.path() / "missing.crt").string(), {}});
  ASSERT_FALSE(no_file.ok());
  EXPECT_EQ(no_file.error().code(), Errc::kInvalid) << describe(no_file);
  EXPECT_NE(std::string(no_file.error().what()).find("ca_file"), std::string::npos);

  auto short_pin = list_with(TlsTrust{{}, "AB:CD"});
  ASSERT_FALSE(short_pin.ok());
  EXPECT_EQ(short_pin.error().code(), Errc::kInvalid) << describe(short_pin);
  EXPECT_NE(std::string(short_pin.error().what()).find("pin_sha256"), std::string::npos);
}

TEST_F(SignalingClientTlsTest, PlainHttpToAnHttpsOnlyDaemonSaysToUseHttps) {
  SignalingClient client(io_.get_executor(), loopback(daemon_.port(), false));
  auto listed = call<ListServersResponse>(
      [&](auto handler) { client.list_servers(default_room("peernet.camera"), handler); });
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().code(), Errc::kDaemon) << describe(listed);
  EXPECT_NE(std::string(listed.error().what()).find("https://"), std::string::npos)
      << describe(listed);
}

// HTTPS and plain HTTP on one port (plain for /metrics), idle connections closed after a second.
class SignalingClientTlsIdleTest : public SignalingClientTlsTest {
 protected:
  SignalingClientTlsIdleTest() : SignalingClientTlsTest("optional", {"--idle-timeout", "1"}) {}
};

TEST_F(SignalingClientTlsIdleTest, ATlsConnectionTheDaemonClosedWhileIdleIsRetriedUnseen) {
  auto first = list_with(TlsTrust{certificate(), {}});
  ASSERT_TRUE(first.ok()) << describe(first);
  ASSERT_TRUE(run_until([&] { return metric(daemon_.port(), "peernetd_connections") == 1U; },
                        milliseconds{5000}));

  auto second = call<ListServersResponse>(
      [&](auto handler) { client_->list_servers(default_room("peernet.camera"), handler); });
  ASSERT_TRUE(second.ok()) << describe(second);
  EXPECT_EQ(client_->requests_sent(), 3U);
}

}  // namespace
}  // namespace peernet::lib
