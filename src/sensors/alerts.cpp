#include "sensors/alerts.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace peernet::sensors {

namespace {

constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;
constexpr Millis kHour = 60 * kMinute;
constexpr Millis kMaxMinDuration = Millis{7} * 24 * kHour;
// A slope needs readings spread over at least this long to mean anything.
constexpr Millis kMinSlopeSpan = kMinute;
constexpr std::size_t kMinSlopeReadings = 3;

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n\f\v";
  const auto first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(kSpace);
  return text.substr(first, last - first + 1);
}

// A whole, finite number: "30", "-2.5", "1e3". Nothing before or after it.
std::optional<double> parse_number(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

[[noreturn]] void fail(std::string_view text, std::string_view problem) {
  std::string what = "alert \"";
  what.append(text).append("\": ").append(problem);
  throw std::invalid_argument(what);
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  out.append(text).append("\"");
  return out;
}

// "90", "90s", "1.5m", "2h" (seconds without a unit), 0 to 7 days.
Millis parse_duration(std::string_view rule_text, std::string_view text) {
  std::string_view number = text;
  double unit = kSecond;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        number.remove_suffix(1);
        break;
      case 'm':
        unit = kMinute;
        number.remove_suffix(1);
        break;
      case 'h':
        unit = kHour;
        number.remove_suffix(1);
        break;
      default:
        break;
    }
  }
  const auto value = parse_number(trim(number));
  if (!value) {
    fail(rule_text, "for " + quoted(text) + " is not a duration (like 90, 90s, 5m or 2h)");
  }
  if (*value < 0) {
    fail(rule_text, "for " + quoted(text) + " is negative");
  }
  const double millis = *value * unit;
  if (millis > static_cast<double>(kMaxMinDuration)) {
    fail(rule_text, "for " + quoted(text) + " is longer than 7 days");
  }
  return static_cast<Millis>(std::llround(millis));
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_ignoring_ascii_case(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// `to - from`, saturated instead of overflowing: times come from the peer and may be anything.
Millis difference(Millis to, Millis from) {
  constexpr Millis kMax = std::numeric_limits<Millis>::max();
  constexpr Millis kMin = std::numeric_limits<Millis>::min();
  if (from > 0 && to < kMin + from) {
    return kMin;
  }
  if (from < 0 && to > kMax + from) {
    return kMax;
  }
  return to - from;
}

// Text from the peer goes into one line for people (and maybe a command's arguments): control
// characters become '?', and it is cut to `limit` bytes without splitting a UTF-8 sequence.
std::string printable(std::string_view text, std::size_t limit = AlertTracker::kMaxIdBytes) {
  if (text.size() > limit) {
    std::size_t cut = limit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) {
      --cut;  // text[cut] continues a sequence: cut before the sequence starts
    }
    text = text.substr(0, cut);
  }
  std::string out(text);
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20U || byte == 0x7FU) {
      c = '?';
    }
  }
  return out;
}

// One decimal: "31.2", "-0.5"; never "-0.0".
std::string format_value(double value) {
  std::array<char, 64> buffer{};
  const auto [ptr, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                       std::chars_format::fixed, 1);
  if (ec != std::errc{}) {
    return "?";  // only for values beyond 1e60, which a reading cannot carry
  }
  std::string out(buffer.data(), ptr);
  if (out == "-0.0") {
    out = "0.0";
  }
  return out;
}

// The shortest form that reads back the same: "30", "0.5", "-2.25".
std::string format_threshold(double value) {
  std::array<char, 64> buffer{};
  const auto [ptr, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (ec != std::errc{}) {
    return format_value(value);
  }
  return {buffer.data(), ptr};
}

// "45 s", "2 min", "3 h", "2 d": rounded, in the largest unit that keeps two digits or more.
std::string format_duration(Millis millis) {
  millis = std::max<Millis>(millis, 0);
  const auto rounded = [millis](Millis unit) {  // to nearest, without overflowing near the max
    return std::to_string(millis / unit + (millis % unit >= unit / 2 ? 1 : 0));
  };
  if (millis < 2 * kMinute) {
    return rounded(kSecond) + " s";
  }
  if (millis < 2 * kHour) {
    return rounded(kMinute) + " min";
  }
  if (millis < 48 * kHour) {
    return rounded(kHour) + " h";
  }
  return rounded(24 * kHour) + " d";
}

}  // namespace

AlertRule AlertRule::parse(std::string_view text) {
  text = trim(text);
  AlertRule rule;
  rule.text = std::string(text);

  const auto comma = text.find(',');
  const std::string_view condition = text.substr(0, comma);
  const auto op_at = condition.find_first_of("<>");
  if (op_at == std::string_view::npos) {
    fail(text, "expected SENSOR>VALUE or SENSOR<VALUE");
  }
  const std::string_view sensor = trim(condition.substr(0, op_at));
  if (sensor.empty()) {
    fail(text, "no sensor before " + quoted(condition.substr(op_at, 1)));
  }
  if (sensor.find_first_of(" \t\r\n\f\v") != std::string_view::npos) {
    fail(text, "sensor " + quoted(sensor) + " contains a space (use its id)");
  }
  rule.sensor = std::string(sensor);
  rule.op = condition[op_at] == '>' ? Op::kAbove : Op::kBelow;

  const std::string_view value = trim(condition.substr(op_at + 1));
  const auto threshold = parse_number(value);
  if (!threshold) {
    fail(text, quoted(value) + " is not a number");
  }
  rule.threshold = *threshold;

  bool have_hysteresis = false;
  bool have_for = false;
  std::string_view rest = comma == std::string_view::npos ? std::string_view{} : text.substr(comma);
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the comma
    const auto next = rest.find(',');
    const std::string_view option = trim(rest.substr(0, next));
    rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next);

    const auto equals = option.find('=');
    if (equals == std::string_view::npos) {
      fail(text, option.empty() ? std::string("empty option after a comma")
                                : quoted(option) + " is not hysteresis=H or for=D");
    }
    const std::string_view key = trim(option.substr(0, equals));
    const std::string_view argument = trim(option.substr(equals + 1));
    if (key == "hysteresis") {
      if (have_hysteresis) {
        fail(text, "hysteresis is given twice");
      }
      have_hysteresis = true;
      const auto hysteresis = parse_number(argument);
      if (!hysteresis || *hysteresis < 0) {
        fail(text, "hysteresis " + quoted(argument) + " is not a number >= 0");
      }
      rule.hysteresis = *hysteresis;
    } else if (key == "for") {
      if (have_for) {
        fail(text, "for is given twice");
      }
      have_for = true;
      rule.min_duration = parse_duration(text, argument);
    } else {
      fail(text, "unknown option " + quoted(key) + " (expected hysteresis or for)");
    }
  }
  return rule;
}

bool AlertRule::matches(const SensorInfo& info) const {
  if (sensor == info.id || (!info.name.empty() && equals_ignoring_ascii_case(sensor, info.name))) {
    return true;
  }
  const auto kind = kind_from_name(sensor);
  return kind && *kind == info.kind;
}

std::string_view event_type_name(AlertEvent::Type type) noexcept {
  switch (type) {
    case AlertEvent::Type::kRaised:
      return "raised";
    case AlertEvent::Type::kCleared:
      return "cleared";
    case AlertEvent::Type::kStale:
      return "stale";
    case AlertEvent::Type::kRecovered:
      return "recovered";
  }
  return "raised";
}

AlertTracker::AlertTracker(std::vector<AlertRule> rules, Millis stale_after)
    : rules_(std::move(rules)), stale_after_(std::max<Millis>(stale_after, 0)) {}

std::vector<AlertEvent> AlertTracker::feed(const SensorInfo& sensor, const Reading& reading) {
  std::vector<AlertEvent> events;
  if (sensor.id.empty() || sensor.id.size() > kMaxIdBytes) {
    return events;
  }
  auto found = sensors_.find(sensor.id);
  if (found == sensors_.end()) {
    if (sensors_.size() >= kMaxSensors) {
      return events;
    }
    SensorState fresh;
    fresh.last_time = reading.time;
    fresh.stale_from = reading.time;
    fresh.rules.resize(rules_.size());
    found = sensors_.emplace(sensor.id, std::move(fresh)).first;
  } else if (reading.time < found->second.last_time) {
    return events;  // out of order: the state already reflects something newer
  }
  SensorState& state = found->second;
  state.last_time = reading.time;
  state.name = printable(sensor.name.empty() ? std::string_view(sensor.id) : sensor.name);
  state.unit = printable(sensor.unit.empty() ? unit_of(sensor.kind) : sensor.unit, 16);

  const auto make_event = [&](AlertEvent::Type type) {
    AlertEvent event;
    event.type = type;
    event.sensor = sensor.id;
    event.sensor_name = state.name;
    event.time = reading.time;
    event.unit = state.unit;
    return event;
  };

  // A NaN or an infinity is no measurement: it counts as a failed read.
  if (!reading.value || !std::isfinite(*reading.value)) {
    const Millis stale_for = difference(reading.time, state.stale_from);
    if (!state.stale && stale_for >= stale_after_) {
      state.stale = true;
      AlertEvent event = make_event(AlertEvent::Type::kStale);
      event.message = "STALE " + state.name + ": no reading for " + format_duration(stale_for);
      events.push_back(std::move(event));
    }
    return events;
  }

  const double value = *reading.value;
  const std::string shown = format_value(value) + " " + state.unit;
  state.stale_from = reading.time;
  if (state.stale) {
    state.stale = false;
    AlertEvent event = make_event(AlertEvent::Type::kRecovered);
    event.value = value;
    event.message = "RECOVERED " + state.name + " " + shown;
    events.push_back(std::move(event));
  }

  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const AlertRule& rule = rules_[i];
    if (!rule.matches(sensor)) {
      continue;
    }
    RuleState& rule_state = state.rules[i];
    const bool above = rule.op == AlertRule::Op::kAbove;
    const bool past = above ? value > rule.threshold : value < rule.threshold;
    const bool back =
        above ? value < rule.threshold - rule.hysteresis : value > rule.threshold + rule.hysteresis;

    switch (rule_state.phase) {
      case Phase::kNormal:
        if (past) {
          rule_state.phase = Phase::kPending;
          rule_state.since = reading.time;
        }
        break;
      case Phase::kPending:
        if (!past) {
          rule_state.phase = Phase::kNormal;  // a blip shorter than `for`: never said
        }
        break;
      case Phase::kRaised:
        if (back) {
          rule_state.phase = Phase::kClearing;
          rule_state.since = reading.time;
        }
        break;
      case Phase::kClearing:
        if (!back) {
          rule_state.phase = Phase::kRaised;  // not back for long enough: still raised
        }
        break;
    }

    // Checked on the reading that entered the phase too, so that `for=0` acts at once.
    const Millis lasted = difference(reading.time, rule_state.since);
    if (rule_state.phase == Phase::kPending && lasted >= rule.min_duration) {
      rule_state.phase = Phase::kRaised;
      AlertEvent event = make_event(AlertEvent::Type::kRaised);
      event.value = value;
      event.rule = rule.text;
      event.message = "ALERT " + state.name + " " + shown + (above ? " > " : " < ") +
                      format_threshold(rule.threshold);
      if (rule.min_duration > 0) {
        event.message += " (for " + format_duration(lasted) + ")";
      }
      events.push_back(std::move(event));
    } else if (rule_state.phase == Phase::kClearing && lasted >= rule.min_duration) {
      rule_state.phase = Phase::kNormal;
      AlertEvent event = make_event(AlertEvent::Type::kCleared);
      event.value = value;
      event.rule = rule.text;
      event.message =
          "CLEARED " + state.name + " " + shown + " (rule " + printable(rule.text) + ")";
      events.push_back(std::move(event));
    }
  }
  return events;
}

std::vector<AlertEvent> AlertTracker::tick(Millis now) {
  std::vector<AlertEvent> events;
  for (auto& [id, state] : sensors_) {
    const Millis silent_for = difference(now, state.stale_from);
    if (state.stale || silent_for < stale_after_) {
      continue;
    }
    state.stale = true;
    AlertEvent event;
    event.type = AlertEvent::Type::kStale;
    event.sensor = id;
    event.sensor_name = state.name;
    event.time = now;
    event.unit = state.unit;
    event.message = "STALE " + state.name + ": no reading for " + format_duration(silent_for);
    events.push_back(std::move(event));
  }
  return events;
}

std::optional<double> slope_per_hour(const std::vector<Reading>& readings) {
  // Times relative to the first ok one, in hours: ~1.8e12 ms squared would swamp the variation.
  std::vector<std::pair<double, double>> points;  // (hours, value)
  std::optional<Millis> origin;
  Millis earliest = 0;
  Millis latest = 0;
  for (const Reading& reading : readings) {
    if (!reading.value || !std::isfinite(*reading.value)) {
      continue;
    }
    if (!origin) {
      origin = reading.time;
      earliest = reading.time;
      latest = reading.time;
    }
    earliest = std::min(earliest, reading.time);
    latest = std::max(latest, reading.time);
    const double hours =
        static_cast<double>(difference(reading.time, *origin)) / static_cast<double>(kHour);
    points.emplace_back(hours, *reading.value);
  }
  if (points.size() < kMinSlopeReadings || difference(latest, earliest) < kMinSlopeSpan) {
    return std::nullopt;
  }

  double mean_t = 0;
  double mean_v = 0;
  for (const auto& [t, v] : points) {
    mean_t += t;
    mean_v += v;
  }
  const auto n = static_cast<double>(points.size());
  mean_t /= n;
  mean_v /= n;
  double sxx = 0;
  double sxy = 0;
  for (const auto& [t, v] : points) {
    sxx += (t - mean_t) * (t - mean_t);
    sxy += (t - mean_t) * (v - mean_v);
  }
  if (!(sxx > 0)) {
    return std::nullopt;
  }
  const double slope = sxy / sxx;
  if (!std::isfinite(slope)) {
    return std::nullopt;
  }
  return slope;
}

std::string_view trend_arrow(std::optional<double> slope, double steady) {
  if (!slope || std::isnan(*slope)) {
    return "·";
  }
  steady = std::abs(steady);
  if (*slope > steady) {
    return "↑";
  }
  if (*slope < -steady) {
    return "↓";
  }
  return "→";
}

}  // namespace peernet::sensors
