#pragma once

// libpeernet: find a service in a room of peernetd and open a WebRTC connection to it, or
// advertise services and accept the connections that knock. Nothing of GStreamer, Boost or
// spdlog shows here; the schema's messages (peernet.pb.h) are the vocabulary.
//
// Threads: a Client runs one thread of its own. Every callback runs on it, one at a time, and
// must not block; a Connection's or Channel's members may be called from any thread (from a
// callback they act at once, from elsewhere they hop onto the client's thread and wait).
// Callbacks never run after the object that holds them is closed or destroyed.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "peernet.pb.h"
#include "peernet/error.h"

namespace peernet {

/// Where peernetd is and how to reach peers.
struct ClientOptions {
  /// "http://host[:port]" or "https://host[:port]"; the port defaults to 8470.
  std::string daemon = "http://127.0.0.1:8470";
  /// The room to work in. peernetd makes one room by itself, "default" unless its
  /// default_room option names another.
  std::string room = "default";
  /// For https: a PEM file to trust (peernetd's own certificate), or the SHA-256 fingerprint
  /// peernetd logs at start. With neither, the system's certificate authorities.
  std::string tls_ca_file;
  std::string tls_pin_sha256;
  /// ICE servers: none are needed on one network. "stun://host:port"; TURN relays as
  /// "turn://user:password@host:port".
  std::string stun_server;
  std::vector<std::string> turn_servers;
  /// Gather candidates on 127.0.0.1 only: both peers on this machine (tests, demos).
  bool loopback_only = false;
  /// How long one long-poll waits at peernetd before it is renewed.
  std::chrono::seconds poll_wait{30};
  /// How long connect() waits for an answer and then for the connection to open.
  std::chrono::seconds connect_timeout{30};
};

/// A reliable, ordered data channel. Messages are at most kMaxMessageBytes.
class Channel {
 public:
  static constexpr std::size_t kMaxMessageBytes = std::size_t{64} * 1024;

  virtual ~Channel() = default;
  virtual std::string label() const = 0;
  virtual bool is_open() const = 0;
  /// Queues a message; false when the channel is not open, or the message is empty (webrtcbin
  /// cannot send one) or larger than kMaxMessageBytes.
  virtual bool send(std::span<const std::byte> message) = 0;
  virtual bool send_text(std::string_view text) = 0;
  /// Bytes queued and not yet sent: keep it bounded (see on_buffered_amount_low).
  virtual std::uint64_t buffered_amount() const = 0;
  /// on_buffered_amount_low fires when the queue falls to `bytes` or below.
  virtual void set_buffered_amount_low_threshold(std::uint64_t bytes) = 0;

  virtual void on_open(std::function<void()> callback) = 0;
  /// A message as sent: binary, or text when `text` is true.
  virtual void on_message(std::function<void(std::span<const std::byte>, bool text)> callback) = 0;
  virtual void on_buffered_amount_low(std::function<void()> callback) = 0;
  virtual void on_close(std::function<void()> callback) = 0;
  virtual void close() = 0;
};

/// One encoded VP8 video frame.
struct VideoFrame {
  std::span<const std::byte> data;
  /// A frame a decoder can start on; the others depend on the frames before them.
  bool keyframe = false;
};

/// The sending end of a connection's video track (Connection::video_sender()). send() may be
/// called from any thread, typically the encoder's.
class VideoSender {
 public:
  virtual ~VideoSender() = default;
  /// Queues one encoded frame. Frames are dropped until the connection is open, and then until
  /// a keyframe, since a decoder can start on nothing else. A full queue (the network slower
  /// than the encoder) drops its oldest frames. False once the connection is closed.
  virtual bool send(const VideoFrame& frame) = 0;
};

/// The serving side's video track on a connection: see Verdict::video.
struct VideoOut {
  /// Runs on the client's thread whenever the other side needs a keyframe: once the connection
  /// is up, and when it lost packets. Ask the encoder for one; must not block.
  std::function<void()> keyframe_wanted;
};

/// The knocking side's wish for the other side's video: see Client::connect.
struct VideoIn {
  /// Each frame of the other side's video track, in order, on the client's thread. Frames
  /// come from the first keyframe on. Must not block.
  std::function<void(const VideoFrame&)> frame;
};

/// An open WebRTC connection to one peer.
class Connection {
 public:
  virtual ~Connection() = default;
  /// The knock that made this connection (its protocol and version, the server it was for).
  virtual const Knock& knock() const = 0;
  /// A new channel; the other side gets it through on_channel.
  virtual std::shared_ptr<Channel> open_channel(const std::string& label) = 0;
  /// The channels this side asked for in connect(), in that order (empty on the serving side).
  virtual std::vector<std::shared_ptr<Channel>> channels() const = 0;
  /// Channels the other side opens. Set it before they can arrive: in the on_connection
  /// callback, or right after connect() for channels opened later.
  virtual void on_channel(std::function<void(std::shared_ptr<Channel>)> callback) = 0;
  /// The connection ended: closed by the other side, or lost (Errc::kIceFailed).
  virtual void on_closed(std::function<void(const Error&)> callback) = 0;
  virtual bool is_open() const = 0;
  virtual void close() = 0;
  /// The video track this side sends (the serving side, when its Verdict asked for one and
  /// the knock's offer wants video); null otherwise.
  virtual std::shared_ptr<VideoSender> video_sender() const = 0;
  /// Asks the other side for a keyframe of the video this side receives (a recorder starting
  /// a new file, a decoder that lost its way). Any thread; nothing when there is no video.
  virtual void request_keyframe() = 0;
};

/// What the serving side decides about a knock: accept, or refuse with a reason the knocker sees.
struct Verdict {
  bool accept = true;
  std::string reason;
  /// Set to send a video track on the connection, when the knock's offer asks for video.
  std::optional<VideoOut> video;
  static Verdict accepted() { return {}; }
  static Verdict refused(std::string why) { return {false, std::move(why), std::nullopt}; }
  static Verdict accepted_with_video(VideoOut out) { return {true, {}, std::move(out)}; }
};

/// The serving side's callbacks.
struct ServeHandlers {
  /// Decides on each knock (default: accept all).
  std::function<Verdict(const Knock&)> screen;
  /// An accepted knock whose connection is open.
  std::function<void(std::shared_ptr<Connection>)> connection;
  /// Registration and peernetd's reachability: nullopt when registered (again), else why not
  /// (the client keeps retrying; it never gives up by itself).
  std::function<void(const std::optional<Error>&)> status;
};

/// A client of one peernetd, in one room.
class Client {
 public:
  explicit Client(ClientOptions options);
  /// Stops serving, closes every connection (no callback runs afterwards), ends the thread.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const;

  /// The servers of the room offering `protocol` (and `version`, when not empty). Throws Error:
  /// kRoomNotFound, kUnreachable, kDaemon. Blocking; not from a callback.
  std::vector<Server> find(const std::string& protocol, const std::string& version = {});

  /// Knocks on `server` for `protocol` and returns the open connection, with one channel for
  /// each of `channels` (at least one; the first is negotiated with the offer). Throws Error:
  /// kNotFound (no such server), kNoSuchService, kRefused (with the server's reason), kNoAnswer,
  /// kIceFailed, kUnreachable. Blocking; not from a callback.
  std::shared_ptr<Connection> connect(const Server& server, const std::string& protocol,
                                      const std::vector<std::string>& channels = {"peernet"});
  /// connect(), asking in the offer for the server's VP8 video, whose frames go to `video`.
  /// The connection is open, as ever, once the first channel is; video follows as the server
  /// sends it.
  std::shared_ptr<Connection> connect(const Server& server, const std::string& protocol,
                                      const std::vector<std::string>& channels, VideoIn video);

  /// Registers `server` (its id, display name and services; the room is the client's) and
  /// answers knocks until stop_serving() or destruction. Re-registers by itself after peernetd
  /// restarts or the registration expires. Returns once the first registration is done; throws
  /// Error (kRoomNotFound, kUnreachable, kDaemon, kInvalid) if it fails. `token`, the token()
  /// of an earlier registration of the same id (kept by a process that restarted), takes that
  /// registration over at once instead of waiting for it to expire.
  void serve(const Server& server, ServeHandlers handlers, const std::string& token = {});
  /// The current registration's secret token (empty when not serving). Whoever holds it can
  /// withdraw or take over the registration: keep it where only its owner can read it.
  std::string token() const;
  /// Withdraws the registration; open connections stay open.
  void stop_serving();

  /// HTTP requests sent to peernetd so far.
  std::uint64_t requests_sent() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace peernet
