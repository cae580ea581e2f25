// Times and durations as typed on the command line (`export --from -24h`, `--keep-raw 48h`).
#include "sensors/time_text.h"

#include <cstdlib>

#include <gtest/gtest.h>

namespace peernet::sensors {
namespace {

constexpr Millis kNow = 1'764'412'800'000;  // 2025-11-29T10:40:00Z

TEST(Durations, UnitsAndDecimals) {
  EXPECT_EQ(parse_duration("90"), 90'000);
  EXPECT_EQ(parse_duration("90s"), 90'000);
  EXPECT_EQ(parse_duration("5m"), 300'000);
  EXPECT_EQ(parse_duration("1.5h"), 5'400'000);
  EXPECT_EQ(parse_duration("30d"), 2'592'000'000);
  EXPECT_EQ(parse_duration("0.2"), 200);
  EXPECT_EQ(parse_duration("0s"), 0);
}

TEST(Durations, NonsenseIsRefused) {
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("h"));
  EXPECT_FALSE(parse_duration("-5m"));
  EXPECT_FALSE(parse_duration("5 m"));
  EXPECT_FALSE(parse_duration("5w"));
  EXPECT_FALSE(parse_duration("1e30d"));
  EXPECT_FALSE(parse_duration("nan"));
  EXPECT_FALSE(parse_duration("inf"));
}

TEST(Times, RelativeAndAbsolute) {
  EXPECT_EQ(parse_time("now", kNow), kNow);
  EXPECT_EQ(parse_time("-24h", kNow), kNow - 86'400'000);
  EXPECT_EQ(parse_time("30m", kNow), kNow - 1'800'000);
  EXPECT_EQ(parse_time("@1764412800", kNow), kNow);
  EXPECT_EQ(parse_time("2025-11-29T10:40:00Z", kNow), kNow);
  EXPECT_EQ(parse_time("2025-11-29T10:40:00.250Z", kNow), kNow + 250);
  EXPECT_EQ(parse_time("2025-11-29T11:40:00+01:00", kNow), kNow);
  EXPECT_EQ(parse_time("2025-11-29T05:10:00-05:30", kNow), kNow);
}

TEST(Times, WithoutAZoneTheyAreLocal) {
  ::setenv("TZ", "XYZ-1", 1);  // one hour east of UTC, no tzdata needed
  ::tzset();
  EXPECT_EQ(parse_time("2025-11-29T11:40", kNow), kNow);
  EXPECT_EQ(parse_time("2025-11-29 11:40:00", kNow), kNow);
  EXPECT_EQ(parse_time("2025-11-29", kNow), kNow - (10 * 3600 + 40 * 60 + 3600) * 1000LL);
  EXPECT_EQ(format_local_clock(kNow), "11:40:00");
  // The end of a range: a date alone takes in the whole day; anything else, that moment.
  EXPECT_EQ(parse_end_time("2025-11-29", kNow), kNow + (12 * 3600 + 20 * 60) * 1000LL);
  EXPECT_EQ(parse_end_time("2025-11-29T11:40", kNow), kNow + 1);
  EXPECT_EQ(parse_end_time("now", kNow), kNow + 1);
  EXPECT_FALSE(parse_end_time("soon", kNow));
  ::unsetenv("TZ");
  ::tzset();
}

TEST(Times, NonsenseIsRefused) {
  for (const char* text :
       {"", "yesterday", "90", "-90", "2026", "2025-13-01", "2025-11-32", "2025-11-29T25:00",
        "2025-11-29T10:40:00+1", "2025-11-29X", "@", "@-5", "@12x", "2025/11/29"}) {
    EXPECT_FALSE(parse_time(text, kNow)) << text;
  }
}

TEST(Times, FormattedInUtcWithMilliseconds) {
  EXPECT_EQ(format_utc(kNow), "2025-11-29T10:40:00.000Z");
  EXPECT_EQ(format_utc(kNow + 7), "2025-11-29T10:40:00.007Z");
  EXPECT_EQ(format_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_utc(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(parse_time(format_utc(kNow + 123), kNow), kNow + 123);
}

}  // namespace
}  // namespace peernet::sensors
