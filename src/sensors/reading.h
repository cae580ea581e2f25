#pragma once

// The sensor application's vocabulary: what a sensor is and what one reading of it says.
// Times are milliseconds since the Unix epoch (UTC), as they go on the wire and to disk.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace peernet::sensors {

/// Milliseconds since the Unix epoch, UTC.
using Millis = std::int64_t;

/// The longest sensor id.
inline constexpr std::size_t kMaxSensorIdBytes = 128;

/// True for a sensor id: 1 to kMaxSensorIdBytes of A-Z a-z 0-9 . _ ~ - (so that it goes on the
/// wire, and to disk between spaces, as it is).
bool valid_sensor_id(std::string_view id) noexcept;

/// The wall clock, now.
Millis wall_clock() noexcept;

/// What a sensor measures.
enum class Kind { kTemperature, kHumidity };

/// "temperature" or "humidity": the names used on the wire, in files and on the command line.
std::string_view kind_name(Kind kind) noexcept;
/// The kind named `name`, or nullopt.
std::optional<Kind> kind_from_name(std::string_view name) noexcept;
/// "°C" for temperatures, "%RH" for relative humidity.
std::string_view unit_of(Kind kind) noexcept;

/// One sensor a server reads.
struct SensorInfo {
  std::string id;  ///< stable on this server: "hwmon-coretemp-temp1", "w1-28-000005e2fdc3"
  Kind kind = Kind::kTemperature;
  std::string unit;    ///< unit_of(kind)
  std::string name;    ///< for people: "Outside", "coretemp Package id 0"
  std::string source;  ///< "hwmon", "iio", "w1" or "simulated"

  bool operator==(const SensorInfo&) const = default;
};

/// Whether a reading can be trusted.
enum class Quality { kOk, kStale };

std::string_view quality_name(Quality quality) noexcept;  ///< "ok" or "stale"

/// One reading. A stale reading (the read failed, or the sensor said nothing new) carries no
/// value: a failed read is never reported as 0, nor an old value as new.
struct Reading {
  std::string sensor;           ///< SensorInfo::id
  Millis time = 0;              ///< when it was read
  std::optional<double> value;  ///< in the sensor's unit; empty when stale

  Quality quality() const noexcept { return value ? Quality::kOk : Quality::kStale; }
  bool operator==(const Reading&) const = default;
};

}  // namespace peernet::sensors
