#include "sensors/alerts.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace peernet::sensors {
namespace {

using Type = AlertEvent::Type;

constexpr Millis kSecond = 1000;
constexpr Millis kMinute = 60 * kSecond;
constexpr Millis kHour = 60 * kMinute;
// An ordinary time of day in 2027: large enough to expose precision loss in the slope.
constexpr Millis kT0 = 1'800'000'000'000;

SensorInfo outside() { return {"w1-28-000005e2fdc3", Kind::kTemperature, "°C", "Outside", "w1"}; }
SensorInfo cpu() {
  return {"hwmon-coretemp-temp1", Kind::kTemperature, "°C", "coretemp Package id 0", "hwmon"};
}
SensorInfo humidity() { return {"iio-dht22-humidity", Kind::kHumidity, "%RH", "Cellar", "iio"}; }

Reading ok(const SensorInfo& sensor, Millis time, double value) { return {sensor.id, time, value}; }
Reading stale(const SensorInfo& sensor, Millis time) { return {sensor.id, time, std::nullopt}; }

std::vector<Type> types(const std::vector<AlertEvent>& events) {
  std::vector<Type> out;
  out.reserve(events.size());
  for (const auto& event : events) {
    out.push_back(event.type);
  }
  return out;
}

AlertTracker tracker(const std::vector<std::string_view>& rules, Millis stale_after = kHour) {
  std::vector<AlertRule> parsed;
  parsed.reserve(rules.size());
  for (auto rule : rules) {
    parsed.push_back(AlertRule::parse(rule));
  }
  return {std::move(parsed), stale_after};
}

// What parse() says about `text`, or "" when it accepts it.
std::string parse_error(std::string_view text) {
  try {
    AlertRule::parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// ---- parsing ----

TEST(AlertRuleParse, Above) {
  const auto rule = AlertRule::parse("outside>30");
  EXPECT_EQ(rule.sensor, "outside");
  EXPECT_EQ(rule.op, AlertRule::Op::kAbove);
  EXPECT_EQ(rule.threshold, 30);
  EXPECT_EQ(rule.hysteresis, 0);
  EXPECT_EQ(rule.min_duration, 0);
  EXPECT_EQ(rule.text, "outside>30");
}

TEST(AlertRuleParse, BelowWithOptionsAndWhitespace) {
  const auto rule = AlertRule::parse("  temperature < -2.5 , for = 5m ,\thysteresis = 0.5 ");
  EXPECT_EQ(rule.sensor, "temperature");
  EXPECT_EQ(rule.op, AlertRule::Op::kBelow);
  EXPECT_EQ(rule.threshold, -2.5);
  EXPECT_EQ(rule.hysteresis, 0.5);
  EXPECT_EQ(rule.min_duration, 5 * kMinute);
  EXPECT_EQ(rule.text, "temperature < -2.5 , for = 5m ,\thysteresis = 0.5");
}

TEST(AlertRuleParse, OptionsInEitherOrder) {
  const auto a = AlertRule::parse("x>1,for=90,hysteresis=1");
  const auto b = AlertRule::parse("x>1,hysteresis=1,for=90s");
  EXPECT_EQ(a.min_duration, 90 * kSecond);
  EXPECT_EQ(b.min_duration, 90 * kSecond);
  EXPECT_EQ(a.hysteresis, 1);
  EXPECT_EQ(b.hysteresis, 1);
}

TEST(AlertRuleParse, Durations) {
  const auto duration = [](std::string_view d) {
    return AlertRule::parse("x>1,for=" + std::string(d)).min_duration;
  };
  EXPECT_EQ(duration("90"), 90 * kSecond);
  EXPECT_EQ(duration("90s"), 90 * kSecond);
  EXPECT_EQ(duration("1.5m"), 90 * kSecond);
  EXPECT_EQ(duration("5m"), 5 * kMinute);
  EXPECT_EQ(duration("2h"), 2 * kHour);
  EXPECT_EQ(duration("0.5s"), 500);
  EXPECT_EQ(duration("0"), 0);
  EXPECT_EQ(duration("168h"), Millis{7} * 24 * kHour);
}

TEST(AlertRuleParse, NamesTheBadPart) {
  EXPECT_EQ(parse_error("outside>>3"), "alert \"outside>>3\": \">3\" is not a number");
  EXPECT_EQ(parse_error("  outside>abc "), "alert \"outside>abc\": \"abc\" is not a number");

  struct Case {
    std::string_view text;
    std::string_view says;
  };
  const Case cases[] = {
      {"", "expected SENSOR>VALUE or SENSOR<VALUE"},
      {"outside", "expected SENSOR>VALUE or SENSOR<VALUE"},
      {"outside=3", "expected SENSOR>VALUE or SENSOR<VALUE"},
      {">3", "no sensor before \">\""},
      {"  <3", "no sensor before \"<\""},
      {"my sensor>3", "sensor \"my sensor\" contains a space"},
      {"outside>", "\"\" is not a number"},
      {"outside<>3", "\">3\" is not a number"},
      {"outside>3<4", "\"3<4\" is not a number"},
      {"outside>nan", "\"nan\" is not a number"},
      {"outside>inf", "\"inf\" is not a number"},
      {"outside>1e999", "\"1e999\" is not a number"},
      {"outside>3,", "empty option after a comma"},
      {"outside>3,,for=1", "empty option after a comma"},
      {"outside>3,hysteresis", "\"hysteresis\" is not hysteresis=H or for=D"},
      {"outside>3,hysteresis=-1", "hysteresis \"-1\" is not a number >= 0"},
      {"outside>3,hysteresis=x", "hysteresis \"x\" is not a number >= 0"},
      {"outside>3,hysteresis=inf", "hysteresis \"inf\" is not a number >= 0"},
      {"outside>3,hysteresis=1,hysteresis=1", "hysteresis is given twice"},
      {"outside>3,for=", "for \"\" is not a duration"},
      {"outside>3,for=m", "for \"m\" is not a duration"},
      {"outside>3,for=5d", "for \"5d\" is not a duration"},
      {"outside>3,for=5 minutes", "for \"5 minutes\" is not a duration"},
      {"outside>3,for=-5", "for \"-5\" is negative"},
      {"outside>3,for=169h", "for \"169h\" is longer than 7 days"},
      {"outside>3,for=1e300h", "for \"1e300h\" is longer than 7 days"},
      {"outside>3,for=1,for=2", "for is given twice"},
      {"outside>3,when=1", "unknown option \"when\""},
  };
  for (const auto& c : cases) {
    const std::string error = parse_error(c.text);
    EXPECT_NE(error.find(c.says), std::string::npos)
        << "parsing \"" << c.text << "\" said \"" << error << "\"";
  }
}

// ---- matching ----

TEST(AlertRuleMatches, ById) {
  EXPECT_TRUE(AlertRule::parse("w1-28-000005e2fdc3>30").matches(outside()));
  EXPECT_FALSE(AlertRule::parse("w1-28-000005e2fdc3>30").matches(cpu()));
}

TEST(AlertRuleMatches, ByNameIgnoringCase) {
  EXPECT_TRUE(AlertRule::parse("Outside>30").matches(outside()));
  EXPECT_TRUE(AlertRule::parse("outside>30").matches(outside()));
  EXPECT_FALSE(AlertRule::parse("outsid>30").matches(outside()));
  EXPECT_FALSE(AlertRule::parse("Cellar>30").matches(outside()));
}

TEST(AlertRuleMatches, ByKind) {
  const auto temperature = AlertRule::parse("temperature>30");
  EXPECT_TRUE(temperature.matches(outside()));
  EXPECT_TRUE(temperature.matches(cpu()));
  EXPECT_FALSE(temperature.matches(humidity()));
  const auto wet = AlertRule::parse("humidity>80");
  EXPECT_TRUE(wet.matches(humidity()));
  EXPECT_FALSE(wet.matches(outside()));
}

// ---- thresholds ----

TEST(AlertTracker, RaisesAfterExactlyMinDuration) {
  auto alerts = tracker({"outside>30,for=60s"});
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0, 31.2)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 59'999, 31.2)).empty());
  const auto events = alerts.feed(outside(), ok(outside(), kT0 + 60 * kSecond, 31.2));
  ASSERT_EQ(types(events), std::vector{Type::kRaised});
  const auto& event = events[0];
  EXPECT_EQ(event.sensor, outside().id);
  EXPECT_EQ(event.sensor_name, "Outside");
  EXPECT_EQ(event.time, kT0 + 60 * kSecond);
  EXPECT_EQ(event.value, 31.2);
  EXPECT_EQ(event.unit, "°C");
  EXPECT_EQ(event.rule, "outside>30,for=60s");
  EXPECT_EQ(event.message, "ALERT Outside 31.2 °C > 30 (for 60 s)");
  // Raised once, not on every reading past the threshold.
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 2 * kMinute, 32)).empty());
}

TEST(AlertTracker, ZeroDurationRaisesOnFirstReadingPast) {
  auto alerts = tracker({"outside>30"});
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0, 30)).empty()) << "at is not past";
  const auto events = alerts.feed(outside(), ok(outside(), kT0 + kSecond, 30.06));
  ASSERT_EQ(types(events), std::vector{Type::kRaised});
  EXPECT_EQ(events[0].message, "ALERT Outside 30.1 °C > 30");
}

TEST(AlertTracker, DipBeforeMinDurationCancels) {
  auto alerts = tracker({"outside>30,for=60s"});
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0, 31)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 30 * kSecond, 29.9)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 45 * kSecond, 31)).empty());
  // 90 s after the first reading past, but only 45 s since the dip ended.
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 90 * kSecond, 31)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + 105 * kSecond, 31))),
            std::vector{Type::kRaised});
}

TEST(AlertTracker, HysteresisPreventsFlapping) {
  auto alerts = tracker({"outside>30,hysteresis=2"});
  ASSERT_EQ(types(alerts.feed(outside(), ok(outside(), kT0, 31))), std::vector{Type::kRaised});
  for (int i = 1; i <= 200; ++i) {
    const double value = i % 2 == 0 ? 31 : 29;  // threshold ± hysteresis / 2
    EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + i * kMinute, value)).empty()) << i;
  }
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 201 * kMinute, 28)).empty())
      << "exactly threshold - hysteresis is not back";
  const auto events = alerts.feed(outside(), ok(outside(), kT0 + 202 * kMinute, 27.9));
  ASSERT_EQ(types(events), std::vector{Type::kCleared});
  EXPECT_EQ(events[0].message, "CLEARED Outside 27.9 °C (rule outside>30,hysteresis=2)");
  EXPECT_EQ(events[0].rule, "outside>30,hysteresis=2");
  EXPECT_EQ(events[0].value, 27.9);
}

TEST(AlertTracker, ClearNeedsMinDuration) {
  auto alerts = tracker({"outside>30,hysteresis=1,for=60s"});
  alerts.feed(outside(), ok(outside(), kT0, 31));
  ASSERT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + kMinute, 31))),
            std::vector{Type::kRaised});
  const Millis t = kT0 + 10 * kMinute;
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), t, 28)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), t + 30 * kSecond, 29.5)).empty())
      << "between threshold - hysteresis and threshold: not back, so the clearing restarts";
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), t + 40 * kSecond, 28)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), t + 99'999, 28)).empty());
  const auto events = alerts.feed(outside(), ok(outside(), t + 100 * kSecond, 28));
  ASSERT_EQ(types(events), std::vector{Type::kCleared});
  EXPECT_EQ(events[0].message, "CLEARED Outside 28.0 °C (rule outside>30,hysteresis=1,for=60s)");
  // Back to normal: a new excursion has to wait its minute again.
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), t + 101 * kSecond, 31)).empty());
}

TEST(AlertTracker, BelowMirrorsAbove) {
  auto alerts = tracker({"outside<0,hysteresis=1,for=10s"});
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0, -0.5)).empty());
  const auto raised = alerts.feed(outside(), ok(outside(), kT0 + 10 * kSecond, -0.54));
  ASSERT_EQ(types(raised), std::vector{Type::kRaised});
  EXPECT_EQ(raised[0].message, "ALERT Outside -0.5 °C < 0 (for 10 s)");
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + kMinute, 0.5)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 2 * kMinute, 0.5)).empty())
      << "above the threshold but within the hysteresis";
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 3 * kMinute, 1.5)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + 3 * kMinute + 10 * kSecond, 1.5))),
            std::vector{Type::kCleared});
}

TEST(AlertTracker, TwoRulesOnOneSensorAreIndependent) {
  auto alerts = tracker({"outside>30", "Outside>35,for=60s"});
  auto events = alerts.feed(outside(), ok(outside(), kT0, 31));
  ASSERT_EQ(types(events), std::vector{Type::kRaised});
  EXPECT_EQ(events[0].rule, "outside>30");
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + kSecond, 36)).empty());
  events = alerts.feed(outside(), ok(outside(), kT0 + 61 * kSecond, 36));
  ASSERT_EQ(types(events), std::vector{Type::kRaised});
  EXPECT_EQ(events[0].rule, "Outside>35,for=60s");
  events = alerts.feed(outside(), ok(outside(), kT0 + 2 * kMinute, 29));
  ASSERT_EQ(types(events), std::vector{Type::kCleared});
  EXPECT_EQ(events[0].rule, "outside>30");
  events = alerts.feed(outside(), ok(outside(), kT0 + 3 * kMinute, 29));
  ASSERT_EQ(types(events), std::vector{Type::kCleared});
  EXPECT_EQ(events[0].rule, "Outside>35,for=60s");
}

TEST(AlertTracker, KindRuleTracksEachSensorApart) {
  auto alerts = tracker({"temperature>30"});
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0, 31))), std::vector{Type::kRaised});
  const auto events = alerts.feed(cpu(), ok(cpu(), kT0, 45));
  ASSERT_EQ(types(events), std::vector{Type::kRaised});
  EXPECT_EQ(events[0].sensor, cpu().id);
  EXPECT_EQ(events[0].message, "ALERT coretemp Package id 0 45.0 °C > 30");
  EXPECT_TRUE(alerts.feed(humidity(), ok(humidity(), kT0, 99)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + kSecond, 20))),
            std::vector{Type::kCleared});
  EXPECT_TRUE(alerts.feed(cpu(), ok(cpu(), kT0 + kSecond, 45)).empty()) << "still raised";
}

TEST(AlertTracker, StaleReadingsMoveNoThreshold) {
  auto alerts = tracker({"outside>30,for=60s"});
  alerts.feed(outside(), ok(outside(), kT0, 31));
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 + 30 * kSecond)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + kMinute, 31))),
            std::vector{Type::kRaised})
      << "a stale reading does not cancel the pending alert";
  for (int i = 1; i <= 5; ++i) {
    EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 + kMinute + i * kSecond)).empty());
  }
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 2 * kMinute, 31)).empty());
}

// ---- stale ----

TEST(AlertTracker, StaleAfterStaleAfterFromLastOkReading) {
  auto alerts = tracker({}, 2 * kMinute);
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0, 20)).empty());
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 + kMinute)).empty());
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 + 2 * kMinute - 1)).empty());
  const auto events = alerts.feed(outside(), stale(outside(), kT0 + 2 * kMinute));
  ASSERT_EQ(types(events), std::vector{Type::kStale});
  EXPECT_EQ(events[0].sensor, outside().id);
  EXPECT_EQ(events[0].time, kT0 + 2 * kMinute);
  EXPECT_EQ(events[0].value, std::nullopt);
  EXPECT_EQ(events[0].rule, "");
  EXPECT_EQ(events[0].message, "STALE Outside: no reading for 2 min");
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 + 10 * kMinute)).empty()) << "once";
}

TEST(AlertTracker, OkReadingRestartsTheStaleClock) {
  auto alerts = tracker({}, 2 * kMinute);
  alerts.feed(outside(), ok(outside(), kT0, 20));
  alerts.feed(outside(), stale(outside(), kT0 + 90 * kSecond));
  alerts.feed(outside(), ok(outside(), kT0 + 100 * kSecond, 20));
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 + 3 * kMinute)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), stale(outside(), kT0 + 100 * kSecond + 2 * kMinute))),
            std::vector{Type::kStale});
}

TEST(AlertTracker, NeverOkSensorGoesStaleFromItsFirstReading) {
  auto alerts = tracker({}, 2 * kMinute);
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0)).empty());
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 + kMinute)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), stale(outside(), kT0 + 2 * kMinute))),
            std::vector{Type::kStale});
}

TEST(AlertTracker, RecoveredOnNextOkReadingThenThresholdsGoOn) {
  auto alerts = tracker({"outside>30"}, 2 * kMinute);
  alerts.feed(outside(), ok(outside(), kT0, 20));
  ASSERT_EQ(types(alerts.feed(outside(), stale(outside(), kT0 + 5 * kMinute))),
            std::vector{Type::kStale});
  const auto events = alerts.feed(outside(), ok(outside(), kT0 + 6 * kMinute, 31.25));
  ASSERT_EQ(types(events), (std::vector{Type::kRecovered, Type::kRaised}));
  EXPECT_EQ(events[0].message, "RECOVERED Outside 31.2 °C");
  EXPECT_EQ(events[0].value, 31.25);
  EXPECT_EQ(events[0].rule, "");
  EXPECT_EQ(events[0].time, kT0 + 6 * kMinute);
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 7 * kMinute, 31)).empty());
}

TEST(AlertTracker, TickStalesASilentSensor) {
  auto alerts = tracker({}, 2 * kMinute);
  EXPECT_TRUE(alerts.tick(kT0 + kHour).empty()) << "sensors never fed are unknown";
  alerts.feed(outside(), ok(outside(), kT0, 20));
  alerts.feed(humidity(), ok(humidity(), kT0 + kMinute, 60));
  EXPECT_TRUE(alerts.tick(kT0 + kMinute).empty());
  auto events = alerts.tick(kT0 + 2 * kMinute);
  ASSERT_EQ(types(events), std::vector{Type::kStale});
  EXPECT_EQ(events[0].sensor, outside().id);
  EXPECT_EQ(events[0].sensor_name, "Outside");
  EXPECT_EQ(events[0].unit, "°C");
  EXPECT_EQ(events[0].time, kT0 + 2 * kMinute);
  EXPECT_EQ(events[0].message, "STALE Outside: no reading for 2 min");
  events = alerts.tick(kT0 + 4 * kMinute);
  ASSERT_EQ(types(events), std::vector{Type::kStale}) << "outside only once";
  EXPECT_EQ(events[0].sensor, humidity().id);
  EXPECT_EQ(events[0].message, "STALE Cellar: no reading for 3 min");
  EXPECT_TRUE(alerts.tick(kT0 + kHour).empty());
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + kHour, 20))),
            std::vector{Type::kRecovered});
}

TEST(AlertTracker, NonFiniteValuesCountAsStale) {
  auto alerts = tracker({"outside>30", "outside<0"}, 2 * kMinute);
  alerts.feed(outside(), ok(outside(), kT0, 20));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + kMinute, inf)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 90 * kSecond, -inf)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + 2 * kMinute, nan))),
            std::vector{Type::kStale});
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + 3 * kMinute, 20))),
            std::vector{Type::kRecovered});
}

TEST(AlertTracker, ReadingsGoingBackInTimeAreIgnored) {
  auto alerts = tracker({"outside>30,for=60s"}, 2 * kMinute);
  alerts.feed(outside(), ok(outside(), kT0, 31));
  alerts.feed(outside(), ok(outside(), kT0 + 30 * kSecond, 31));
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + 10 * kSecond, 20)).empty());
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kT0 - kHour)).empty());
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 - kHour, 20)).empty());
  EXPECT_EQ(types(alerts.feed(outside(), ok(outside(), kT0 + kMinute, 31))),
            std::vector{Type::kRaised})
      << "the older reading at 20 did not cancel the pending alert";
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kT0 + kMinute, 31)).empty())
      << "the same time again is not going back";
}

// ---- hostile input ----

TEST(AlertTracker, TracksAtMostMaxSensors) {
  auto alerts = tracker({"temperature>30"}, kMinute);
  SensorInfo info = outside();
  for (std::size_t i = 0; i < AlertTracker::kMaxSensors; ++i) {
    info.id = "sensor-" + std::to_string(i);
    ASSERT_EQ(alerts.feed(info, ok(info, kT0, 31)).size(), 1U) << i;
  }
  info.id = "one-too-many";
  EXPECT_TRUE(alerts.feed(info, ok(info, kT0, 31)).empty());
  EXPECT_TRUE(alerts.feed(info, stale(info, kT0 + kHour)).empty());
  info.id = "sensor-7";
  EXPECT_EQ(types(alerts.feed(info, ok(info, kT0 + kSecond, 20))), std::vector{Type::kCleared});
  EXPECT_EQ(alerts.tick(kT0 + kHour).size(), AlertTracker::kMaxSensors);
}

TEST(AlertTracker, IgnoresOverlongAndEmptyIds) {
  auto alerts = tracker({"temperature>30"});
  SensorInfo info = outside();
  info.id = std::string(AlertTracker::kMaxIdBytes + 1, 'x');
  EXPECT_TRUE(alerts.feed(info, ok(info, kT0, 31)).empty());
  info.id.clear();
  EXPECT_TRUE(alerts.feed(info, ok(info, kT0, 31)).empty());
  info.id = std::string(AlertTracker::kMaxIdBytes, 'x');
  EXPECT_EQ(alerts.feed(info, ok(info, kT0, 31)).size(), 1U);
}

TEST(AlertTracker, MessagesStayOnOneLine) {
  auto alerts = tracker({"temperature>30"}, kMinute);
  SensorInfo info = outside();
  info.name = "Out\nside\x1b[2J" + std::string(1000, 'x');
  info.unit = "°\rC";
  const auto events = alerts.feed(info, ok(info, kT0, 31));
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].message.find_first_of("\r\n\x1b"), std::string::npos) << events[0].message;
  EXPECT_EQ(events[0].message.rfind("ALERT Out?side?[2Jxxx", 0), 0U) << events[0].message;
  EXPECT_LT(events[0].message.size(), 400U);
  const auto stale_events = alerts.tick(kT0 + kHour);
  ASSERT_EQ(stale_events.size(), 1U);
  EXPECT_EQ(stale_events[0].message.find('\n'), std::string::npos);
}

TEST(AlertTracker, ExtremeTimesDoNotOverflow) {
  constexpr Millis kMin = std::numeric_limits<Millis>::min();
  constexpr Millis kMax = std::numeric_limits<Millis>::max();
  auto alerts = tracker({"outside>30,for=60s"}, kMinute);
  EXPECT_TRUE(alerts.feed(outside(), ok(outside(), kMin, 31)).empty());
  const auto events = alerts.feed(outside(), ok(outside(), kMax, 31));
  ASSERT_EQ(types(events), std::vector{Type::kRaised});
  EXPECT_TRUE(alerts.feed(outside(), stale(outside(), kMax)).empty()) << "0 ms since the last ok";
  EXPECT_TRUE(alerts.tick(kMin).empty());
  EXPECT_TRUE(alerts.tick(kMax).empty());

  EXPECT_TRUE(alerts.feed(cpu(), stale(cpu(), kMin)).empty());
  EXPECT_TRUE(alerts.tick(kMin + kSecond).empty());
  const auto stale_events = alerts.feed(cpu(), stale(cpu(), kMax));
  ASSERT_EQ(types(stale_events), std::vector{Type::kStale});
  EXPECT_EQ(stale_events[0].message.rfind("STALE coretemp Package id 0: no reading for ", 0), 0U);
}

TEST(EventTypeName, AllFour) {
  EXPECT_EQ(event_type_name(Type::kRaised), "raised");
  EXPECT_EQ(event_type_name(Type::kCleared), "cleared");
  EXPECT_EQ(event_type_name(Type::kStale), "stale");
  EXPECT_EQ(event_type_name(Type::kRecovered), "recovered");
}

// ---- trend ----

std::vector<Reading> line(double per_hour, int count, Millis step) {
  std::vector<Reading> readings;
  for (int i = 0; i < count; ++i) {
    const Millis t = kT0 + i * step;
    readings.push_back({"s", t, 20.0 + per_hour * static_cast<double>(i * step) / kHour});
  }
  return readings;
}

TEST(SlopePerHour, KnownLine) {
  const auto slope = slope_per_hour(line(2.0, 13, 5 * kMinute));
  ASSERT_TRUE(slope);
  EXPECT_NEAR(*slope, 2.0, 1e-9);
  const auto falling = slope_per_hour(line(-0.25, 600, kSecond));
  ASSERT_TRUE(falling);
  EXPECT_NEAR(*falling, -0.25, 1e-9);
  const auto flat = slope_per_hour(line(0, 3, kMinute));
  ASSERT_TRUE(flat);
  EXPECT_NEAR(*flat, 0, 1e-12);
}

TEST(SlopePerHour, UsesOkReadingsOnly) {
  auto readings = line(2.0, 13, 5 * kMinute);
  readings.insert(readings.begin() + 3, Reading{"s", kT0 + 16 * kMinute, std::nullopt});
  readings.insert(readings.begin() + 6,
                  Reading{"s", kT0 + 26 * kMinute, std::numeric_limits<double>::quiet_NaN()});
  const auto slope = slope_per_hour(readings);
  ASSERT_TRUE(slope);
  EXPECT_NEAR(*slope, 2.0, 1e-9);
}

TEST(SlopePerHour, NeedsThreeOkReadings) {
  EXPECT_EQ(slope_per_hour({}), std::nullopt);
  auto readings = line(2.0, 2, 10 * kMinute);
  EXPECT_EQ(slope_per_hour(readings), std::nullopt);
  readings.push_back({"s", kT0 + kHour, std::nullopt});
  readings.push_back({"s", kT0 + 2 * kHour, std::nullopt});
  EXPECT_EQ(slope_per_hour(readings), std::nullopt);
}

TEST(SlopePerHour, NeedsAMinute) {
  EXPECT_EQ(slope_per_hour(line(2.0, 60, kSecond)), std::nullopt);  // spans 59 s
  EXPECT_TRUE(slope_per_hour(line(2.0, 61, kSecond)));              // spans 60 s
  EXPECT_EQ(slope_per_hour(line(2.0, 3, 0)), std::nullopt);         // all at one time
}

TEST(TrendArrow, Arrows) {
  EXPECT_EQ(trend_arrow(1.0, 0.5), "↑");
  EXPECT_EQ(trend_arrow(-1.0, 0.5), "↓");
  EXPECT_EQ(trend_arrow(0.5, 0.5), "→");
  EXPECT_EQ(trend_arrow(-0.5, 0.5), "→");
  EXPECT_EQ(trend_arrow(0.0, 0.5), "→");
  EXPECT_EQ(trend_arrow(std::nullopt, 0.5), "·");
  EXPECT_EQ(trend_arrow(std::numeric_limits<double>::quiet_NaN(), 0.5), "·");
  EXPECT_EQ(trend_arrow(slope_per_hour(line(2.0, 13, 5 * kMinute)), 0.5), "↑");
}

}  // namespace
}  // namespace peernet::sensors
