// `peernet sensors` end to end: a real peernetd on loopback, `peernet sensors serve` reading a
// fake sysfs tree laid out as the kernel lays it out, `peernet sensors ls|watch|export` in other
// processes, real WebRTC data channels between them.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/process.h"
#include "integration/daemon_process.h"
#include "sensors/time_text.h"

namespace peernet {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::DaemonProcess;
using testing::Outcome;
using testing::Process;
using testing::TempDir;
using testing::wait_for;

constexpr const char* kHwmon = "hwmon-acpitz-temp1";
constexpr const char* kDhtTemperature = "iio-dht22-temp";
constexpr const char* kDhtHumidity = "iio-dht22-humidity";

void write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  // Replaced, as a value changes in sysfs: never a half-written number for the reader.
  const fs::path temporary = path.string() + ".new";
  std::ofstream(temporary) << content;
  fs::rename(temporary, path);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

/// Lines of `text` that are readings of `sensor` ("TIME SENSOR VALUE UNIT QUALITY").
std::vector<std::string> readings_of(const std::string& text, const std::string& sensor) {
  std::vector<std::string> found;
  for (const std::string& line : lines_of(text)) {
    if (line.find(" " + sensor + " ") != std::string::npos) {
      found.push_back(line);
    }
  }
  return found;
}

class SensorsCliTest : public ::testing::Test {
 protected:
  SensorsCliTest() {
    // hwmon: a device folder, with hwmon0 a link into it as in /sys/class/hwmon.
    const fs::path device = sysfs() / "devices/virtual/thermal/thermal_zone0/hwmon0";
    write_file(device / "name", "acpitz\n");
    write_file(device / "temp1_input", "27800\n");
    fs::create_directories(sysfs() / "class/hwmon");
    fs::create_directory_symlink(device, sysfs() / "class/hwmon/hwmon0");
    // IIO: the dht11 driver's files for a DHT22.
    const fs::path iio = sysfs() / "bus/iio/devices/iio:device0";
    write_file(iio / "name", "dht22\n");
    write_file(iio / "in_temp_input", "4100\n");
    write_file(iio / "in_humidityrelative_input", "63500\n");
  }

  fs::path sysfs() const { return sysfs_.path(); }
  fs::path hwmon_input() const {
    return sysfs() / "devices/virtual/thermal/thermal_zone0/hwmon0/temp1_input";
  }
  fs::path dht_temperature() const { return sysfs() / "bus/iio/devices/iio:device0/in_temp_input"; }
  fs::path state() const { return logs_.path() / "state"; }

  std::unique_ptr<Process> start(const std::vector<std::string>& args) {
    return peernet_.start(args);
  }
  Outcome run(const std::vector<std::string>& args, seconds timeout = seconds{60}) {
    return peernet_.run(args, timeout);
  }

  /// Starts `peernet sensors serve` on the fake sysfs, reading every 200 ms, and waits until it
  /// is registered.
  std::unique_ptr<Process> serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{
        "-v",  "sensors", "serve",   "--sysfs",     sysfs().string(), "--interval",
        "0.2", "--name",  "weather", "--state-dir", state().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = start(args);
    wait_for(
        *process, [&] { return process->err().find("Ctrl-C") != std::string::npos; },
        "serve to register");
    return process;
  }

  DaemonProcess daemon_;
  TempDir sysfs_;
  TempDir logs_;
  testing::PeernetRunner peernet_{daemon_.port(), logs_.path()};
};

TEST_F(SensorsCliTest, TheRoomListsTheSensorsBeforeAnyoneConnects) {
  auto server = serve();
  const Outcome listed = run({"sensors", "ls"});
  ASSERT_EQ(listed.status, 0) << listed.err;
  EXPECT_NE(listed.out.find("weather"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(kHwmon), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find(kDhtHumidity), std::string::npos) << listed.out;

  const Outcome json = run({"sensors", "ls", "--json"});
  ASSERT_EQ(json.status, 0) << json.err;
  const auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed.size(), 1U);
  const auto& sensors = parsed[0]["sensors"];
  ASSERT_EQ(sensors.size(), 3U) << json.out;
  bool humidity_found = false;
  for (const auto& sensor : sensors) {
    if (sensor["id"] == kDhtHumidity) {
      humidity_found = true;
      EXPECT_EQ(sensor["kind"], "humidity");
      EXPECT_EQ(sensor["unit"], "%RH");
      EXPECT_EQ(sensor["source"], "iio");
    }
  }
  EXPECT_TRUE(humidity_found) << json.out;
}

TEST_F(SensorsCliTest, WatchShowsLiveReadingsAsTheyChange) {
  auto server = serve();
  auto watcher = start({"sensors", "watch", "--history", "0s"});
  // The DHT22 is read every 2 s at most (its driver's cache), the others every round.
  ASSERT_TRUE(wait_for(
      *watcher, [&] { return !readings_of(watcher->out(), kDhtHumidity).empty(); },
      "a first reading of each"));
  EXPECT_NE(watcher->out().find(std::string(kHwmon) + " 27.8 °C ok"), std::string::npos)
      << watcher->out();
  EXPECT_NE(watcher->out().find(std::string(kDhtHumidity) + " 63.5 %RH ok"), std::string::npos)
      << watcher->out();

  write_file(hwmon_input(), "31250\n");
  EXPECT_TRUE(wait_for(
      *watcher,
      [&] {
        return watcher->out().find(std::string(kHwmon) + " 31.2 °C ok") != std::string::npos ||
               watcher->out().find(std::string(kHwmon) + " 31.3 °C ok") != std::string::npos;
      },
      "the new value"));
  // Readings arrive once per round, in order, each round newer than the last.
  const auto hwmon = readings_of(watcher->out(), kHwmon);
  ASSERT_GE(hwmon.size(), 2U);
  for (std::size_t i = 1; i < hwmon.size(); ++i) {
    EXPECT_LT(hwmon[i - 1].substr(0, 24), hwmon[i].substr(0, 24)) << watcher->out();
  }
}

TEST_F(SensorsCliTest, AFailedReadIsStaleNeverZeroNorTheOldValue) {
  auto server = serve();
  auto watcher = start({"sensors", "watch", "--history", "0s", "--sensor", kDhtTemperature});
  ASSERT_TRUE(wait_for(
      *watcher,
      [&] {
        return watcher->out().find(std::string(kDhtTemperature) + " 4.1 °C ok") !=
               std::string::npos;
      },
      "a good reading"));
  // The dht11 driver answers a failed read with EIO: a link to /proc/self/mem gives the reader
  // a real EIO at offset 0.
  fs::remove(dht_temperature());
  fs::create_symlink("/proc/self/mem", dht_temperature());
  ASSERT_TRUE(wait_for(
      *watcher,
      [&] {
        return watcher->out().find(std::string(kDhtTemperature) + " - °C stale") !=
               std::string::npos;
      },
      "a stale reading"));
  bool stale_seen = false;
  for (const std::string& line : readings_of(watcher->out(), kDhtTemperature)) {
    stale_seen = stale_seen || line.ends_with("stale");
    if (stale_seen) {
      EXPECT_TRUE(line.ends_with("- °C stale")) << "a value after the sensor failed: " << line;
    }
  }
  EXPECT_NE(server->err().find("is stale: EIO"), std::string::npos) << server->err();
  // Only the sensor asked for.
  EXPECT_TRUE(readings_of(watcher->out(), kHwmon).empty()) << watcher->out();
}

TEST_F(SensorsCliTest, AlertsRaiseClearAndRunTheirCommand) {
  auto server = serve();
  const fs::path log = logs_.path() / "alerts.log";
  auto watcher =
      start({"sensors", "watch", "--history", "0s", "--alert",
             std::string(kHwmon) + ">30,hysteresis=1,for=0.5s", "--on-alert",
             "echo \"$PEERNET_ALERT $PEERNET_SENSOR $PEERNET_VALUE\" >> " + log.string()});
  ASSERT_TRUE(wait_for(
      *watcher, [&] { return !readings_of(watcher->out(), kHwmon).empty(); }, "a first reading"));
  write_file(hwmon_input(), "35000\n");
  ASSERT_TRUE(wait_for(
      *watcher, [&] { return watcher->out().find("ALERT") != std::string::npos; }, "the alert"));
  // Within the hysteresis band it holds; below it, it clears.
  write_file(hwmon_input(), "29500\n");
  std::this_thread::sleep_for(milliseconds{1500});
  EXPECT_EQ(watcher->out().find("CLEARED"), std::string::npos) << watcher->out();
  write_file(hwmon_input(), "25000\n");
  ASSERT_TRUE(wait_for(
      *watcher, [&] { return watcher->out().find("CLEARED") != std::string::npos; },
      "the alert to clear"));
  ASSERT_TRUE(wait_for(
      *watcher,
      [&] {
        std::ifstream in(log);
        const std::string text{std::istreambuf_iterator<char>(in), {}};
        return text.find("cleared") != std::string::npos;
      },
      "the command's second run"));
  std::ifstream in(log);
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  EXPECT_EQ(text,
            "raised " + std::string(kHwmon) + " 35.0\ncleared " + std::string(kHwmon) + " 25.0\n");
}

TEST_F(SensorsCliTest, AtStartWatchShowsTheAlertRaisedInHistoryThatStillHolds) {
  write_file(hwmon_input(), "35000\n");
  auto server = serve();
  std::this_thread::sleep_for(seconds{2});
  const Outcome watched = run({"sensors", "watch", "--sensor", kHwmon, "--count", "3",
                               "--stale-after", "1s", "--alert", std::string(kHwmon) + ">30"});
  ASSERT_EQ(watched.status, 0) << watched.err;
  // Raised by the history's first reading and held since: shown once, not once per reading.
  EXPECT_EQ(std::ranges::count(
                lines_of(watched.out), true,
                [](const std::string& line) { return line.find("ALERT") != std::string::npos; }),
            1)
      << watched.out;
  EXPECT_EQ(watched.out.find("STALE"), std::string::npos) << watched.out;
  EXPECT_EQ(readings_of(watched.out, kHwmon).size(), 3U) << watched.out;
}

TEST_F(SensorsCliTest, ExportWritesTheRangeAsCsvAndJsonAndRollups) {
  auto server = serve();
  std::this_thread::sleep_for(seconds{2});  // about ten rounds of reads
  const fs::path csv = logs_.path() / "range.csv";
  const Outcome exported =
      run({"sensors", "export", "--from", "-1h", "--sensor", kHwmon, "-o", csv.string()});
  ASSERT_EQ(exported.status, 0) << exported.err;
  std::ifstream in(csv);
  const auto lines = lines_of({std::istreambuf_iterator<char>(in), {}});
  ASSERT_GE(lines.size(), 6U);
  EXPECT_EQ(lines[0], "time,sensor,name,value,unit,quality");
  const std::regex row(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z,hwmon-acpitz-temp1,acpitz temp1,27\.8,°C,ok$)");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_TRUE(std::regex_match(lines[i], row)) << lines[i];
  }

  const Outcome json = run({"sensors", "export", "--from", "-1h", "--format", "json"});
  ASSERT_EQ(json.status, 0) << json.err;
  const auto rows = nlohmann::json::parse(json.out);
  ASSERT_GE(rows.size(), lines.size() - 1 + 2);
  std::vector<std::string> humidity_times;
  for (const auto& reading : rows) {
    if (reading["sensor"] == kDhtHumidity) {
      humidity_times.push_back(reading["time"]);
      EXPECT_EQ(reading["value"], 63.5);
      EXPECT_EQ(reading["unit"], "%RH");
      EXPECT_EQ(reading["quality"], "ok");
    }
  }
  // The dht11 driver answers from a cache for 2 s: read every 200 ms, a DHT22 is read only
  // every 2 s, so that no cached value passes for a new one.
  ASSERT_GE(humidity_times.size(), 1U);
  for (std::size_t i = 1; i < humidity_times.size(); ++i) {
    // Whole times, not seconds within the hour: a run may cross an hour or a day.
    const auto millis_of = [](const std::string& t) {
      const auto time = sensors::parse_time(t, sensors::Millis{0});
      EXPECT_TRUE(time.has_value()) << t;
      return time.value_or(sensors::Millis{0});
    };
    EXPECT_GE(millis_of(humidity_times[i]) - millis_of(humidity_times[i - 1]),
              sensors::Millis{1999})
        << humidity_times[i - 1] << " then " << humidity_times[i];
  }

  const Outcome rollups = run({"sensors", "export", "--from", "-1h", "--resolution", "5m",
                               "--sensor", kHwmon, "--format", "json"});
  ASSERT_EQ(rollups.status, 0) << rollups.err;
  const auto buckets = nlohmann::json::parse(rollups.out);
  ASSERT_GE(buckets.size(), 1U);
  std::uint64_t counted = 0;
  for (const auto& bucket : buckets) {
    EXPECT_EQ(bucket["min"], 27.8);
    EXPECT_EQ(bucket["max"], 27.8);
    counted += bucket["count"].get<std::uint64_t>();
  }
  EXPECT_GE(counted, lines.size() - 1);
}

TEST_F(SensorsCliTest, HistorySurvivesAKilledServer) {
  auto server = serve();
  std::this_thread::sleep_for(seconds{2});
  const Outcome before = run({"sensors", "export", "--from", "-1h", "--sensor", kHwmon});
  ASSERT_EQ(before.status, 0) << before.err;
  const auto rows_before = lines_of(before.out);
  ASSERT_GE(rows_before.size(), 5U);

  server->kill_now();
  write_file(hwmon_input(), "12000\n");
  server = serve();
  const Outcome after = run({"sensors", "export", "--from", "-1h", "--sensor", kHwmon});
  ASSERT_EQ(after.status, 0) << after.err;
  const auto rows_after = lines_of(after.out);
  // Everything exported before the kill is still there, in order, then the new readings.
  ASSERT_GT(rows_after.size(), rows_before.size()) << after.out;
  for (std::size_t i = 0; i < rows_before.size(); ++i) {
    EXPECT_EQ(rows_after[i], rows_before[i]);
  }
  EXPECT_NE(rows_after.back().find(",12,°C,ok"), std::string::npos) << after.out;
}

TEST_F(SensorsCliTest, WatchReconnectsWhenTheServerComesBack) {
  auto server = serve();
  auto watcher = start({"sensors", "watch", "--history", "0s", "--sensor", kHwmon});
  ASSERT_TRUE(wait_for(
      *watcher, [&] { return !readings_of(watcher->out(), kHwmon).empty(); }, "a first reading"));
  server->kill_now();
  write_file(hwmon_input(), "22200\n");
  server = serve();
  EXPECT_TRUE(wait_for(
      *watcher,
      [&] { return watcher->out().find(std::string(kHwmon) + " 22.2 °C ok") != std::string::npos; },
      "a reading from the restarted server"));
  EXPECT_NE(watcher->err().find("reconnected"), std::string::npos) << watcher->err();
  EXPECT_TRUE(watcher->running());
}

TEST_F(SensorsCliTest, MistakesGetAClearMessageAndStatus) {
  auto server = serve();
  const Outcome unknown = run({"sensors", "watch", "--sensor", "nope"});
  EXPECT_EQ(unknown.status, 5) << unknown.err;
  EXPECT_NE(unknown.err.find("no sensor \"nope\""), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find(kHwmon), std::string::npos) << unknown.err;

  const Outcome rule = run({"sensors", "watch", "--alert", "outside>>3"});
  EXPECT_EQ(rule.status, 2) << rule.err;
  EXPECT_NE(rule.err.find("is not a number"), std::string::npos) << rule.err;

  const Outcome when = run({"sensors", "export", "--from", "yesterday-ish"});
  EXPECT_EQ(when.status, 2) << when.err;
  EXPECT_NE(when.err.find("is not a time"), std::string::npos) << when.err;

  const Outcome nothing = run({"sensors", "serve", "--sysfs", (logs_.path() / "none").string()});
  EXPECT_EQ(nothing.status, 1) << nothing.err;
  EXPECT_NE(nothing.err.find("no sensors found"), std::string::npos) << nothing.err;
  EXPECT_NE(nothing.err.find("--simulate"), std::string::npos) << nothing.err;
}

}  // namespace
}  // namespace peernet
