#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include <peernet/peernet.h>

#include "sensors/wire.h"

namespace peernet::sensors {

/// The watching side of the sensor protocol over one connection's "sensors" channel: sends the
/// subscription, then hands over the server's messages in order, checked, to a thread that
/// waits for them (never a libpeernet callback).
class SensorFeed {
 public:
  /// Subscribes on the connection's first channel (open it with kChannelLabel). Throws
  /// Error(kClosed) when it is closed already.
  SensorFeed(std::shared_ptr<Connection> connection, const Subscribe& request);
  ~SensorFeed();
  SensorFeed(const SensorFeed&) = delete;
  SensorFeed& operator=(const SensorFeed&) = delete;

  /// The next message (Hello, Readings, Rollups, HistoryEnd or Failure), waiting up to
  /// `timeout`; nullopt when none came. Throws Error(kClosed) once the connection is gone and
  /// everything before was taken, and WireError for a message that breaks the protocol.
  std::optional<Message> next(std::chrono::milliseconds timeout);

 private:
  struct Inbox;
  std::shared_ptr<Connection> connection_;
  std::shared_ptr<Channel> channel_;
  std::shared_ptr<Inbox> inbox_;
};

}  // namespace peernet::sensors
