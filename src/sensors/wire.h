#pragma once

// The sensor protocol ("peernet.sensor", version 1) on a data channel labelled "sensors".
//
// Every message is a JSON text object with an "op". The watching side sends one "subscribe":
// which sensors, how much history at which resolution, and whether live readings should follow.
// The serving side answers "sensors" (what it has), the history in "readings" or "rollups"
// messages of at most kBatchBytes each, "history-end", then (when asked) a "readings" message
// with "live": true after every round of reads. docs/sensors.md has the exchange; decode()
// treats every message as hostile.

#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sensors/history.h"
#include "sensors/reading.h"

namespace peernet::sensors {

inline constexpr std::string_view kProtocol = "peernet.sensor";
inline constexpr std::string_view kVersion = "1";
inline constexpr std::string_view kChannelLabel = "sensors";
/// History travels in messages of about this many bytes of JSON (a data channel carries 64 KiB).
inline constexpr std::size_t kBatchBytes = std::size_t{48} * 1024;
/// A subscribe names at most this many sensors.
inline constexpr std::size_t kMaxSensors = 256;

/// The history a subscriber asks for: from <= time < to, at `resolution`.
struct HistoryRequest {
  Millis from = 0;
  Millis to = 0;
  Resolution resolution = Resolution::kRaw;
};

/// "subscribe" (watcher -> server).
struct Subscribe {
  std::vector<std::string> sensors;  ///< empty: all
  std::optional<HistoryRequest> history;
  bool live = true;
};

/// "sensors" (server -> watcher): the answer's first message.
struct Hello {
  std::vector<SensorInfo> sensors;
  Millis interval = 0;  ///< time between two rounds of reads
};

/// "readings" (server -> watcher): history (live false) or one round of reads (live true).
struct Readings {
  std::vector<Reading> readings;
  bool live = false;
};

/// "rollups" (server -> watcher): history at 5m or 1h.
struct Rollups {
  Resolution resolution = Resolution::kFiveMinutes;
  std::vector<Rollup> rows;
};

/// "history-end" (server -> watcher): the history asked for has all been sent.
struct HistoryEnd {};

/// "error": the request broke the protocol ("bad-request") or cannot be served.
struct Failure {
  std::string code;
  std::string message;
};

using Message = std::variant<Subscribe, Hello, Readings, Rollups, HistoryEnd, Failure>;

/// A message from the peer that breaks the protocol; what() says how.
class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string encode(const Message& message);
/// Parses one text message. Throws WireError: not JSON, not an object, unknown "op", a missing
/// or mistyped field, a bad sensor id, a value that is not finite, from > to.
Message decode(std::string_view text);

/// `readings` as "readings" messages of at most about kBatchBytes each, oldest first.
std::vector<std::string> encode_readings(std::span<const Reading> readings, bool live);
/// `rows` as "rollups" messages of at most about kBatchBytes each.
std::vector<std::string> encode_rollups(Resolution resolution, std::span<const Rollup> rows);

}  // namespace peernet::sensors
