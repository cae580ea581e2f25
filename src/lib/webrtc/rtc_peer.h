#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "peernet/peernet.h"
#include "result.h"

namespace peernet::lib {

/// One ICE candidate line as WebRTC trickles it. An empty `candidate` means "no more".
struct IceCandidateLine {
  std::string candidate;
  std::string mid;
  int mline_index = 0;
};

/// What a peer connection needs to know of the network.
struct RtcConfig {
  /// "stun://host:port"; webrtcbin takes one.
  std::string stun_server;
  /// "turn://user:password@host:port" or "turns://..."; any number.
  std::vector<std::string> turn_servers;
  /// Gather 127.0.0.1 only (libnice ignores the loopback interface otherwise): for two peers on
  /// one machine with no other interface, and for tests.
  bool loopback_only = false;
};

/// The largest message a channel sends: neither webrtcbin's offers nor browsers' answers carry
/// `a=max-message-size`, so both sides assume the SCTP default of 64 KiB.
inline constexpr std::size_t kMaxMessageBytes = std::size_t{64} * 1024;

/// A reliable, ordered data channel of an RtcPeer. Every member is called on the peer's executor,
/// and every callback runs there; none runs after close() or after the peer closed.
class RtcChannel {
 public:
  enum class State { kConnecting, kOpen, kClosed };
  struct Events {
    std::function<void()> open;
    /// A message, binary or text, as sent.
    std::function<void(std::span<const std::byte> message, bool text)> message;
    /// The buffered amount fell to the threshold or below.
    std::function<void()> buffered_amount_low;
    std::function<void()> closed;
  };

  virtual ~RtcChannel() = default;
  virtual const std::string& label() const = 0;
  virtual State state() const = 0;
  /// Sets the callbacks (again). `open` is called once: when the channel opens, or (posted)
  /// when it is set on a channel already open.
  virtual void set_events(Events events) = 0;
  /// Queues one message (at most kMaxMessageBytes). False when the channel is not open, or the
  /// message is too large.
  virtual bool send(std::span<const std::byte> message) = 0;
  virtual bool send_text(std::string_view text) = 0;
  /// Bytes queued and not yet handed to the network.
  virtual std::uint64_t buffered_amount() const = 0;
  virtual void set_buffered_amount_low_threshold(std::uint64_t bytes) = 0;
  virtual void close() = 0;
};

/// One WebRTC peer connection over GStreamer's webrtcbin, with data channels. Lives on one
/// single-threaded executor: every member must be called there, and every callback (including
/// the completion handlers) runs there, posted, never inline. webrtcbin's own threads only
/// post; nothing blocks on them. close() (or the last reference going) disconnects every
/// handler, stops the pipeline and frees it; no callback runs after that.
class RtcPeer {
 public:
  enum class State { kNew, kConnecting, kConnected, kFailed, kClosed };
  struct Events {
    /// A local candidate to send to the other side; empty when gathering is complete.
    std::function<void(IceCandidateLine)> local_candidate;
    /// A channel the other side opened.
    std::function<void(std::shared_ptr<RtcChannel>)> channel;
    /// The connection's state changed.
    std::function<void(State)> state;
    /// A frame of the other side's video (see receive_video), encoded, in order.
    std::function<void(std::vector<std::byte> frame, bool keyframe)> video_frame;
    /// The other side needs a keyframe of our video (see send_video): it just connected, or
    /// lost packets.
    std::function<void()> keyframe_wanted;
  };

  /// Initializes GStreamer once per process; Errc::kInvalid when webrtcbin is missing.
  static Result<std::shared_ptr<RtcPeer>> create(boost::asio::any_io_executor executor,
                                                 const RtcConfig& config, Events events);

  /// Does ahead of time, and blocking, what the first connection of a process would otherwise
  /// wait for: GStreamer's start and the DTLS certificate. GStreamer 1.22 makes one certificate
  /// per process, with a new RSA-2048 key (0.1 to 0.5 s of CPU), when its first DTLS element is
  /// made. Safe to call from any thread, and again.
  static void warm_up();

  virtual ~RtcPeer() = default;
  virtual State state() const = 0;

  /// A channel of this side, negotiated with the offer when created before create_offer().
  virtual std::shared_ptr<RtcChannel> create_channel(const std::string& label) = 0;
  /// A VP8 video track this side sends, answering an offer that asks for video (receive_video
  /// on the other side). Before answer_offer(); one per peer.
  virtual Result<std::shared_ptr<VideoSender>> send_video() = 0;
  /// Asks the other side for VP8 video in the offer: a receive-only track whose frames come to
  /// Events::video_frame. Before create_offer(); one per peer.
  virtual Status receive_video() = 0;
  /// Asks the other side's sender for a keyframe (an RTCP PLI).
  virtual void request_keyframe() = 0;

  /// Makes the offer, sets it as the local description, and hands over its SDP.
  virtual void create_offer(std::function<void(Result<std::string>)> done) = 0;
  /// Takes the other side's offer and hands over the answer (set as the local description).
  virtual void answer_offer(const std::string& offer,
                            std::function<void(Result<std::string>)> done) = 0;
  /// Takes the other side's answer to our offer.
  virtual void accept_answer(const std::string& answer, std::function<void(Status)> done) = 0;
  /// A candidate of the other side; kept until the remote description is set.
  virtual void add_remote_candidate(const IceCandidateLine& candidate) = 0;
  virtual void close() = 0;
};

}  // namespace peernet::lib
