#include "sensors/reading.h"

namespace peernet::sensors {

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
