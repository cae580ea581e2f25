#pragma once

// Alerts on the watching side: thresholds with hysteresis and a minimum duration, and a sensor
// going stale. Pure logic over the readings it is fed, with their own times; no clock of its own.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sensors/reading.h"

namespace peernet::sensors {

/// "outside>30", "temperature<0,hysteresis=0.5,for=5m": the value must stay past the
/// threshold for `for` before the alert is raised, and come back past threshold ∓ hysteresis
/// (for as long) before it clears. SENSOR is a sensor id, a sensor name (ASCII case ignored),
/// or a kind ("temperature", "humidity") for every sensor of that kind.
struct AlertRule {
  enum class Op { kAbove, kBelow };
  std::string sensor;
  Op op = Op::kAbove;
  double threshold = 0;
  double hysteresis = 0;
  Millis min_duration = 0;
  std::string text;  ///< as written, for messages

  /// Parses the syntax above; durations are "90", "90s", "5m", "2h" (seconds by default).
  /// Throws std::invalid_argument naming the problem.
  static AlertRule parse(std::string_view text);
  bool matches(const SensorInfo& sensor) const;
};

struct AlertEvent {
  enum class Type { kRaised, kCleared, kStale, kRecovered };
  Type type = Type::kRaised;
  std::string sensor;           ///< id
  std::string sensor_name;      ///< for people: the name (the id if it has none), one line
  Millis time = 0;              ///< of the reading that decided it
  std::optional<double> value;  ///< that reading's value
  std::string unit;
  std::string rule;  ///< AlertRule::text; empty for kStale and kRecovered
  /// One line for people, without a clock time (the caller adds one): "ALERT Outside 31.2 °C
  /// > 30 (for 60 s)", "CLEARED Outside 28.9 °C (rule Outside>30)", "STALE Outside: no reading
  /// for 2 min", "RECOVERED Outside 22.4 °C".
  std::string message;
};

std::string_view event_type_name(AlertEvent::Type type) noexcept;  ///< "raised", "cleared", ...

/// Follows each sensor's readings and says when an alert starts or ends.
class AlertTracker {
 public:
  /// `stale_after`: a sensor whose readings have been stale (or absent, see tick) this long
  /// raises kStale; its next ok reading raises kRecovered.
  AlertTracker(std::vector<AlertRule> rules, Millis stale_after);

  /// Feeds one reading of `sensor` (tracked by sensor.id); returns what it starts or ends, in
  /// order (kRecovered before the rules' events). A NaN or infinite value counts as stale; a
  /// reading older than one already fed for the sensor is ignored.
  std::vector<AlertEvent> feed(const SensorInfo& sensor, const Reading& reading);
  /// Says that no reading has come as late as `now` (a lost connection): each sensor fed so far
  /// whose last ok reading (or first reading, if none was ok) is stale_after or more before
  /// `now` goes stale, once. Sensors never fed are unknown here.
  std::vector<AlertEvent> tick(Millis now);

  /// Sensors tracked at most; readings of further sensors are ignored (a hostile peer could
  /// otherwise advertise millions).
  static constexpr std::size_t kMaxSensors = 1024;
  /// Sensor ids longer than this are ignored; names and units are cut to it in messages.
  static constexpr std::size_t kMaxIdBytes = 256;

 private:
  /// Where one (sensor, rule) pair stands.
  enum class Phase { kNormal, kPending, kRaised, kClearing };
  struct RuleState {
    Phase phase = Phase::kNormal;
    Millis since = 0;  ///< when kPending or kClearing began
  };
  struct SensorState {
    std::string name;  ///< for people, as last fed (cut to kMaxIdBytes)
    std::string unit;
    Millis last_time = 0;          ///< of the newest reading accepted: older ones are ignored
    Millis stale_from = 0;         ///< of the last ok reading, or the first reading if none was ok
    bool stale = false;            ///< kStale raised and not yet recovered
    std::vector<RuleState> rules;  ///< by index into rules_
  };

  std::vector<AlertRule> rules_;
  Millis stale_after_;
  std::map<std::string, SensorState, std::less<>> sensors_;  ///< by SensorInfo::id
};

/// Which way a sensor is heading over the readings given (oldest first, ok ones used): the
/// least-squares slope in units per hour, or nullopt with fewer than 3 ok readings spanning at
/// least a minute.
std::optional<double> slope_per_hour(const std::vector<Reading>& readings);

/// "↑", "↓" or "→" for a slope (per hour) against `steady` (its magnitude below which the
/// sensor counts as steady: 0.5 °C/h or 2 %RH/h suit home sensors); "·" with no slope.
std::string_view trend_arrow(std::optional<double> slope, double steady);

}  // namespace peernet::sensors
