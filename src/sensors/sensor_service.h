#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <peernet/peernet.h>

#include "sensors/history.h"
#include "sensors/sources.h"
#include "sensors/wire.h"

namespace peernet::sensors {

class SensorSession;

/// The serving side of the sensor protocol: reads every source once per interval on a thread of
/// its own, records the readings in the history, and answers each "sensors" channel attached to
/// it with the history it asks for, then the live readings.
class SensorService {
 public:
  struct Options {
    Millis interval = 5000;
    /// The wall clock, in ms since the epoch; tests pass their own.
    std::function<Millis()> now;
  };

  /// Serves `sources` (at least one), recording into `history`, which must outlive the service.
  SensorService(std::vector<std::unique_ptr<Source>> sources, History& history, Options options);
  /// Stops the reading thread. Destroy the Client that calls attach() first.
  ~SensorService();
  SensorService(const SensorService&) = delete;
  SensorService& operator=(const SensorService&) = delete;

  const std::vector<SensorInfo>& sensors() const noexcept { return sensors_; }
  Millis interval() const noexcept { return options_.interval; }

  /// Reads every `interval` ms, on the multiples of it (so that two servers with the same
  /// interval read at the same moments), until stop() or destruction.
  void start();
  void stop();
  /// One round of reads at `now`: records each reading and sends it to the live subscribers.
  /// The reading thread calls it; tests may call it instead of start().
  std::vector<Reading> read_round(Millis now);

  /// Keeps `connection` open and answers each "sensors" channel its peer opens. Call on the
  /// client's thread, from ServeHandlers::connection; `peer` names the other side in logs.
  void attach(const std::shared_ptr<Connection>& connection, const std::string& peer);

  /// Subscribers now attached (tests, logs).
  std::size_t subscribers() const;

 private:
  friend class SensorSession;
  /// Takes the history `session` asked for and makes it a live subscriber, at one moment with
  /// respect to the rounds, so that each reading reaches it exactly once.
  void subscribe(SensorSession& session, const Subscribe& request);

  struct Tracked {
    std::unique_ptr<Source> source;
    bool stale = false;               // the last read failed (logged once per change)
    std::optional<Millis> last_read;  // for Source::min_period()
  };

  static constexpr Millis kExpiryPeriod = Millis{3600} * 1000;

  std::vector<Tracked> sources_;
  std::vector<SensorInfo> sensors_;
  History& history_;
  Options options_;
  Millis last_expiry_ = 0;  // the reading thread's only

  // Guards the rounds' recording and the sessions' subscription (see subscribe()), and sessions_.
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<SensorSession>> sessions_;
  std::optional<Millis> last_round_;  // the time of the last round recorded
  bool clock_warned_ = false;
  // Touched on the client's thread only.
  std::vector<std::shared_ptr<Connection>> connections_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread reader_;
};

}  // namespace peernet::sensors
