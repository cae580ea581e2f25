// Real WebRTC connections between two webrtcbin peers in this process, on 127.0.0.1: the offer,
// the answer and the candidates are handed across directly (no peernetd), so these tests are
// about the transport alone.
#include "webrtc/rtc_peer.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace peernet::lib {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

std::vector<std::byte> bytes_of(std::size_t size, unsigned seed) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  }
  return out;
}

std::size_t count_entries(const char* dir) {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir),
                                                std::filesystem::directory_iterator{}));
}

/// What one side saw.
struct Side {
  std::shared_ptr<RtcPeer> peer;
  std::vector<std::shared_ptr<RtcChannel>> remote_channels;
  std::vector<RtcPeer::State> states;
  bool gathered = false;
};

class RtcPeerTest : public ::testing::Test {
 protected:
  /// Runs the executor until `done` holds or `timeout` passes; false on timeout.
  bool run_until(const std::function<bool()>& done, milliseconds timeout = seconds{10}) {
    const auto give_up = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() >= give_up) {
        return false;
      }
      io_.run_one_for(milliseconds{20});
    }
    return true;
  }

  /// A peer gathering on 127.0.0.1 whose candidates go straight to `*other` (once it exists).
  std::shared_ptr<RtcPeer> make_peer(Side& side, Side& other) {
    RtcPeer::Events events;
    events.local_candidate = [&side, &other](const IceCandidateLine& line) {
      if (line.candidate.empty()) {
        side.gathered = true;
      } else if (other.peer) {
        other.peer->add_remote_candidate(line);
      }
    };
    events.channel = [&side](std::shared_ptr<RtcChannel> channel) {
      side.remote_channels.push_back(std::move(channel));
    };
    events.state = [&side](RtcPeer::State state) { side.states.push_back(state); };
    auto peer = RtcPeer::create(io_.get_executor(), RtcConfig{{}, {}, true}, std::move(events));
    if (!peer) {
      ADD_FAILURE() << peer.error().what();
      return nullptr;
    }
    return std::move(peer).value();
  }

  /// Offer from a, answer from b; true once both are connected. `before_offer` runs once both
  /// peers exist: channels made there are negotiated with the offer.
  bool connect(Side& a, Side& b, const std::function<void()>& before_offer = {}) {
    a.peer = make_peer(a, b);
    b.peer = make_peer(b, a);
    if (!a.peer || !b.peer) {
      return false;
    }
    if (before_offer) {
      before_offer();
    }
    std::optional<Result<std::string>> offer;
    a.peer->create_offer([&](Result<std::string> sdp) { offer = std::move(sdp); });
    if (!run_until([&] { return offer.has_value(); })) {
      ADD_FAILURE() << "no offer";
      return false;
    }
    if (!*offer) {
      ADD_FAILURE() << offer->error().what();
      return false;
    }
    last_offer_ = offer->value();
    std::optional<Result<std::string>> answer;
    b.peer->answer_offer(offer->value(), [&](Result<std::string> sdp) { answer = std::move(sdp); });
    if (!run_until([&] { return answer.has_value(); }) || !*answer) {
      ADD_FAILURE() << "no answer" << (answer ? std::string(": ") + answer->error().what() : "");
      return false;
    }
    std::optional<Status> accepted;
    a.peer->accept_answer(answer->value(), [&](Status status) { accepted = std::move(status); });
    if (!run_until([&] { return accepted.has_value(); }) || !*accepted) {
      ADD_FAILURE() << "answer not accepted";
      return false;
    }
    return run_until([&] {
      return a.peer->state() == RtcPeer::State::kConnected &&
             b.peer->state() == RtcPeer::State::kConnected;
    });
  }

  asio::io_context io_;
  std::string last_offer_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
};

/// Messages one channel received, in order.
struct Inbox {
  std::vector<std::vector<std::byte>> messages;
  std::vector<bool> text;
  bool open = false;
  bool closed = false;

  RtcChannel::Events events() {
    RtcChannel::Events events;
    events.open = [this] { open = true; };
    events.message = [this](std::span<const std::byte> message, bool is_text) {
      messages.emplace_back(message.begin(), message.end());
      text.push_back(is_text);
    };
    events.closed = [this] { closed = true; };
    return events;
  }
};

TEST_F(RtcPeerTest, AChannelOpensAndCarriesBinaryAndTextBothWays) {
  Side a;
  Side b;
  std::shared_ptr<RtcChannel> channel;
  Inbox a_inbox;
  ASSERT_TRUE(connect(a, b, [&] {
    channel = a.peer->create_channel("data");
    ASSERT_NE(channel, nullptr);
    channel->set_events(a_inbox.events());
  }));
  EXPECT_EQ(channel->label(), "data");
  EXPECT_NE(last_offer_.find("m=application"), std::string::npos) << last_offer_;

  ASSERT_TRUE(run_until([&] { return a_inbox.open && !b.remote_channels.empty(); }))
      << "the channel did not open on both sides";
  EXPECT_EQ(a.peer->state(), RtcPeer::State::kConnected);
  auto remote = b.remote_channels.front();
  EXPECT_EQ(remote->label(), "data");
  Inbox b_inbox;
  remote->set_events(b_inbox.events());

  const auto one = bytes_of(1, 7);
  const auto full = bytes_of(kMaxMessageBytes, 3);
  ASSERT_TRUE(channel->send(one));
  ASSERT_TRUE(channel->send(full));
  ASSERT_TRUE(channel->send_text("hello from a"));
  EXPECT_FALSE(channel->send(bytes_of(kMaxMessageBytes + 1, 0))) << "over 64 KiB is refused";
  ASSERT_TRUE(remote->send_text("hello from b"));

  ASSERT_TRUE(
      run_until([&] { return b_inbox.messages.size() == 3 && a_inbox.messages.size() == 1; }));
  EXPECT_EQ(b_inbox.messages[0], one);
  EXPECT_EQ(b_inbox.messages[1], full);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b_inbox.messages[2].data()),
                        b_inbox.messages[2].size()),
            "hello from a");
  EXPECT_EQ(b_inbox.text, (std::vector<bool>{false, false, true}));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a_inbox.messages[0].data()),
                        a_inbox.messages[0].size()),
            "hello from b");
  EXPECT_TRUE(a_inbox.text[0]);
}

TEST_F(RtcPeerTest, ManyMessagesArriveWholeAndInOrder) {
  Side a;
  Side b;
  std::shared_ptr<RtcChannel> channel;
  ASSERT_TRUE(connect(a, b, [&] { channel = a.peer->create_channel("bulk"); }));
  ASSERT_TRUE(run_until(
      [&] { return channel->state() == RtcChannel::State::kOpen && !b.remote_channels.empty(); }));
  Inbox inbox;
  b.remote_channels.front()->set_events(inbox.events());

  constexpr unsigned kCount = 2000;
  constexpr std::size_t kSize = 1000;
  unsigned sent = 0;
  // Send with flow control, as an application must: keep at most 256 KiB queued.
  ASSERT_TRUE(run_until(
      [&] {
        while (sent < kCount && channel->buffered_amount() < 256 * 1024) {
          EXPECT_TRUE(channel->send(bytes_of(kSize, sent)));
          ++sent;
        }
        return inbox.messages.size() == kCount;
      },
      seconds{30}));
  for (unsigned i = 0; i < kCount; ++i) {
    ASSERT_EQ(inbox.messages[i], bytes_of(kSize, i)) << "message " << i;
  }
}

TEST_F(RtcPeerTest, ChannelsOpenedAfterConnectingReachTheOtherSide) {
  Side a;
  Side b;
  ASSERT_TRUE(connect(a, b, [&] { a.peer->create_channel("first"); }));
  ASSERT_TRUE(run_until([&] { return b.remote_channels.size() == 1; }));
  // Both sides open one more each; SCTP is up, so no new offer is needed.
  auto from_a = a.peer->create_channel("later-a");
  auto from_b = b.peer->create_channel("later-b");
  ASSERT_TRUE(from_a && from_b);
  ASSERT_TRUE(
      run_until([&] { return b.remote_channels.size() == 2 && a.remote_channels.size() == 1; }));
  EXPECT_EQ(b.remote_channels[1]->label(), "later-a");
  EXPECT_EQ(a.remote_channels[0]->label(), "later-b");
  Inbox inbox;
  a.remote_channels[0]->set_events(inbox.events());
  ASSERT_TRUE(run_until([&] { return from_b->state() == RtcChannel::State::kOpen; }));
  ASSERT_TRUE(from_b->send_text("over the late channel"));
  ASSERT_TRUE(run_until([&] { return inbox.messages.size() == 1; }));
  EXPECT_EQ(inbox.messages[0].size(), std::strlen("over the late channel"));
}

TEST_F(RtcPeerTest, ClosingAChannelClosesItOnTheOtherSide) {
  Side a;
  Side b;
  std::shared_ptr<RtcChannel> channel;
  ASSERT_TRUE(connect(a, b, [&] { channel = a.peer->create_channel("short"); }));
  ASSERT_TRUE(run_until(
      [&] { return channel->state() == RtcChannel::State::kOpen && !b.remote_channels.empty(); }));
  Inbox inbox;
  b.remote_channels.front()->set_events(inbox.events());
  channel->close();
  EXPECT_EQ(channel->state(), RtcChannel::State::kClosed);
  EXPECT_FALSE(channel->send_text("too late"));
  ASSERT_TRUE(run_until([&] { return inbox.closed; })) << "the other side never saw the close";
  EXPECT_EQ(b.remote_channels.front()->state(), RtcChannel::State::kClosed);
}

TEST_F(RtcPeerTest, AnOfferThatIsNotAnSdpIsRefused) {
  Side a;
  Side b;
  a.peer = make_peer(a, b);
  ASSERT_TRUE(a.peer);
  std::optional<Result<std::string>> answer;
  a.peer->answer_offer("hello", [&](Result<std::string> sdp) { answer = std::move(sdp); });
  ASSERT_TRUE(run_until([&] { return answer.has_value(); }));
  ASSERT_FALSE(*answer);
  EXPECT_EQ(answer->error().code(), Errc::kInvalid);
  EXPECT_NE(std::string(answer->error().what()).find("SDP"), std::string::npos);
}

TEST_F(RtcPeerTest, FiftyConnectionsInARowLeaveNoThreadsOrDescriptorsBehind) {
  const auto one_round = [&] {
    Side a;
    Side b;
    std::shared_ptr<RtcChannel> channel;
    ASSERT_TRUE(connect(a, b, [&] { channel = a.peer->create_channel("c"); }));
    ASSERT_TRUE(run_until([&] { return channel->state() == RtcChannel::State::kOpen; }));
    const auto states_seen = a.states.size() + b.states.size();
    a.peer->close();
    b.peer->close();
    EXPECT_EQ(a.peer->state(), RtcPeer::State::kClosed);
    io_.poll();
    EXPECT_EQ(a.states.size() + b.states.size(), states_seen) << "a callback ran after close()";
  };
  one_round();  // GStreamer's first use starts threads and opens files of its own, once
  io_.poll();
  const auto threads = count_entries("/proc/self/task");
  const auto descriptors = count_entries("/proc/self/fd");
  for (int i = 0; i < 50; ++i) {
    one_round();
    if (HasFatalFailure()) {
      return;
    }
  }
  io_.poll();
  // Threads of the pipelines end asynchronously after their state goes to NULL; give them a moment.
  run_until([&] { return count_entries("/proc/self/task") <= threads; }, seconds{5});
  EXPECT_LE(count_entries("/proc/self/task"), threads);
  EXPECT_LE(count_entries("/proc/self/fd"), descriptors);
}

}  // namespace
}  // namespace peernet::lib
