#pragma once

// The sensor server's small config: friendly names and sensors to leave out. Optional; with
// none, every sensor found is served under the name discovery gave it.
//
//   # ~/.config/peernet/sensors.toml
//   [sensors.hwmon-coretemp-temp1]
//   name = "CPU"
//   [sensors.w1-28-000005e2fdc3]
//   name = "Outside"
//   offset = -0.4        # calibration, added to every reading
//   [sensors.sim-humidity]
//   ignore = true

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "sensors/sources.h"

namespace peernet::sensors {

struct SensorOverride {
  std::optional<std::string> name;
  double offset = 0;  ///< added to every value read
  bool ignore = false;
};

struct SensorsConfig {
  std::map<std::string, SensorOverride, std::less<>> sensors;  ///< by sensor id
};

/// Thrown for a config that cannot be used; what() names the file, the line and the problem.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Reads `file`. Unknown keys, wrong types, an empty name or a non-finite offset are errors.
SensorsConfig load_sensors_config(const std::filesystem::path& file);

/// Applies `config` to `sources`: drops the ignored ones, renames, wraps offsets (a failed read
/// stays failed; humidity stays within 0 to 100 %RH). Ids in the config that match no sensor
/// are returned, in order, so that the caller can warn about them.
std::vector<std::string> apply_sensors_config(const SensorsConfig& config,
                                              std::vector<std::unique_ptr<Source>>& sources);

}  // namespace peernet::sensors
