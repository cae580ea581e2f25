// libpeernet's public API end to end: a real peernetd on loopback, a serving Client and a
// knocking Client in this process, real WebRTC connections between them on 127.0.0.1.
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/daemon_process.h"
#include "peernet/peernet.h"

namespace peernet {
namespace {

using std::chrono::seconds;
using testing::DaemonProcess;

/// A value that a callback on the client's thread hands to the test's thread.
template <class T>
class Mailbox {
 public:
  void put(T value) {
    const std::lock_guard lock(mutex_);
    values_.push_back(std::move(value));
    ready_.notify_all();
  }
  /// The next value, or nullopt after `timeout`.
  std::optional<T> take(std::chrono::milliseconds timeout = seconds{10}) {
    std::unique_lock lock(mutex_);
    if (!ready_.wait_for(lock, timeout, [this] { return !values_.empty(); })) {
      return std::nullopt;
    }
    T value = std::move(values_.front());
    values_.erase(values_.begin());
    return value;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<T> values_;
};

std::string text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

Server file_server(const std::string& id) {
  Server server;
  server.set_unique_id(id);
  server.set_display_name("footage box");
  auto* service = server.add_services();
  service->set_protocol("peernet.file");
  service->set_version("1");
  return server;
}

class ClientTest : public ::testing::Test {
 protected:
  ClientOptions options() const {
    ClientOptions options;
    options.daemon = "http://127.0.0.1:" + std::to_string(daemon_.port());
    options.loopback_only = true;
    options.poll_wait = seconds{5};
    options.connect_timeout = seconds{15};
    return options;
  }

  /// Serves `id` with a "peernet.file" service whose channels echo every message back.
  void serve_echo(Client& client, const std::string& id, ServeHandlers extra = {}) {
    ServeHandlers handlers = std::move(extra);
    handlers.connection = [this](std::shared_ptr<Connection> connection) {
      connection->on_channel([this](std::shared_ptr<Channel> channel) {
        std::weak_ptr<Channel> weak = channel;
        channel->on_message([weak](std::span<const std::byte> message, bool text) {
          if (auto self = weak.lock()) {
            text ? self->send_text(text_of(message)) : self->send(message);
          }
        });
        kept_channels_.push_back(std::move(channel));
      });
      served_.put(std::move(connection));
    };
    client.serve(file_server(id), std::move(handlers));
  }

  DaemonProcess daemon_;
  Mailbox<std::shared_ptr<Connection>> served_;
  std::vector<std::shared_ptr<Channel>> kept_channels_;  // on the serving client's thread
};

TEST_F(ClientTest, FindsAServiceKnocksAndTalksOverADataChannel) {
  Client serving(options());
  serve_echo(serving, "footage");
  Client knocking(options());

  const auto servers = knocking.find("peernet.file");
  ASSERT_EQ(servers.size(), 1U);
  EXPECT_EQ(servers[0].unique_id(), "footage");
  EXPECT_EQ(servers[0].display_name(), "footage box");

  const auto before = knocking.requests_sent();
  auto connection = knocking.connect(servers[0], "peernet.file", {"files"});
  ASSERT_TRUE(connection);
  EXPECT_TRUE(connection->is_open());
  EXPECT_EQ(knocking.requests_sent() - before, 1U)
      << "with gathering done before the knock, the knock is the only request";
  EXPECT_EQ(connection->knock().protocol(), "peernet.file");

  auto served = served_.take();
  ASSERT_TRUE(served.has_value()) << "the serving side never got the connection";
  EXPECT_EQ((*served)->knock().protocol(), "peernet.file");
  EXPECT_EQ((*served)->knock().version(), "1");

  auto channels = connection->channels();
  ASSERT_EQ(channels.size(), 1U);
  EXPECT_EQ(channels[0]->label(), "files");
  Mailbox<std::string> echoes;
  channels[0]->on_message(
      [&echoes](std::span<const std::byte> message, bool) { echoes.put(text_of(message)); });
  ASSERT_TRUE(channels[0]->send_text("ls /footage"));
  EXPECT_EQ(echoes.take(), "ls /footage");
}

/// How many entries /proc/self/`what` has: "fd" for open descriptors, "task" for threads.
std::ptrdiff_t count_of(const char* what) {
  const std::filesystem::path folder = std::filesystem::path("/proc/self") / what;
  return std::distance(std::filesystem::directory_iterator(folder),
                       std::filesystem::directory_iterator{});
}

TEST_F(ClientTest, FiftyConnectionsInARowLeaveNothingBehind) {
  Client serving(options());
  serve_echo(serving, "churn");
  Client knocking(options());
  const auto server = knocking.find("peernet.file").at(0);
  const auto cycle = [&] {
    auto connection = knocking.connect(server, "peernet.file", {"files"});
    Mailbox<std::string> echoes;
    const auto channel = connection->channels().at(0);
    channel->on_message(
        [&echoes](std::span<const std::byte> message, bool) { echoes.put(text_of(message)); });
    ASSERT_TRUE(channel->send_text("ping"));
    ASSERT_EQ(echoes.take(), "ping");
    auto served = served_.take();
    ASSERT_TRUE(served.has_value());
    Mailbox<bool> closed;
    (*served)->on_closed([&closed](const Error&) { closed.put(true); });
    connection->close();
    EXPECT_FALSE(connection->is_open());
    EXPECT_TRUE(closed.take()) << "the serving side never saw the connection close";
    EXPECT_FALSE((*served)->is_open());
  };
  // Warm up first: GStreamer loads its plugins and starts its thread pools once per process.
  cycle();
  cycle();
  const auto fds = count_of("fd");
  const auto threads = count_of("task");
  for (int i = 0; i < 50 && !HasFailure(); ++i) {
    cycle();
  }
  // Pipelines wind down on their own threads; give them a moment to be gone.
  const auto deadline = std::chrono::steady_clock::now() + seconds{5};
  while ((count_of("fd") > fds || count_of("task") > threads) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  EXPECT_LE(count_of("fd"), fds) << "descriptors left open by 50 closed connections";
  EXPECT_LE(count_of("task"), threads) << "threads left running by 50 closed connections";
}

TEST_F(ClientTest, ARefusedKnockSaysWhy) {
  Client serving(options());
  ServeHandlers handlers;
  handlers.screen = [](const Knock&) { return Verdict::refused("private footage"); };
  serve_echo(serving, "private", std::move(handlers));
  Client knocking(options());
  const auto servers = knocking.find("peernet.file");
  ASSERT_EQ(servers.size(), 1U);
  try {
    knocking.connect(servers[0], "peernet.file");
    FAIL() << "a refused knock connected";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::kRefused);
    EXPECT_NE(std::string(error.what()).find("private footage"), std::string::npos) << error.what();
  }
}

TEST_F(ClientTest, MistakesAPersonCanActOnAreNamed) {
  auto in_room = options();
  in_room.room = "no-such-room";
  Client lost(in_room);
  try {
    lost.find("peernet.file");
    FAIL() << "found servers in a room that does not exist";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::kRoomNotFound) << error.what();
    EXPECT_NE(std::string(error.what()).find("no-such-room"), std::string::npos);
  }

  Client serving(options());
  serve_echo(serving, "files-only");
  Client knocking(options());
  const auto servers = knocking.find("peernet.file");
  ASSERT_EQ(servers.size(), 1U);
  try {
    knocking.connect(servers[0], "peernet.camera");
    FAIL() << "connected to a service the server does not offer";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::kNoSuchService) << error.what();
  }
  EXPECT_TRUE(knocking.find("peernet.camera").empty());

  auto unreachable = options();
  unreachable.daemon = "http://127.0.0.1:1";
  Client nowhere(unreachable);
  try {
    nowhere.find("peernet.file");
    FAIL() << "a daemon on port 1 answered";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), Errc::kUnreachable) << error.what();
  }
  auto bad_url = options();
  bad_url.daemon = "ftp://box";
  EXPECT_THROW(Client{bad_url}, Error);
}

TEST_F(ClientTest, SeveralKnockersAtOnceAllConnect) {
  Client serving(options());
  serve_echo(serving, "busy");
  constexpr int kKnockers = 3;
  std::vector<std::unique_ptr<Client>> knockers;
  std::vector<std::future<std::shared_ptr<Connection>>> connecting;
  for (int i = 0; i < kKnockers; ++i) {
    knockers.push_back(std::make_unique<Client>(options()));
    connecting.push_back(std::async(std::launch::async, [&client = *knockers.back()] {
      const auto servers = client.find("peernet.file");
      return client.connect(servers.at(0), "peernet.file");
    }));
  }
  for (auto& future : connecting) {
    auto connection = future.get();
    ASSERT_TRUE(connection && connection->is_open());
  }
  for (int i = 0; i < kKnockers; ++i) {
    EXPECT_TRUE(served_.take().has_value()) << "connection " << i << " never reached the server";
  }
}

TEST_F(ClientTest, AServingClientThatGoesWithdrawsItsServer) {
  Client knocking(options());
  {
    Client serving(options());
    serve_echo(serving, "leaving");
    EXPECT_EQ(knocking.find("peernet.file").size(), 1U);
  }
  EXPECT_TRUE(knocking.find("peernet.file").empty()) << "the server outlived its client";
}

TEST_F(ClientTest, ServingCarriesOnAfterPeernetdRestarts) {
  Mailbox<std::optional<Error>> statuses;
  Client serving(options());
  ServeHandlers handlers;
  handlers.status = [&statuses](const std::optional<Error>& error) { statuses.put(error); };
  serve_echo(serving, "survivor", std::move(handlers));
  ASSERT_TRUE(statuses.take().has_value()) << "the first registration was not reported";

  const auto port = daemon_.port();
  ASSERT_EQ(daemon_.stop(), 0) << daemon_.log();
  DaemonProcess restarted({"--port", std::to_string(port)});
  ASSERT_EQ(restarted.port(), port);

  // The client hears that peernetd went away, then that it is registered again.
  bool lost = false;
  bool back = false;
  while (!back) {
    auto status = statuses.take(seconds{15});
    ASSERT_TRUE(status.has_value()) << "no news of the restart within 15 s";
    if (status->has_value()) {
      lost = true;
    } else {
      back = true;
    }
  }
  EXPECT_TRUE(lost);

  Client knocking(options());
  const auto servers = knocking.find("peernet.file");
  ASSERT_EQ(servers.size(), 1U);
  auto connection = knocking.connect(servers[0], "peernet.file");
  EXPECT_TRUE(connection->is_open());
}

}  // namespace
}  // namespace peernet
