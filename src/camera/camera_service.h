#pragma once

// The camera protocol ("peernet.camera" version 1) on libpeernet:
// - the viewer knocks asking for video (Client::connect with VideoIn) and opens a "camera"
//   channel; the server answers with a VP8 track fed by the shared CameraSource;
// - on the channel, text messages in JSON. The viewer sends {"type":"snapshot"}; the server
//   answers {"type":"snapshot","bytes":N} and then the JPEG in binary messages of at most
//   64 KiB, or {"type":"error","message":"..."}. One snapshot at a time per channel. The viewer
//   sends {"type":"ping"} every kPingInterval; the server answers nothing.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <peernet/peernet.h>

#include "camera/camera_source.h"

namespace peernet::camera {

inline constexpr std::string_view kProtocol = "peernet.camera";
inline constexpr std::string_view kVersion = "1";
inline constexpr std::string_view kChannelLabel = "camera";
/// A viewer says something on its channel at least this often ({"type":"ping"}; KeepAlive)...
inline constexpr std::chrono::seconds kPingInterval{5};
/// ...and the camera closes a viewer it has not heard from for this long: one that vanished
/// without a word, which ICE alone would not notice (webrtcbin's agent has no consent checks).
inline constexpr std::chrono::seconds kSilenceLimit{15};

/// The serving side: admits viewers up to a limit, feeds each one the source's frames, and
/// answers snapshot requests on a thread of its own (a JPEG takes tens of milliseconds).
class CameraService {
 public:
  static constexpr std::size_t kDefaultMaxViewers = 8;

  CameraService(CameraSource& source, std::size_t max_viewers = kDefaultMaxViewers);
  /// Stops the snapshot thread: call it before the Client that calls attach() is destroyed,
  /// since the thread uses its channels and connections. The destructor calls it.
  void stop();
  ~CameraService();
  CameraService(const CameraService&) = delete;
  CameraService& operator=(const CameraService&) = delete;

  /// The service as the server advertises it: protocol, version, codec, size, frame rate.
  Service describe() const;
  /// The verdict on a knock (ServeHandlers::screen): accepted with video, unless the camera
  /// has its limit of viewers.
  Verdict screen(const Knock& knock);
  /// Feeds `connection` the video and answers its "camera" channels. On the client's thread,
  /// from ServeHandlers::connection.
  void attach(const std::shared_ptr<Connection>& connection, const std::string& peer);
  /// Viewers connected now.
  std::size_t viewers() const;

 private:
  /// A viewer's connection and when it last said something.
  struct Watched {
    std::weak_ptr<Connection> connection;
    std::shared_ptr<std::atomic<std::int64_t>> heard;  // steady_clock ticks
    std::string peer;
  };

  /// Queues a snapshot for `channel`; false when one is queued for it already.
  bool answer(const std::weak_ptr<Channel>& channel);
  void send_snapshot(const std::weak_ptr<Channel>& to);
  /// viewers(), with mutex_ held.
  std::size_t viewers_locked() const;
  /// Snapshots as they are asked for, and once a second, the viewers gone silent closed.
  void run(const std::stop_token& stop);
  void close_silent();

  CameraSource& source_;
  std::size_t max_viewers_;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  std::vector<Watched> connections_;
  std::vector<std::shared_ptr<Channel>> channels_;  // the viewers' "camera" channels, open
  std::deque<std::weak_ptr<Channel>> snapshot_queue_;
  std::deque<std::chrono::steady_clock::time_point> reserved_;  // knocks accepted, not yet open
  std::jthread snapshot_thread_;                                // last: stops first
};

/// The viewing side's ping: {"type":"ping"} on `channel` every kPingInterval, from a thread of
/// its own, for as long as this object lives.
class KeepAlive {
 public:
  explicit KeepAlive(std::shared_ptr<Channel> channel);
  KeepAlive(const KeepAlive&) = delete;
  KeepAlive& operator=(const KeepAlive&) = delete;
  ~KeepAlive() = default;

 private:
  std::jthread thread_;
};

/// The viewing side of a snapshot: asks on `channel` (open, with no other use meanwhile) and
/// returns the JPEG. Throws Error: kClosed when the channel closes, kRefused with the server's
/// message, kNoAnswer after `timeout`, kInvalid when the answer breaks the protocol.
std::vector<std::byte> fetch_snapshot(Channel& channel, std::chrono::milliseconds timeout);

}  // namespace peernet::camera
