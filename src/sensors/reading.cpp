#include "sensors/reading.h"

#include <algorithm>
#include <chrono>

#include "common/id_chars.h"

namespace peernet::sensors {

Millis wall_clock() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool valid_sensor_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= kMaxSensorIdBytes &&
         std::all_of(id.begin(), id.end(), is_id_char);
}

std::string_view kind_name(Kind kind) noexcept {
  switch (kind) {
    case Kind::kTemperature:
      return "temperature";
    case Kind::kHumidity:
      return "humidity";
  }
  return "temperature";
}

std::optional<Kind> kind_from_name(std::string_view name) noexcept {
  if (name == "temperature") {
    return Kind::kTemperature;
  }
  if (name == "humidity") {
    return Kind::kHumidity;
  }
  return std::nullopt;
}

std::string_view unit_of(Kind kind) noexcept { return kind == Kind::kHumidity ? "%RH" : "°C"; }

std::string_view quality_name(Quality quality) noexcept {
  return quality == Quality::kOk ? "ok" : "stale";
}

}  // namespace peernet::sensors
