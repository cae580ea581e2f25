#include "sensors/config.h"

#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sensors/fake_sysfs.h"

namespace peernet::sensors {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

/// A source that reads whatever the test last set.
class FakeSource final : public Source {
 public:
  FakeSource(std::string id, Kind kind, std::optional<double> value)
      : info_{.id = std::move(id),
              .kind = kind,
              .unit = std::string(unit_of(kind)),
              .name = "found name",
              .source = "hwmon"},
        value_(value) {}

  const SensorInfo& info() const noexcept override { return info_; }
  ReadResult read(Millis /*now*/) override {
    return value_ ? ReadResult{value_, {}} : ReadResult{std::nullopt, "EIO"};
  }
  void set(std::optional<double> value) { value_ = value; }

 private:
  SensorInfo info_;
  std::optional<double> value_;
};

/// A folder of its own for each test's config files.
class SensorsConfigTest : public ::testing::Test {
 protected:
  std::filesystem::path write(std::string_view text) const {
    return folder_.write("sensors.toml", text);
  }

  /// The error loading `text` gives; fails the test when it loads.
  std::string error_of(std::string_view text) const {
    const auto file = write(text);
    try {
      load_sensors_config(file);
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(), HasSubstr(file.string()));
      return e.what();
    }
    ADD_FAILURE() << "loaded: " << text;
    return {};
  }

  test::FakeSysfs folder_;
};

std::vector<std::unique_ptr<Source>> some_sources() {
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(std::make_unique<FakeSource>("hwmon-coretemp-temp1", Kind::kTemperature, 45.0));
  sources.push_back(std::make_unique<FakeSource>("w1-28-000005e2fdc3", Kind::kTemperature, 23.125));
  sources.push_back(std::make_unique<FakeSource>("iio-dht11-humidity", Kind::kHumidity, 99.8));
  sources.push_back(std::make_unique<FakeSource>("sim-humidity", Kind::kHumidity, 60.0));
  return sources;
}

std::vector<std::string> ids(const std::vector<std::unique_ptr<Source>>& sources) {
  std::vector<std::string> out;
  out.reserve(sources.size());
  for (const auto& s : sources) {
    out.push_back(s->info().id);
  }
  return out;
}

TEST_F(SensorsConfigTest, LoadsNamesOffsetsAndIgnore) {
  const auto config = load_sensors_config(write(R"(# ~/.config/peernet/sensors.toml
[sensors.hwmon-coretemp-temp1]
name = "CPU"
[sensors.w1-28-000005e2fdc3]
name = "Outside – north wall"
offset = -0.4        # calibration
[sensors.sim-humidity]
ignore = true
[sensors.iio-dht11-temp]
offset = 2
)"));
  ASSERT_EQ(config.sensors.size(), 4U);
  const auto& cpu = config.sensors.at("hwmon-coretemp-temp1");
  EXPECT_EQ(cpu.name, "CPU");
  EXPECT_EQ(cpu.offset, 0.0);
  EXPECT_FALSE(cpu.ignore);
  const auto& outside = config.sensors.at("w1-28-000005e2fdc3");
  EXPECT_EQ(outside.name, "Outside – north wall");
  EXPECT_EQ(outside.offset, -0.4);
  EXPECT_TRUE(config.sensors.at("sim-humidity").ignore);
  EXPECT_FALSE(config.sensors.at("sim-humidity").name);
  // A whole number is a number too.
  EXPECT_EQ(config.sensors.at("iio-dht11-temp").offset, 2.0);
}

TEST_F(SensorsConfigTest, EmptyFileIsEmptyConfig) {
  EXPECT_TRUE(load_sensors_config(write("")).sensors.empty());
  EXPECT_TRUE(load_sensors_config(write("# nothing yet\n[sensors]\n")).sensors.empty());
}

TEST_F(SensorsConfigTest, UnknownKeyNamesFileLineAndKey) {
  EXPECT_THAT(error_of("[sensors.hwmon-coretemp-temp1]\nname = \"CPU\"\ncolour = \"red\"\n"),
              AllOf(HasSubstr(":3:"), HasSubstr("sensors.hwmon-coretemp-temp1.colour")));
  EXPECT_THAT(error_of("\nlisten = \"::\"\n"), AllOf(HasSubstr(":2:"), HasSubstr("listen")));
  // A misspelt table is an unknown key at the top.
  EXPECT_THAT(error_of("[sensor.hwmon-coretemp-temp1]\nname = \"CPU\"\n"),
              AllOf(HasSubstr(":1:"), HasSubstr("sensor")));
}

TEST_F(SensorsConfigTest, WrongTypesAreErrors) {
  EXPECT_THAT(error_of("[sensors.a]\nname = 5\n"),
              AllOf(HasSubstr(":2:"), HasSubstr("sensors.a.name"), HasSubstr("string")));
  EXPECT_THAT(error_of("[sensors.a]\n\noffset = \"-0.4\"\n"),
              AllOf(HasSubstr(":3:"), HasSubstr("sensors.a.offset"), HasSubstr("number")));
  EXPECT_THAT(error_of("[sensors.a]\nignore = \"yes\"\n"),
              AllOf(HasSubstr(":2:"), HasSubstr("sensors.a.ignore")));
  EXPECT_THAT(error_of("[sensors]\na = 5\n"), AllOf(HasSubstr(":2:"), HasSubstr("sensors.a")));
  EXPECT_THAT(error_of("sensors = 5\n"), AllOf(HasSubstr(":1:"), HasSubstr("sensors")));
}

TEST_F(SensorsConfigTest, BadNamesAreErrors) {
  EXPECT_THAT(error_of("[sensors.a]\nname = \"\"\n"),
              AllOf(HasSubstr(":2:"), HasSubstr("sensors.a.name"), HasSubstr("empty")));
  EXPECT_THAT(error_of("[sensors.a]\nname = \"" + std::string(65, 'x') + "\"\n"),
              AllOf(HasSubstr("sensors.a.name"), HasSubstr("64")));
  EXPECT_THAT(error_of("[sensors.a]\nname = \"bell\\u0007\"\n"), HasSubstr("control"));
  EXPECT_THAT(error_of("[sensors.a]\nname = \"nel\\u0085\"\n"), HasSubstr("control"));
  EXPECT_THAT(error_of("[sensors.a]\nname = \"two\\nlines\"\n"), HasSubstr("control"));
  // 64 bytes is still fine.
  const auto config =
      load_sensors_config(write("[sensors.a]\nname = \"" + std::string(64, 'x') + "\"\n"));
  EXPECT_EQ(config.sensors.at("a").name, std::string(64, 'x'));
}

TEST_F(SensorsConfigTest, NonFiniteOffsetsAreErrors) {
  for (const auto* value : {"inf", "-inf", "nan", "+nan"}) {
    EXPECT_THAT(error_of(std::string("[sensors.a]\noffset = ") + value + "\n"),
                AllOf(HasSubstr(":2:"), HasSubstr("sensors.a.offset"), HasSubstr("finite")))
        << value;
  }
}

TEST_F(SensorsConfigTest, IdsThatCannotMatchAreErrors) {
  EXPECT_THAT(error_of("[sensors.\"hwmon coretemp\"]\nname = \"CPU\"\n"),
              AllOf(HasSubstr(":1:"), HasSubstr("not a sensor id")));
}

TEST_F(SensorsConfigTest, SyntaxErrorsNameTheLine) {
  EXPECT_THAT(error_of("[sensors.a]\nname = \"CPU\"\nname = \"again\"\n"), HasSubstr(":3:"));
  EXPECT_THAT(error_of("[sensors.a]\n\nname = CPU\n"), HasSubstr(":3:"));
}

TEST_F(SensorsConfigTest, UnreadableFilesAreErrors) {
  EXPECT_THROW(load_sensors_config(folder_.path("missing.toml")), ConfigError);
  EXPECT_THROW(load_sensors_config(folder_.folder("a-folder")), ConfigError);
  // A FIFO would block an ordinary open until someone writes to it.
  EXPECT_THROW(load_sensors_config(folder_.fifo("a-fifo")), ConfigError);
}

TEST(ApplySensorsConfigTest, RenamesAndOffsets) {
  SensorsConfig config;
  config.sensors["hwmon-coretemp-temp1"].name = "CPU";
  config.sensors["w1-28-000005e2fdc3"] = {.name = "Outside", .offset = -0.4};
  config.sensors["iio-dht11-humidity"].offset = 1.5;
  auto sources = some_sources();
  EXPECT_TRUE(apply_sensors_config(config, sources).empty());
  ASSERT_EQ(ids(sources), ids(some_sources()));  // same sensors, same order, same ids

  EXPECT_EQ(sources[0]->info().name, "CPU");
  EXPECT_EQ(sources[0]->read(0).value, 45.0);
  EXPECT_EQ(sources[1]->info().name, "Outside");
  EXPECT_EQ(sources[1]->info().unit, "°C");
  EXPECT_EQ(sources[1]->info().source, "hwmon");
  EXPECT_EQ(sources[1]->read(0).value, 22.725);
  // An offset does not push humidity past 100 %RH.
  EXPECT_EQ(sources[2]->info().name, "found name");
  EXPECT_EQ(sources[2]->read(0).value, 100.0);
  EXPECT_EQ(sources[3]->info().name, "found name");
}

TEST(ApplySensorsConfigTest, FailedReadsStayFailed) {
  SensorsConfig config;
  config.sensors["w1-28-000005e2fdc3"].offset = -0.4;
  std::vector<std::unique_ptr<Source>> sources;
  auto fake = std::make_unique<FakeSource>("w1-28-000005e2fdc3", Kind::kTemperature, 20.0);
  auto* raw = fake.get();
  sources.push_back(std::move(fake));
  apply_sensors_config(config, sources);
  ASSERT_EQ(sources.size(), 1U);
  EXPECT_EQ(sources[0]->read(0).value, 19.6);
  raw->set(std::nullopt);
  const auto result = sources[0]->read(0);
  EXPECT_FALSE(result.value) << "an offset must not turn a failed read into " << *result.value;
  EXPECT_EQ(result.error, "EIO");
}

TEST(ApplySensorsConfigTest, IgnoredSensorsAreDropped) {
  SensorsConfig config;
  config.sensors["sim-humidity"].ignore = true;
  config.sensors["hwmon-coretemp-temp1"] = {.name = "CPU", .ignore = true};
  auto sources = some_sources();
  EXPECT_TRUE(apply_sensors_config(config, sources).empty());
  EXPECT_THAT(ids(sources), ElementsAre("w1-28-000005e2fdc3", "iio-dht11-humidity"));
}

TEST(ApplySensorsConfigTest, UnknownIdsAreReturned) {
  SensorsConfig config;
  config.sensors["w1-28-000005e2fdc3"].name = "Outside";
  config.sensors["w1-28-0000deadbeef"].name = "Garden";
  config.sensors["hwmon-nvme-temp1"].ignore = true;
  auto sources = some_sources();
  EXPECT_THAT(apply_sensors_config(config, sources),
              ElementsAre("hwmon-nvme-temp1", "w1-28-0000deadbeef"));
  EXPECT_EQ(sources.size(), 4U);
  EXPECT_EQ(sources[1]->info().name, "Outside");
}

TEST(ApplySensorsConfigTest, LoadedConfigAppliesEndToEnd) {
  test::FakeSysfs folder;
  const auto file = folder.write("sensors.toml",
                                 "[sensors.sim-temperature]\nname = \"Garden\"\noffset = 10\n"
                                 "[sensors.sim-humidity]\nignore = true\n");
  auto sources = discover(DiscoverOptions{.sysfs = folder.path("sys"), .simulate = true});
  const auto plain = simulated_source(Kind::kTemperature)->read(0);
  EXPECT_TRUE(apply_sensors_config(load_sensors_config(file), sources).empty());
  ASSERT_EQ(ids(sources), std::vector<std::string>{"sim-temperature"});
  EXPECT_EQ(sources[0]->info().name, "Garden");
  ASSERT_TRUE(plain.value);
  EXPECT_NEAR(*sources[0]->read(0).value, *plain.value + 10, 1e-9);
}

}  // namespace
}  // namespace peernet::sensors
