// The serving side of the sensor protocol, against fake sources, channels and connections: what a
// subscriber gets and in which order, that each reading reaches it exactly once however the
// subscription and the rounds of reads interleave, that a full channel is not flooded, and that
// hostile or departed peers are dealt with. No network: the test thread plays libpeernet's client
// thread (it fires the channels' and connections' callbacks) while read_round may run on another.
#include "sensors/sensor_service.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <peernet/peernet.h>

#include "sensors/history.h"
#include "sensors/reading.h"
#include "sensors/sources.h"
#include "sensors/wire.h"

namespace peernet::sensors {
namespace {

constexpr Millis kFarFuture = 253'402'300'800'000;  // 10000-01-01, as far as a request may ask
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

SensorInfo info_of(const std::string& id) {
  return {id, Kind::kTemperature, std::string(unit_of(Kind::kTemperature)), "Test " + id,
          "simulated"};
}

/// A sensor whose reads are whatever its script says.
class FakeSource final : public Source {
 public:
  using Script = std::function<ReadResult(Millis now)>;

  FakeSource(SensorInfo info, Script script) : info_(std::move(info)), script_(std::move(script)) {}

  const SensorInfo& info() const noexcept override { return info_; }
  ReadResult read(Millis now) override { return script_(now); }

 private:
  SensorInfo info_;
  Script script_;
};

/// Reads `base` + now / 1000: whole numbers on whole seconds, so values survive JSON unchanged.
std::unique_ptr<Source> reading(const std::string& id, double base) {
  return std::make_unique<FakeSource>(info_of(id), [base](Millis now) {
    return ReadResult{base + (static_cast<double>(now) / 1000), {}};
  });
}

/// Never reads: every reading of it is stale.
std::unique_ptr<Source> failing(const std::string& id) {
  return std::make_unique<FakeSource>(info_of(id), [](Millis) {
    return ReadResult{std::nullopt, "EIO"};
  });
}

template <typename... Sources>
std::vector<std::unique_ptr<Source>> sources_of(Sources... sources) {
  std::vector<std::unique_ptr<Source>> all;
  (all.push_back(std::move(sources)), ...);
  return all;
}

/// A data channel that keeps what is sent on it; the test fires its callbacks as the peer would.
class FakeChannel final : public Channel {
 public:
  explicit FakeChannel(std::string label) : label_(std::move(label)) {}

  std::string label() const override { return label_; }
  bool is_open() const override { return open_; }

  bool send(std::span<const std::byte> message) override {
    return send_text({reinterpret_cast<const char*>(message.data()), message.size()});
  }

  // Refuses what the real channel refuses, so that a service that tries it finds out.
  bool send_text(std::string_view text) override {
    const std::lock_guard lock(mutex_);
    largest_attempt_ = std::max(largest_attempt_, text.size());
    if (!open_ || text.empty() || text.size() > kMaxMessageBytes) {
      return false;
    }
    sent_.emplace_back(text);
    if (fill_per_send_ > 0) {
      buffered_ += text.size() + fill_per_send_;
    }
    return true;
  }

  std::uint64_t buffered_amount() const override { return buffered_; }
  void set_buffered_amount_low_threshold(std::uint64_t bytes) override { low_threshold_ = bytes; }

  void on_open(std::function<void()> callback) override {
    const std::lock_guard lock(mutex_);
    on_open_ = std::move(callback);
  }
  void on_message(std::function<void(std::span<const std::byte>, bool text)> callback) override {
    const std::lock_guard lock(mutex_);
    on_message_ = std::move(callback);
  }
  void on_buffered_amount_low(std::function<void()> callback) override {
    const std::lock_guard lock(mutex_);
    on_low_ = std::move(callback);
  }
  void on_close(std::function<void()> callback) override {
    const std::lock_guard lock(mutex_);
    on_close_ = std::move(callback);
  }

  void close() override {
    if (open_.exchange(false)) {
      fire(&FakeChannel::on_close_);
    }
  }

  // The peer's side.

  /// The peer sends `message`; false when nobody listens (no handler, or the channel is closed).
  bool deliver(std::string_view message, bool text = true) {
    std::function<void(std::span<const std::byte>, bool)> callback;
    {
      const std::lock_guard lock(mutex_);
      callback = on_message_;
    }
    if (!open_ || !callback) {
      return false;
    }
    callback(std::as_bytes(std::span(message.data(), message.size())), text);
    return true;
  }

  /// Everything queued has gone out.
  void drain() {
    buffered_ = 0;
    fire(&FakeChannel::on_low_);
  }

  void set_buffered(std::uint64_t bytes) { buffered_ = bytes; }
  /// From now on each message sent stays queued, with `bytes` more: a peer that takes nothing
  /// until drain().
  void congest(std::uint64_t bytes) {
    const std::lock_guard lock(mutex_);
    fill_per_send_ = bytes;
  }

  std::vector<std::string> sent() const {
    const std::lock_guard lock(mutex_);
    return sent_;
  }
  std::size_t sent_count() const {
    const std::lock_guard lock(mutex_);
    return sent_.size();
  }
  /// The largest message the service tried to send, refused or not.
  std::size_t largest_attempt() const {
    const std::lock_guard lock(mutex_);
    return largest_attempt_;
  }
  std::uint64_t low_threshold() const { return low_threshold_; }

 private:
  void fire(std::function<void()> FakeChannel::*slot) {
    std::function<void()> callback;
    {
      const std::lock_guard lock(mutex_);
      callback = this->*slot;
    }
    if (callback) {
      callback();
    }
  }

  const std::string label_;
  std::atomic<bool> open_ = true;
  std::atomic<std::uint64_t> buffered_ = 0;
  std::atomic<std::uint64_t> low_threshold_ = 0;

  mutable std::mutex mutex_;
  std::vector<std::string> sent_;
  std::size_t largest_attempt_ = 0;
  std::uint64_t fill_per_send_ = 0;
  std::function<void()> on_open_;
  std::function<void(std::span<const std::byte>, bool)> on_message_;
  std::function<void()> on_low_;
  std::function<void()> on_close_;
};

/// A connection whose peer the test plays: it opens channels and closes the connection.
class FakeConnection final : public Connection {
 public:
  const Knock& knock() const override {
    static const Knock knock = [] {
      Knock made;
      made.set_server("sensor-server");
      made.set_protocol(std::string(kProtocol));
      made.set_version(std::string(kVersion));
      return made;
    }();
    return knock;
  }

  std::shared_ptr<Channel> open_channel(const std::string& label) override {
    return std::make_shared<FakeChannel>(label);
  }
  std::vector<std::shared_ptr<Channel>> channels() const override { return {}; }

  void on_channel(std::function<void(std::shared_ptr<Channel>)> callback) override {
    const std::lock_guard lock(mutex_);
    on_channel_ = std::move(callback);
  }
  void on_closed(std::function<void(const Error&)> callback) override {
    const std::lock_guard lock(mutex_);
    on_closed_ = std::move(callback);
  }

  bool is_open() const override { return open_; }
  void set_open(bool open) { open_ = open; }
  std::shared_ptr<VideoSender> video_sender() const override { return nullptr; }
  void request_keyframe() override {}

  /// Ends the connection, as a peer that goes away does (its channels get no close callback).
  void close() override {
    if (!open_.exchange(false)) {
      return;
    }
    std::function<void(const Error&)> callback;
    {
      const std::lock_guard lock(mutex_);
      callback = on_closed_;
    }
    if (callback) {
      callback(Error(Errc::kClosed, "the peer closed the connection"));
    }
  }

  /// The peer opens a channel labelled `label`.
  std::shared_ptr<FakeChannel> peer_opens(const std::string& label) {
    auto channel = std::make_shared<FakeChannel>(label);
    std::function<void(std::shared_ptr<Channel>)> callback;
    {
      const std::lock_guard lock(mutex_);
      callback = on_channel_;
    }
    if (callback) {
      callback(channel);
    }
    return channel;
  }

 private:
  std::atomic<bool> open_ = true;
  mutable std::mutex mutex_;
  std::function<void(std::shared_ptr<Channel>)> on_channel_;
  std::function<void(const Error&)> on_closed_;
};

/// A service over an in-memory history, with a clock that follows the rounds read.
struct Rig {
  struct Peer {
    std::shared_ptr<FakeConnection> connection;
    std::shared_ptr<FakeChannel> channel;
  };

  explicit Rig(std::vector<std::unique_ptr<Source>> sources, Millis interval = 1000)
      : history(HistoryOptions{}),
        service(std::move(sources), history, {interval, [this] { return clock.load(); }}) {}

  void round(Millis now) {
    clock = now;
    service.read_round(now);
  }

  /// A new peer connects and opens one channel labelled `label`.
  Peer open(const std::string& label = std::string(kChannelLabel)) {
    auto connection = std::make_shared<FakeConnection>();
    service.attach(connection, "peer-" + std::to_string(++peers));
    return {connection, connection->peer_opens(label)};
  }

  std::atomic<Millis> clock = 0;
  History history;
  SensorService service;
  int peers = 0;
};

std::string subscribe(std::vector<std::string> sensors, std::optional<HistoryRequest> history,
                      bool live) {
  return encode(Subscribe{std::move(sensors), history, live});
}

/// What a watcher made of the messages sent to it, and where they broke the protocol's order
/// ("sensors", history, "history-end", live).
struct Transcript {
  std::optional<Hello> hello;
  std::vector<Reading> history;
  bool history_ended = false;
  std::vector<Reading> live;
  std::size_t live_messages = 0;
  std::vector<Failure> failures;
  std::string problems;
};

Transcript read_transcript(const std::vector<std::string>& texts) {
  Transcript transcript;
  const auto problem = [&](std::size_t index, const std::string& what) {
    transcript.problems += "message " + std::to_string(index) + ": " + what + "\n";
  };
  for (std::size_t index = 0; index < texts.size(); ++index) {
    Message message;
    try {
      message = decode(texts[index]);
    } catch (const WireError& error) {
      problem(index, std::string("undecodable: ") + error.what());
      continue;
    }
    if (const auto* hello = std::get_if<Hello>(&message)) {
      if (transcript.hello) {
        problem(index, "a second \"sensors\"");
      }
      transcript.hello = *hello;
    } else if (const auto* readings = std::get_if<Readings>(&message)) {
      auto& into = readings->live ? transcript.live : transcript.history;
      if (readings->live) {
        ++transcript.live_messages;
        if (!transcript.history_ended) {
          problem(index, "live readings before \"history-end\"");
        }
      } else if (!transcript.hello || transcript.history_ended) {
        problem(index, "history outside \"sensors\" ... \"history-end\"");
      }
      into.insert(into.end(), readings->readings.begin(), readings->readings.end());
    } else if (std::holds_alternative<HistoryEnd>(message)) {
      if (!transcript.hello || transcript.history_ended) {
        problem(index, "\"history-end\" out of place");
      }
      transcript.history_ended = true;
    } else if (const auto* failure = std::get_if<Failure>(&message)) {
      transcript.failures.push_back(*failure);
    } else {
      problem(index, "unexpected: " + texts[index].substr(0, 80));
    }
  }
  return transcript;
}

/// Each sensor's readings, in the order they came.
std::map<std::string, std::vector<Reading>> by_sensor(const std::vector<Reading>& readings) {
  std::map<std::string, std::vector<Reading>> sorted;
  for (const Reading& reading : readings) {
    sorted[reading.sensor].push_back(reading);
  }
  return sorted;
}

std::vector<Millis> times_of(const std::vector<Reading>& readings, const std::string& sensor) {
  std::vector<Millis> times;
  for (const Reading& reading : readings) {
    if (reading.sensor == sensor) {
      times.push_back(reading.time);
    }
  }
  return times;
}

/// Empty when `times` is exactly step, 2 step, ..., last; else the first repeat or gap.
std::string continuity(const std::vector<Millis>& times, Millis step, Millis last) {
  Millis due = step;
  for (std::size_t index = 0; index < times.size(); ++index) {
    if (times[index] != due) {
      return "reading " + std::to_string(index) + " is of " + std::to_string(times[index]) +
             " where " + std::to_string(due) + " was due" +
             (times[index] < due ? " (a repeat)" : " (a gap)");
    }
    due += step;
  }
  if (due - step != last) {
    return "the readings end at " + std::to_string(due - step) + ", the last round was at " +
           std::to_string(last);
  }
  return {};
}

TEST(SensorService, ASubscriberGetsItsSensorsThenTheHistoryThenLiveReadings) {
  Rig rig(sources_of(reading("a", 20), reading("b", 30), failing("c")));
  rig.round(1000);
  rig.round(2000);
  rig.round(3000);

  const auto peer = rig.open();
  ASSERT_TRUE(peer.channel->deliver(
      subscribe({"a", "c"}, HistoryRequest{0, 2500, Resolution::kRaw}, true)));
  const Transcript before_live = read_transcript(peer.channel->sent());
  EXPECT_TRUE(before_live.history_ended);
  EXPECT_TRUE(before_live.live.empty());

  rig.round(4000);
  const std::vector<std::string> sent = peer.channel->sent();
  ASSERT_GE(sent.size(), 3U);
  EXPECT_TRUE(std::holds_alternative<Hello>(decode(sent.front())));
  EXPECT_TRUE(std::holds_alternative<HistoryEnd>(decode(sent.at(sent.size() - 2))));
  const Transcript transcript = read_transcript(sent);
  EXPECT_EQ(transcript.problems, "");
  EXPECT_TRUE(transcript.failures.empty());
  ASSERT_TRUE(transcript.hello);
  EXPECT_EQ(transcript.hello->sensors, (std::vector<SensorInfo>{info_of("a"), info_of("c")}));
  EXPECT_EQ(transcript.hello->interval, 1000);
  // From 0 to 2500: two rounds, of the sensors asked for only; a failed read travels as stale.
  const std::map<std::string, std::vector<Reading>> history = {
      {"a", {{"a", 1000, 21.0}, {"a", 2000, 22.0}}},
      {"c", {{"c", 1000, std::nullopt}, {"c", 2000, std::nullopt}}}};
  EXPECT_EQ(by_sensor(transcript.history), history);
  EXPECT_TRUE(transcript.history_ended);
  EXPECT_EQ(transcript.live_messages, 1U);
  const std::map<std::string, std::vector<Reading>> live = {{"a", {{"a", 4000, 24.0}}},
                                                            {"c", {{"c", 4000, std::nullopt}}}};
  EXPECT_EQ(by_sensor(transcript.live), live);
}

TEST(SensorService, EachReadingArrivesOnceAcrossTheHandOffFromHistoryToLive) {
  // Rounds 1 ms apart, so that however far the reading thread runs ahead, the test stays well
  // within the 10 s a channel is given to subscribe, whichever clock that is measured on.
  constexpr Millis kStep = 1;
  constexpr int kIterations = 20;
  int overlapped = 0;  // iterations in which rounds ran while the subscription was being served
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    Rig rig(sources_of(reading("a", 20), reading("b", 30)), kStep);
    std::atomic<int> rounds = 0;   // read so far
    std::atomic<int> allowed = 0;  // the reading thread waits past this many
    std::atomic<bool> stop = false;
    std::thread reader([&] {
      int round = 1;
      while (!stop) {
        if (round > allowed) {
          std::this_thread::yield();
          continue;
        }
        rig.round(round * kStep);
        rounds = round;
        ++round;
      }
    });
    const auto wait_for_rounds = [&](int count) {
      allowed = std::max(allowed.load(), count);
      while (rounds < count) {
        std::this_thread::yield();
      }
    };

    // A history of a few thousand readings, served a slice at a time while the rounds go on.
    const int midway = 1000 + (iteration * 97);
    allowed = midway + 3000;
    wait_for_rounds(midway);
    const auto peer = rig.open();
    const int before = rounds;
    EXPECT_TRUE(peer.channel->deliver(
        subscribe({}, HistoryRequest{0, kFarFuture, Resolution::kRaw}, true)));
    const int after = rounds;
    overlapped += after > before ? 1 : 0;
    wait_for_rounds(after + 50);
    stop = true;
    reader.join();

    const Transcript transcript = read_transcript(peer.channel->sent());
    EXPECT_EQ(transcript.problems, "");
    EXPECT_TRUE(transcript.failures.empty());
    EXPECT_TRUE(transcript.history_ended);
    EXPECT_FALSE(transcript.history.empty());
    EXPECT_FALSE(transcript.live.empty());
    for (const char* sensor : {"a", "b"}) {
      std::vector<Millis> times = times_of(transcript.history, sensor);
      const std::vector<Millis> live = times_of(transcript.live, sensor);
      times.insert(times.end(), live.begin(), live.end());
      EXPECT_EQ(continuity(times, kStep, rounds * kStep), "") << "sensor " << sensor;
    }
  }
  RecordProperty("overlapped", overlapped);
  std::printf("rounds ran during the subscription in %d of %d iterations\n", overlapped,
              kIterations);
}

TEST(SensorService, HistoryWaitsForTheChannelToDrain) {
  Rig rig(sources_of(reading("a", 20), reading("b", 30)));
  constexpr Millis kRounds = 5000;
  for (Millis round = 1; round <= kRounds; ++round) {
    rig.round(round * 1000);
  }

  const auto peer = rig.open();
  peer.channel->set_buffered(2 * kMiB);
  // Every message sent stays queued, with room for no other, until the peer drains the channel.
  peer.channel->congest(kMiB);
  ASSERT_TRUE(
      peer.channel->deliver(subscribe({}, HistoryRequest{0, kFarFuture, Resolution::kRaw}, false)));
  std::size_t sent = peer.channel->sent_count();
  EXPECT_LE(sent, 3U) << "sent into a channel with more than 1 MiB queued";
  EXPECT_FALSE(read_transcript(peer.channel->sent()).history_ended);

  int drains = 0;
  while (!read_transcript(peer.channel->sent()).history_ended && drains < 1000) {
    peer.channel->drain();
    ++drains;
    const std::size_t now_sent = peer.channel->sent_count();
    ASSERT_GT(now_sent, sent) << "drain " << drains << " sent nothing: the history is stuck";
    EXPECT_LE(now_sent - sent, 3U) << "drain " << drains << " overfilled the channel";
    sent = now_sent;
  }
  EXPECT_GE(drains, 3);

  const Transcript transcript = read_transcript(peer.channel->sent());
  EXPECT_EQ(transcript.problems, "");
  EXPECT_TRUE(transcript.history_ended);
  EXPECT_TRUE(transcript.live.empty());
  const auto history = by_sensor(transcript.history);
  EXPECT_EQ(history, by_sensor(rig.history.raw(0, kFarFuture)));
  ASSERT_EQ(history.size(), 2U);
  EXPECT_EQ(history.at("a").size(), static_cast<std::size_t>(kRounds));
  EXPECT_EQ(history.at("b").size(), static_cast<std::size_t>(kRounds));
  EXPECT_LE(peer.channel->largest_attempt(), Channel::kMaxMessageBytes);
}

TEST(SensorService, ABadRequestIsAnsweredAndTheChannelStaysUsable) {
  Rig rig(sources_of(reading("a", 20)));
  rig.round(1000);

  const auto peer = rig.open();
  ASSERT_TRUE(peer.channel->deliver(R"({"op":"subscribe","sensors":[)"));
  Transcript transcript = read_transcript(peer.channel->sent());
  ASSERT_EQ(transcript.failures.size(), 1U);
  EXPECT_EQ(transcript.failures[0].code, "bad-request");
  EXPECT_FALSE(transcript.hello);
  EXPECT_TRUE(peer.channel->is_open());

  ASSERT_TRUE(
      peer.channel->deliver(subscribe({}, HistoryRequest{0, kFarFuture, Resolution::kRaw}, true)));
  rig.round(2000);
  transcript = read_transcript(peer.channel->sent());
  EXPECT_EQ(transcript.problems, "");
  EXPECT_EQ(transcript.failures.size(), 1U);
  ASSERT_TRUE(transcript.hello);
  EXPECT_EQ(transcript.history, (std::vector<Reading>{{"a", 1000, 21.0}}));
  EXPECT_EQ(transcript.live, (std::vector<Reading>{{"a", 2000, 22.0}}));

  // Binary, or a message only a server sends: refused as well.
  const auto binary = rig.open();
  ASSERT_TRUE(binary.channel->deliver(subscribe({}, std::nullopt, true), /*text=*/false));
  const auto backwards = rig.open();
  ASSERT_TRUE(backwards.channel->deliver(encode(HistoryEnd{})));
  rig.round(3000);
  for (const auto* channel : {binary.channel.get(), backwards.channel.get()}) {
    transcript = read_transcript(channel->sent());
    ASSERT_EQ(transcript.failures.size(), 1U);
    EXPECT_EQ(transcript.failures[0].code, "bad-request");
    EXPECT_FALSE(transcript.hello);
    EXPECT_TRUE(transcript.live.empty());
  }
}

TEST(SensorService, AnUnknownSensorIsNotFound) {
  Rig rig(sources_of(reading("a", 20)));
  const auto peer = rig.open();
  ASSERT_TRUE(peer.channel->deliver(subscribe({"a", "nope"}, std::nullopt, true)));
  rig.round(1000);
  const Transcript transcript = read_transcript(peer.channel->sent());
  ASSERT_EQ(transcript.failures.size(), 1U);
  EXPECT_EQ(transcript.failures[0].code, "not-found");
  EXPECT_NE(transcript.failures[0].message.find("nope"), std::string::npos);
  EXPECT_FALSE(transcript.hello);
  EXPECT_TRUE(transcript.live.empty());
  EXPECT_EQ(peer.channel->sent_count(), 1U);
}

TEST(SensorService, ASecondSubscribeIsRefused) {
  Rig rig(sources_of(reading("a", 20), reading("b", 30)));
  const auto peer = rig.open();
  ASSERT_TRUE(peer.channel->deliver(subscribe({"a"}, std::nullopt, true)));
  ASSERT_TRUE(peer.channel->deliver(subscribe({"b"}, std::nullopt, true)));
  rig.round(1000);
  const Transcript transcript = read_transcript(peer.channel->sent());
  EXPECT_EQ(transcript.problems, "");
  ASSERT_EQ(transcript.failures.size(), 1U);
  EXPECT_EQ(transcript.failures[0].code, "bad-request");
  ASSERT_TRUE(transcript.hello);
  EXPECT_EQ(transcript.hello->sensors, std::vector<SensorInfo>{info_of("a")});
  // The first subscription holds, once.
  EXPECT_EQ(transcript.live_messages, 1U);
  EXPECT_EQ(transcript.live, (std::vector<Reading>{{"a", 1000, 21.0}}));
}

TEST(SensorService, AChannelWithAnotherLabelIsClosed) {
  Rig rig(sources_of(reading("a", 20)));
  const auto video = rig.open("video");
  EXPECT_FALSE(video.channel->is_open());
  EXPECT_EQ(rig.service.subscribers(), 0U);
  video.channel->deliver(subscribe({}, std::nullopt, true));
  rig.round(1000);
  EXPECT_TRUE(video.channel->sent().empty());
  EXPECT_EQ(rig.service.subscribers(), 0U);
}

TEST(SensorService, AChannelThatKeepsAskingNonsenseIsClosed) {
  Rig rig(sources_of(reading("a", 20)));
  const auto peer = rig.open();
  int asked = 0;
  while (asked < 1000 && peer.channel->deliver("nonsense")) {
    ++asked;
  }
  EXPECT_FALSE(peer.channel->is_open());
  EXPECT_LT(asked, 1000);
  const Transcript transcript = read_transcript(peer.channel->sent());
  EXPECT_FALSE(transcript.failures.empty());
  EXPECT_LE(transcript.failures.size(), static_cast<std::size_t>(asked));
  EXPECT_EQ(rig.service.subscribers(), 0U);
}

TEST(SensorService, APeerOpeningManyChannelsDoesNotLockOthersOut) {
  Rig rig(sources_of(reading("a", 20)));
  auto greedy = std::make_shared<FakeConnection>();
  rig.service.attach(greedy, "greedy");
  std::vector<std::shared_ptr<FakeChannel>> channels;
  for (int opened = 0; opened < 50; ++opened) {
    channels.push_back(greedy->peer_opens(std::string(kChannelLabel)));
  }
  const auto served = std::ranges::count_if(channels, [](const auto& c) { return c->is_open(); });
  EXPECT_GE(served, 1);
  EXPECT_LE(served, 16);
  EXPECT_EQ(rig.service.subscribers(), static_cast<std::size_t>(served));

  const auto other = rig.open();
  ASSERT_TRUE(other.channel->is_open());
  ASSERT_TRUE(other.channel->deliver(subscribe({}, std::nullopt, true)));
  rig.round(1000);
  EXPECT_EQ(read_transcript(other.channel->sent()).live, (std::vector<Reading>{{"a", 1000, 21.0}}));
  for (const auto& channel : channels) {
    if (!channel->is_open()) {
      EXPECT_TRUE(channel->sent().empty());
    }
  }
}

TEST(SensorService, AClosedChannelGetsNothingMore) {
  Rig rig(sources_of(reading("a", 20)));
  const auto peer = rig.open();
  ASSERT_TRUE(peer.channel->deliver(subscribe({}, std::nullopt, true)));
  rig.round(1000);
  EXPECT_EQ(read_transcript(peer.channel->sent()).live.size(), 1U);
  EXPECT_EQ(rig.service.subscribers(), 1U);

  peer.channel->close();
  EXPECT_EQ(rig.service.subscribers(), 0U);
  const std::size_t sent = peer.channel->sent_count();
  rig.round(2000);
  rig.round(3000);
  EXPECT_EQ(peer.channel->sent_count(), sent);
  EXPECT_EQ(rig.service.subscribers(), 0U);
}

TEST(SensorService, ALostConnectionStopsItsChannels) {
  Rig rig(sources_of(reading("a", 20)));
  const auto lost = rig.open();
  const auto kept = rig.open();
  ASSERT_TRUE(lost.channel->deliver(subscribe({}, std::nullopt, true)));
  ASSERT_TRUE(kept.channel->deliver(subscribe({}, std::nullopt, true)));
  rig.round(1000);
  EXPECT_EQ(rig.service.subscribers(), 2U);

  // A connection that fails does not close its channels one by one.
  lost.connection->close();
  EXPECT_EQ(rig.service.subscribers(), 1U);
  const std::size_t sent = lost.channel->sent_count();
  rig.round(2000);
  EXPECT_EQ(lost.channel->sent_count(), sent);
  EXPECT_EQ(read_transcript(kept.channel->sent()).live,
            (std::vector<Reading>{{"a", 1000, 21.0}, {"a", 2000, 22.0}}));
}

}  // namespace
}  // namespace peernet::sensors
