#include "sensors/time_text.h"

#include <array>
#include <charconv>
#include <cmath>
#include <ctime>
#include <system_error>

namespace peernet::sensors {
namespace {

constexpr Millis kSecond = 1000;
constexpr double kHundredYears = 100.0 * 365.25 * 24 * 3600 * 1000;

/// The digits at `text[at, at + count)` as a number; nullopt unless all are digits.
std::optional<int> digits(std::string_view text, std::size_t at, std::size_t count) {
  if (at + count > text.size()) {
    return std::nullopt;
  }
  int value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') {
      return std::nullopt;
    }
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

/// "YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM]".
std::optional<Millis> parse_calendar(std::string_view text) {
  const auto year = digits(text, 0, 4);
  const auto month = digits(text, 5, 2);
  const auto day = digits(text, 8, 2);
  if (!year || !month || !day || text[4] != '-' || text[7] != '-' || *month < 1 || *month > 12 ||
      *day < 1 || *day > 31) {
    return std::nullopt;
  }
  std::tm fields{};
  fields.tm_year = *year - 1900;
  fields.tm_mon = *month - 1;
  fields.tm_mday = *day;
  Millis fraction = 0;
  std::size_t at = 10;
  if (at < text.size() && (text[at] == 'T' || text[at] == ' ')) {
    const auto hour = digits(text, at + 1, 2);
    const auto minute = digits(text, at + 4, 2);
    if (!hour || !minute || text.size() < at + 6 || text[at + 3] != ':' || *hour > 23 ||
        *minute > 59) {
      return std::nullopt;
    }
    fields.tm_hour = *hour;
    fields.tm_min = *minute;
    at += 6;
    if (at < text.size() && text[at] == ':') {
      const auto second = digits(text, at + 1, 2);
      if (!second || *second > 60) {
        return std::nullopt;
      }
      fields.tm_sec = *second;
      at += 3;
      if (at < text.size() && text[at] == '.') {
        ++at;
        Millis scale = 100;
        while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
          fraction += (text[at] - '0') * scale;
          scale /= 10;
          ++at;
        }
      }
    }
  }
  if (at == text.size()) {
    // No zone: the local time it names.
    fields.tm_isdst = -1;
    const std::time_t local = std::mktime(&fields);
    if (local == static_cast<std::time_t>(-1)) {
      return std::nullopt;
    }
    return static_cast<Millis>(local) * kSecond + fraction;
  }
  Millis offset = 0;
  if (text[at] == 'Z' && at + 1 == text.size()) {
    offset = 0;
  } else if ((text[at] == '+' || text[at] == '-') && text.size() == at + 6 && text[at + 3] == ':') {
    const auto hours = digits(text, at + 1, 2);
    const auto minutes = digits(text, at + 4, 2);
    if (!hours || !minutes || *hours > 23 || *minutes > 59) {
      return std::nullopt;
    }
    offset = (Millis{*hours} * 60 + *minutes) * 60 * kSecond * (text[at] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  const std::time_t utc = timegm(&fields);
  if (utc == static_cast<std::time_t>(-1)) {
    return std::nullopt;
  }
  return static_cast<Millis>(utc) * kSecond + fraction - offset;
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  double unit = kSecond;
  switch (text.back()) {
    case 's':
      text.remove_suffix(1);
      break;
    case 'm':
      unit = 60.0 * kSecond;
      text.remove_suffix(1);
      break;
    case 'h':
      unit = 3600.0 * kSecond;
      text.remove_suffix(1);
      break;
    case 'd':
      unit = 86400.0 * kSecond;
      text.remove_suffix(1);
      break;
    default:
      break;
  }
  double amount = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), amount);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() ||
      !std::isfinite(amount) || amount < 0 || amount * unit > kHundredYears) {
    return std::nullopt;
  }
  return static_cast<Millis>(std::llround(amount * unit));
}

std::optional<Millis> parse_time(std::string_view text, Millis now) {
  if (text == "now") {
    return now;
  }
  if (!text.empty() && text.front() == '@') {
    std::int64_t seconds = 0;
    const auto [end, error] = std::from_chars(text.data() + 1, text.data() + text.size(), seconds);
    if (text.size() == 1 || error != std::errc{} || end != text.data() + text.size() ||
        seconds < 0 || seconds > 100'000'000'000) {
      return std::nullopt;
    }
    return seconds * kSecond;
  }
  const std::string_view ago = !text.empty() && text.front() == '-' ? text.substr(1) : text;
  const bool has_unit = !ago.empty() && (ago.back() < '0' || ago.back() > '9');
  if (const auto duration = parse_duration(ago); duration && has_unit) {
    return now - *duration;
  }
  return parse_calendar(text);
}

std::optional<Millis> parse_end_time(std::string_view text, Millis now) {
  const auto time = parse_time(text, now);
  if (!time) {
    return std::nullopt;
  }
  if (text.size() != 10 || text[4] != '-') {
    return *time + 1;
  }
  // A date alone: the next day's local midnight (a day is not always 24 hours long).
  const auto seconds = static_cast<std::time_t>(*time / kSecond);
  std::tm fields{};
  localtime_r(&seconds, &fields);
  fields.tm_mday += 1;
  fields.tm_hour = 0;
  fields.tm_min = 0;
  fields.tm_sec = 0;
  fields.tm_isdst = -1;
  const std::time_t next = std::mktime(&fields);
  return next == static_cast<std::time_t>(-1) ? std::nullopt
                                              : std::optional(static_cast<Millis>(next) * kSecond);
}

std::string format_utc(Millis time) {
  const Millis seconds = time >= 0 ? time / kSecond : (time - (kSecond - 1)) / kSecond;
  const auto clock = static_cast<std::time_t>(seconds);
  std::tm fields{};
  gmtime_r(&clock, &fields);
  std::array<char, 64> text{};
  const std::size_t length = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &fields);
  std::array<char, 8> millis{};
  std::snprintf(millis.data(), millis.size(), ".%03dZ", static_cast<int>(time - seconds * kSecond));
  return std::string(text.data(), length) + millis.data();
}

std::string format_local_clock(Millis time) {
  const auto clock = static_cast<std::time_t>(time / kSecond);
  std::tm fields{};
  localtime_r(&clock, &fields);
  std::array<char, 16> text{};
  const std::size_t length = std::strftime(text.data(), text.size(), "%H:%M:%S", &fields);
  return {text.data(), length};
}

}  // namespace peernet::sensors
