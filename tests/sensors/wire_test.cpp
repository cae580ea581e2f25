// The sensor protocol's messages: what one side encodes the other decodes unchanged, history is
// cut into messages that fit a data channel, and hostile messages are refused with a reason.
#include "sensors/wire.h"

#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <peernet/peernet.h>

namespace peernet::sensors {
namespace {

Message round_trip(const Message& message) { return decode(encode(message)); }

std::string refusal(const std::string& text) {
  try {
    decode(text);
  } catch (const WireError& error) {
    return error.what();
  }
  return "accepted";
}

TEST(SensorWire, ASubscriptionRoundTrips) {
  Subscribe subscribe{
      {"hwmon-coretemp-temp1", "w1-28-000005e2fdc3"},
      HistoryRequest{1'764'400'000'000, 1'764'410'000'000, Resolution::kFiveMinutes},
      false};
  const auto decoded = std::get<Subscribe>(round_trip(subscribe));
  EXPECT_EQ(decoded.sensors, subscribe.sensors);
  ASSERT_TRUE(decoded.history);
  EXPECT_EQ(decoded.history->from, 1'764'400'000'000);
  EXPECT_EQ(decoded.history->to, 1'764'410'000'000);
  EXPECT_EQ(decoded.history->resolution, Resolution::kFiveMinutes);
  EXPECT_FALSE(decoded.live);

  const auto plain = std::get<Subscribe>(decode(R"({"op":"subscribe"})"));
  EXPECT_TRUE(plain.sensors.empty());
  EXPECT_FALSE(plain.history);
  EXPECT_TRUE(plain.live);
}

TEST(SensorWire, TheSensorListRoundTrips) {
  Hello hello{{{"iio-dht22-humidity", Kind::kHumidity, "%RH", "dht22 humidity", "iio"},
               {"sim-temperature", Kind::kTemperature, "°C", "Simulated", "simulated"}},
              5000};
  const auto decoded = std::get<Hello>(round_trip(hello));
  EXPECT_EQ(decoded.sensors, hello.sensors);
  EXPECT_EQ(decoded.interval, 5000);
}

TEST(SensorWire, StaleReadingsTravelWithoutAValue) {
  const std::vector<Reading> readings = {
      {"a", 1000, 21.375}, {"a", 2000, std::nullopt}, {"b", 2000, -40.0625}};
  const auto messages = encode_readings(readings, true);
  ASSERT_EQ(messages.size(), 1U);
  EXPECT_NE(messages[0].find(R"(["a",2000,null])"), std::string::npos) << messages[0];
  const auto decoded = std::get<Readings>(decode(messages[0]));
  EXPECT_TRUE(decoded.live);
  EXPECT_EQ(decoded.readings, readings);
  EXPECT_EQ(decoded.readings[1].quality(), Quality::kStale);
}

TEST(SensorWire, LongHistoryIsCutIntoMessagesThatFitAChannel) {
  std::vector<Reading> readings;
  readings.reserve(20'000);
  for (int i = 0; i < 20'000; ++i) {
    readings.push_back({"hwmon-nct6798-temp" + std::to_string(i % 7),
                        1'764'400'000'000 + Millis{i} * 5000, 20 + (i % 100) / 7.0});
  }
  const auto messages = encode_readings(readings, false);
  ASSERT_GT(messages.size(), 10U);
  std::vector<Reading> decoded;
  for (const std::string& message : messages) {
    EXPECT_LE(message.size(), kBatchBytes);
    EXPECT_LE(message.size(), Channel::kMaxMessageBytes);
    const auto part = std::get<Readings>(decode(message));
    EXPECT_FALSE(part.live);
    decoded.insert(decoded.end(), part.readings.begin(), part.readings.end());
  }
  EXPECT_EQ(decoded, readings);

  std::vector<Rollup> rows;
  rows.reserve(5000);
  for (int i = 0; i < 5000; ++i) {
    rows.push_back({"w1-28-000005e2fdc3", i * 300'000LL, -1.5, 2.25, 7.125, 60, 1});
  }
  std::vector<Rollup> decoded_rows;
  for (const std::string& message : encode_rollups(Resolution::kFiveMinutes, rows)) {
    EXPECT_LE(message.size(), kBatchBytes);
    const auto part = std::get<Rollups>(decode(message));
    EXPECT_EQ(part.resolution, Resolution::kFiveMinutes);
    decoded_rows.insert(decoded_rows.end(), part.rows.begin(), part.rows.end());
  }
  EXPECT_EQ(decoded_rows, rows);
}

TEST(SensorWire, TheEndAndErrorsRoundTrip) {
  EXPECT_TRUE(std::holds_alternative<HistoryEnd>(round_trip(HistoryEnd{})));
  const auto failure = std::get<Failure>(round_trip(Failure{"not-found", "no sensor \"x\" here"}));
  EXPECT_EQ(failure.code, "not-found");
  EXPECT_EQ(failure.message, "no sensor \"x\" here");
}

TEST(SensorWire, HostileMessagesAreRefusedWithAReason) {
  EXPECT_EQ(refusal("{"), "not JSON");
  EXPECT_EQ(refusal("[1,2]"), "not a JSON object");
  EXPECT_EQ(refusal(R"({"op":"dance"})"), "unknown op \"dance\"");
  EXPECT_EQ(refusal(R"({"sensors":[]})"), "missing \"op\"");
  EXPECT_NE(refusal(R"({"op":"subscribe","sensors":["../etc"]})").find("is not a sensor id"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"subscribe","sensors":"all"})").find("not an array"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"subscribe","history":{"from":10,"to":5,"resolution":"raw"}})")
                .find("ends before it starts"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"subscribe","history":{"from":1,"to":5,"resolution":"1w"}})")
                .find("raw, 5m, 1h"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"subscribe","history":{"from":1.5,"to":5,"resolution":"raw"}})")
                .find("whole number"),
            std::string::npos);
  EXPECT_NE(
      refusal(
          R"({"op":"subscribe","history":{"from":18446744073709551615,"to":5,"resolution":"raw"}})")
          .find("out of range"),
      std::string::npos);
  EXPECT_NE(refusal(R"({"op":"subscribe","live":"yes"})").find("true or false"), std::string::npos);
  EXPECT_NE(refusal(R"({"op":"readings","rows":[["a",1,"hot"]]})").find("not a number"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"readings","rows":[["a",1]]})").find("[sensor, time, value]"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"rollups","resolution":"5m","rows":[["a",0,3,2,1,4,0]]})")
                .find("hold together"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"rollups","resolution":"raw","rows":[]})").find("cannot be raw"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"op":"sensors","interval_ms":0,"sensors":[]})").find("not positive"),
            std::string::npos);
  EXPECT_NE(
      refusal(
          R"({"op":"sensors","interval_ms":5,"sensors":[{"id":"a","kind":"pressure","unit":"hPa","name":"x","source":"y"}]})")
          .find("temperature or humidity"),
      std::string::npos);

  nlohmann::json many = {{"op", "subscribe"}, {"sensors", nlohmann::json::array()}};
  for (std::size_t i = 0; i <= kMaxSensors; ++i) {
    many["sensors"].push_back("s" + std::to_string(i));
  }
  EXPECT_NE(refusal(many.dump()).find("more than"), std::string::npos);
}

TEST(SensorWire, SensorIdsAreTheProtocolsCharactersOnly) {
  EXPECT_TRUE(valid_sensor_id("w1-28-000005e2fdc3"));
  EXPECT_TRUE(valid_sensor_id("hwmon-coretemp-temp1.a_b~c"));
  EXPECT_FALSE(valid_sensor_id(""));
  EXPECT_FALSE(valid_sensor_id("a b"));
  EXPECT_FALSE(valid_sensor_id("a\nb"));
  EXPECT_FALSE(valid_sensor_id("é"));
  EXPECT_FALSE(valid_sensor_id(std::string(129, 'a')));
  EXPECT_TRUE(valid_sensor_id(std::string(128, 'a')));
}

}  // namespace
}  // namespace peernet::sensors
