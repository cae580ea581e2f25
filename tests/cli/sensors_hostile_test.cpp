// The sensor server against a hostile watcher: messages sent raw through libpeernet, past every
// check the peernet command makes, to a real `peernet sensors serve` process.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include <peernet/peernet.h>

#include "cli/process.h"
#include "integration/daemon_process.h"
#include "sensors/wire.h"

namespace peernet {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

/// A channel's messages as they arrive, and whether it closed.
struct Inbox {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> texts;
  bool closed = false;

  void attach(Channel& channel) {
    channel.on_message([this](std::span<const std::byte> bytes, bool /*text*/) {
      {
        const std::lock_guard lock(mutex);
        texts.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      }
      changed.notify_all();
    });
    channel.on_close([this] {
      {
        const std::lock_guard lock(mutex);
        closed = true;
      }
      changed.notify_all();
    });
  }

  /// The next message, decoded as the protocol does; fails the test after 10 s.
  sensors::Message next() {
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, seconds{10}, [&] { return !texts.empty(); })) {
      ADD_FAILURE() << "no message from the sensor server";
      return sensors::Failure{"timeout", "no message"};
    }
    std::string text = std::move(texts.front());
    texts.pop_front();
    return sensors::decode(text);
  }

  bool wait_closed() {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, seconds{10}, [&] { return closed; });
  }
};

class SensorsHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string daemon = "http://127.0.0.1:" + std::to_string(daemon_.port());
    server_ = std::make_unique<testing::Process>(
        PEERNET_PATH,
        std::vector<std::string>{"--daemon", daemon, "--loopback", "sensors", "serve", "--sysfs",
                                 (logs_.path() / "no-sysfs").string(), "--simulate", "--interval",
                                 "0.2", "--state-dir", (logs_.path() / "state").string()},
        logs_.path() / "out", logs_.path() / "err");
    client_ = std::make_unique<Client>(testing::loopback_client(daemon_.port()));
    const std::vector<Server> servers =
        testing::wait_for_servers(*client_, "peernet.sensor", *server_);
    ASSERT_FALSE(servers.empty());
    connection_ = client_->connect(servers.front(), "peernet.sensor", {"sensors"});
    channel_ = connection_->channels().front();
    inbox_.attach(*channel_);
  }

  void TearDown() override {
    if (channel_) {
      channel_->on_message({});
      channel_->on_close({});
    }
  }

  /// Sends `text` and returns the code of the error it is answered with.
  std::string refusal(const std::string& text) {
    EXPECT_TRUE(channel_->send_text(text));
    const auto reply = inbox_.next();
    const auto* failure = std::get_if<sensors::Failure>(&reply);
    return failure == nullptr ? "no error" : failure->code;
  }

  /// Subscribes properly and checks the answer: the sensors, the history, then live readings.
  void expect_a_working_subscription() {
    ASSERT_TRUE(channel_->send_text(sensors::encode(
        sensors::Subscribe{{"sim-temperature"},
                           sensors::HistoryRequest{0, INT64_C(1) << 49, sensors::Resolution::kRaw},
                           true})));
    const auto hello = std::get<sensors::Hello>(inbox_.next());
    ASSERT_EQ(hello.sensors.size(), 1U);
    EXPECT_EQ(hello.sensors[0].id, "sim-temperature");
    EXPECT_EQ(hello.interval, 200);
    sensors::Message message = inbox_.next();
    while (std::holds_alternative<sensors::Readings>(message)) {
      EXPECT_FALSE(std::get<sensors::Readings>(message).live);
      message = inbox_.next();
    }
    ASSERT_TRUE(std::holds_alternative<sensors::HistoryEnd>(message));
    const auto live = std::get<sensors::Readings>(inbox_.next());
    EXPECT_TRUE(live.live);
    ASSERT_EQ(live.readings.size(), 1U);
    EXPECT_EQ(live.readings[0].sensor, "sim-temperature");
    EXPECT_TRUE(live.readings[0].value.has_value());
  }

  testing::DaemonProcess daemon_;
  testing::TempDir logs_;
  std::unique_ptr<testing::Process> server_;
  std::unique_ptr<Client> client_;
  std::shared_ptr<Connection> connection_;
  std::shared_ptr<Channel> channel_;
  Inbox inbox_;
};

TEST_F(SensorsHostileTest, MalformedMessagesAreRefusedAndTheChannelGoesOn) {
  EXPECT_EQ(refusal("{"), "bad-request");
  EXPECT_EQ(refusal("[]"), "bad-request");
  EXPECT_EQ(refusal(R"({"op":"readings","rows":[]})"), "bad-request");  // not the server's to get
  EXPECT_EQ(refusal(R"({"op":"subscribe","sensors":["a b"]})"), "bad-request");
  EXPECT_EQ(refusal(R"({"op":"subscribe","history":{"from":9,"to":1,"resolution":"raw"}})"),
            "bad-request");
  EXPECT_EQ(refusal(R"({"op":"subscribe","sensors":["no-such-sensor"]})"), "not-found");
  const std::string binary = "\x01\x02";
  ASSERT_TRUE(channel_->send(std::as_bytes(std::span(binary.data(), binary.size()))));
  const auto reply = inbox_.next();
  ASSERT_TRUE(std::holds_alternative<sensors::Failure>(reply));
  EXPECT_EQ(std::get<sensors::Failure>(reply).code, "bad-request");
  expect_a_working_subscription();
}

TEST_F(SensorsHostileTest, OneSubscriptionPerChannel) {
  expect_a_working_subscription();
  ASSERT_TRUE(channel_->send_text(sensors::encode(sensors::Subscribe{})));
  // Live readings may come first; the refusal comes among them.
  for (int i = 0; i < 50; ++i) {
    const auto message = inbox_.next();
    if (const auto* failure = std::get_if<sensors::Failure>(&message)) {
      EXPECT_EQ(failure->code, "bad-request");
      EXPECT_NE(failure->message.find("subscribed already"), std::string::npos);
      return;
    }
  }
  ADD_FAILURE() << "the second subscription was not refused";
}

TEST_F(SensorsHostileTest, AChannelOfAnotherProtocolIsClosed) {
  auto other = connection_->open_channel("files");
  Inbox other_inbox;
  other_inbox.attach(*other);
  EXPECT_TRUE(other_inbox.wait_closed());
  other->on_message({});
  other->on_close({});
  expect_a_working_subscription();  // the connection itself serves on
}

TEST_F(SensorsHostileTest, ChannelsThatHoardOrPesterAreClosed) {
  // Four channels per peer at most: of five, one is closed at once (which one depends on the
  // order the server sees them open in).
  std::vector<std::shared_ptr<Channel>> extra;
  std::vector<std::unique_ptr<Inbox>> inboxes;
  for (int i = 0; i < 4; ++i) {
    extra.push_back(connection_->open_channel("sensors"));
    inboxes.push_back(std::make_unique<Inbox>());
    inboxes.back()->attach(*extra.back());
  }
  const auto closed_now = [&] {
    return std::ranges::count_if(inboxes, [](const auto& inbox) {
      const std::lock_guard lock(inbox->mutex);
      return inbox->closed;
    });
  };
  const auto deadline = std::chrono::steady_clock::now() + seconds{10};
  while (closed_now() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds{10});
  }
  std::this_thread::sleep_for(milliseconds{500});
  EXPECT_EQ(closed_now(), 1);
  // A channel that asks nothing is closed after 10 s; this one, that subscribed, is not.
  expect_a_working_subscription();
  std::this_thread::sleep_for(seconds{11});
  for (const auto& inbox : inboxes) {
    EXPECT_TRUE(inbox->wait_closed());
  }
  {
    const std::lock_guard lock(inbox_.mutex);
    EXPECT_FALSE(inbox_.closed);
  }
  // Sixteen bad requests are answered; the seventeenth closes the channel.
  auto pest = connection_->open_channel("sensors");
  Inbox pest_inbox;
  pest_inbox.attach(*pest);
  const auto opened_by = std::chrono::steady_clock::now() + seconds{10};
  while (!pest->is_open() && std::chrono::steady_clock::now() < opened_by) {
    std::this_thread::sleep_for(milliseconds{10});
  }
  for (int i = 0; i < 17; ++i) {
    EXPECT_TRUE(pest->send_text("{"));
  }
  EXPECT_TRUE(pest_inbox.wait_closed());
  {
    const std::lock_guard lock(pest_inbox.mutex);
    EXPECT_LE(pest_inbox.texts.size(), 16U);  // the replies sent before it was closed
  }
  for (auto& channel : extra) {
    channel->on_message({});
    channel->on_close({});
  }
  pest->on_message({});
  pest->on_close({});
}

TEST_F(SensorsHostileTest, HistoryOfAnyRangeIsBoundedByWhatIsKept) {
  ASSERT_TRUE(channel_->send_text(sensors::encode(sensors::Subscribe{
      {},
      sensors::HistoryRequest{-(INT64_C(1) << 49), INT64_C(1) << 49, sensors::Resolution::kHour},
      false})));
  const auto hello = std::get<sensors::Hello>(inbox_.next());
  EXPECT_EQ(hello.sensors.size(), 2U);
  std::size_t rows = 0;
  sensors::Message message = inbox_.next();
  while (const auto* rollups = std::get_if<sensors::Rollups>(&message)) {
    rows += rollups->rows.size();
    message = inbox_.next();
  }
  EXPECT_TRUE(std::holds_alternative<sensors::HistoryEnd>(message));
  EXPECT_GE(rows, 2U);  // this hour's bucket of each sensor, still filling
  EXPECT_LE(rows, 4U);
}

}  // namespace
}  // namespace peernet
