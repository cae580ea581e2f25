#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "loop.h"
#include "peernet/peernet.h"
#include "signaling/signaling_client.h"
#include "webrtc/rtc_peer.h"

namespace peernet::lib {

/// A Channel for users: the RtcChannel, reached through the loop from any thread.
class ChannelHandle final : public Channel {
 public:
  ChannelHandle(std::shared_ptr<Loop> loop, std::shared_ptr<RtcChannel> channel);
  ~ChannelHandle() override;

  std::string label() const override;
  bool is_open() const override;
  bool send(std::span<const std::byte> message) override;
  bool send_text(std::string_view text) override;
  std::uint64_t buffered_amount() const override;
  void set_buffered_amount_low_threshold(std::uint64_t bytes) override;
  void on_open(std::function<void()> callback) override;
  void on_message(std::function<void(std::span<const std::byte>, bool)> callback) override;
  void on_buffered_amount_low(std::function<void()> callback) override;
  void on_close(std::function<void()> callback) override;
  void close() override;
  /// For the connection's own use: called when the channel opens, before the user's on_open.
  void when_open(std::function<void()> callback);

 private:
  void update(const std::function<void(RtcChannel::Events&)>& change);

  std::shared_ptr<Loop> loop_;
  std::shared_ptr<RtcChannel> channel_;
  RtcChannel::Events events_;  // on the loop
  std::function<void()> user_open_;
  std::function<void()> internal_open_;
};

/// One peer connection and what it takes to set it up over peernetd, for either side. Lives on
/// the loop; the public members hop there.
class ConnectionImpl final : public Connection,
                             public std::enable_shared_from_this<ConnectionImpl> {
 public:
  enum class Role { kKnocker, kServer };

  ConnectionImpl(std::shared_ptr<Loop> loop, std::shared_ptr<SignalingClient> signaling, Role role,
                 std::chrono::seconds poll_wait);
  ~ConnectionImpl() override;

  /// Makes the RtcPeer; on the loop.
  Status start(const RtcConfig& config);

  // The knocking side, on the loop: offer, knock, take the answer, open. `done` gets the
  // outcome once: success when the connection is open.
  void knock(const Server& server, const std::string& protocol, const std::string& version,
             const std::vector<std::string>& channels, std::optional<VideoIn> video,
             std::chrono::seconds timeout, std::function<void(Status)> done);

  // The serving side, on the loop: answer `knock` and hand the answer to `send` (with the
  // candidates gathered by then); `opened` when the connection is open, or failed.
  void answer(const Knock& knock, const std::string& server_token, std::optional<VideoOut> video,
              std::function<void(Result<UpdateKnockRequest>)> send,
              std::function<void(Status)> opened, std::chrono::seconds timeout);
  /// Candidates of the knocker that arrived in the serving side's poll.
  void add_remote_candidates(const Knock& knock);

  // Connection
  const Knock& knock() const override { return knock_; }
  std::shared_ptr<Channel> open_channel(const std::string& label) override;
  std::vector<std::shared_ptr<Channel>> channels() const override;
  void on_channel(std::function<void(std::shared_ptr<Channel>)> callback) override;
  void on_closed(std::function<void(const Error&)> callback) override;
  bool is_open() const override;
  void close() override;
  std::shared_ptr<VideoSender> video_sender() const override;
  void request_keyframe() override;

 private:
  /// A callback that runs `method` on this connection if it is still alive: webrtcbin's and
  /// the signaling client's callbacks may come after it is gone.
  template <class... Args>
  auto guarded(void (ConnectionImpl::*method)(Args...)) {
    return [weak = weak_from_this(), method](Args... args) {
      if (auto self = weak.lock()) {
        ((*self).*method)(std::forward<Args>(args)...);
      }
    };
  }

  // Either side.
  void on_local_candidate(const IceCandidateLine& line);
  void on_state(RtcPeer::State state);
  void on_remote_channel(std::shared_ptr<RtcChannel> channel);
  void on_video_frame(std::vector<std::byte> frame, bool keyframe);
  void on_keyframe_wanted();
  void start_open_timer(std::chrono::seconds timeout);
  void on_open_timer(boost::system::error_code ec);
  /// Sends the offer or the answer once ICE gathering is complete, or after a short bound
  /// (the rest trickle).
  void signal_when_gathered();
  void on_gather_timer(boost::system::error_code ec);
  void signal();
  void add_candidates(const google::protobuf::RepeatedPtrField<IceCandidate>& candidates);
  void send_late_candidates();
  void on_candidates_sent(const Result<UpdateKnockResponse>& response);
  void settle(Status status);
  void fail(const Error& error);

  // The knocking side, in order.
  void on_offer(Result<std::string> offer);
  void send_knock();
  void on_knocked(Result<CreateKnockResponse> response);
  void take_knock_reply(const Knock& reply);
  void on_answer_accepted(Status status);
  void wait_for_answer();
  void on_knock_read(Result<Knock> reply);
  void on_first_channel_open();

  // The serving side, in order.
  void on_answer_made(Result<std::string> answer);
  void send_answer();

  std::shared_ptr<Loop> loop_;
  std::shared_ptr<SignalingClient> signaling_;
  Role role_;
  std::chrono::seconds poll_wait_;
  std::shared_ptr<RtcPeer> peer_;
  Knock knock_;
  std::string token_;  // the knock's token (knocker) or the server's (serving side)
  std::uint64_t revision_ = 0;

  std::vector<IceCandidate> local_candidates_;
  std::size_t candidates_sent_ = 0;
  bool gathered_ = false;
  bool signaled_ = false;  // the offer or answer is at peernetd: later candidates trickle
  bool trickling_ = false;
  bool awaiting_gathering_ = false;  // the offer or answer waits for gathering to complete
  std::chrono::seconds timeout_{0};
  std::function<void(Result<UpdateKnockRequest>)> send_answer_;  // the serving side's, once
  std::string answer_sdp_;                                       // made, waiting for gathering
  boost::asio::steady_timer gather_timer_;
  boost::asio::steady_timer open_timer_;

  std::function<void(Status)> settled_;  // set up until open or failed
  std::vector<std::shared_ptr<ChannelHandle>> own_channels_;
  bool answered_ = false;
  bool remote_complete_ = false;
  std::vector<std::shared_ptr<Channel>> early_remote_channels_;
  std::function<void(std::shared_ptr<Channel>)> on_channel_;
  std::function<void(const Error&)> on_closed_;
  std::optional<VideoIn> video_in_;    // the knocking side's, when it asked for video
  std::optional<VideoOut> video_out_;  // the serving side's, when its verdict sends video
  std::shared_ptr<VideoSender> video_sender_;
  bool open_ = false;
  bool closed_ = false;
};

}  // namespace peernet::lib
