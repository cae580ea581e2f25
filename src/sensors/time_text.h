#pragma once

// Times and durations as people type and read them on the command line.

#include <optional>
#include <string>
#include <string_view>

#include "sensors/reading.h"

namespace peernet::sensors {

/// A duration: "90" or "90s", "5m", "2h", "7d", decimals allowed ("1.5h"); nullopt when it is
/// not one, negative, or longer than 100 years.
std::optional<Millis> parse_duration(std::string_view text);

/// A moment, relative to `now`:
/// - "now"; "-2h" or "2h" (that long ago: the unit is needed); "@1764412800" (seconds since
///   the epoch);
/// - "2026-11-29T10:00:00Z", "2026-11-29T10:00:00.250+01:00" (ISO 8601 with a zone);
/// - "2026-11-29T10:00", "2026-11-29 10:00:00", "2026-11-29" (no zone: local time).
/// nullopt when it is none of these.
std::optional<Millis> parse_time(std::string_view text, Millis now);

/// The end of a range, exclusive: the moment after parse_time's, or for a date alone
/// ("2026-11-29") the end of that day, so that "--to 2026-11-30" takes in all of the 30th.
std::optional<Millis> parse_end_time(std::string_view text, Millis now);

/// "2026-11-29T10:00:00.000Z".
std::string format_utc(Millis time);
/// "10:00:05" in local time, for a terminal.
std::string format_local_clock(Millis time);

}  // namespace peernet::sensors
