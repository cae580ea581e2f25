#include "sensors/history.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace peernet::sensors {
namespace {

namespace fs = std::filesystem;
using std::chrono::days;
using std::chrono::sys_days;

constexpr Millis kMinute = 60'000;
constexpr Millis kFiveMinutes = 5 * kMinute;
constexpr Millis kHour = 60 * kMinute;
constexpr Millis kDay = 24 * kHour;
constexpr Millis kAll = std::numeric_limits<Millis>::max();
constexpr Millis kNever = std::numeric_limits<Millis>::min();

/// Milliseconds at 00:00 UTC of a date.
Millis midnight(std::chrono::year_month_day date) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(sys_days{date}.time_since_epoch())
      .count();
}

const Millis kMarch1 = midnight(std::chrono::year{2024} / 3 / 1);

Reading ok(const std::string& sensor, Millis time, double value) {
  return Reading{sensor, time, value};
}

Reading stale(const std::string& sensor, Millis time) { return Reading{sensor, time, {}}; }

/// A fresh folder, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "peernet-history-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  /// A folder for a History that does not exist yet, so that History creates it.
  fs::path history() const { return path_ / "history"; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void append_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::app);
  out << text;
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

HistoryOptions in_memory() { return HistoryOptions{}; }

HistoryOptions on_disk(const fs::path& dir) {
  HistoryOptions options;
  options.dir = dir;
  return options;
}

/// Everything a History answers, to compare two of them.
struct Snapshot {
  std::vector<Reading> raw;
  std::vector<Rollup> five_minutes;
  std::vector<Rollup> hours;
  std::vector<std::optional<Reading>> latest;

  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const History& history, const std::vector<std::string>& sensors) {
  Snapshot out{history.raw(kNever, kAll),
               history.rollups(Resolution::kFiveMinutes, kNever, kAll),
               history.rollups(Resolution::kHour, kNever, kAll),
               {}};
  for (const auto& sensor : sensors) {
    out.latest.push_back(history.latest(sensor));
  }
  return out;
}

TEST(HistoryNames, ResolutionsRoundTrip) {
  for (auto resolution : {Resolution::kRaw, Resolution::kFiveMinutes, Resolution::kHour}) {
    EXPECT_EQ(resolution_from_name(resolution_name(resolution)), resolution);
  }
  EXPECT_EQ(resolution_name(Resolution::kFiveMinutes), "5m");
  EXPECT_EQ(resolution_name(Resolution::kHour), "1h");
  EXPECT_EQ(resolution_from_name("5min"), std::nullopt);
  EXPECT_EQ(bucket_length(Resolution::kRaw), 0);
  EXPECT_EQ(bucket_length(Resolution::kFiveMinutes), 300'000);
  EXPECT_EQ(bucket_length(Resolution::kHour), 3'600'000);
}

TEST(HistoryRollups, MinMeanMaxCountAndStaleOfAKnownSeries) {
  History history(in_memory());
  const Millis t0 = kMarch1 + 10 * kFiveMinutes;
  ASSERT_TRUE(history.add(ok("s", t0, 1.5)));
  ASSERT_TRUE(history.add(stale("s", t0 + 1000)));
  ASSERT_TRUE(history.add(ok("s", t0 + 2000, -2.25)));
  ASSERT_TRUE(history.add(stale("s", t0 + 3000)));
  ASSERT_TRUE(history.add(ok("s", t0 + kFiveMinutes - 1, 4.0)));
  ASSERT_TRUE(history.add(ok("s", t0 + kFiveMinutes, 10.0)));  // the next bucket closes this one

  const auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (Rollup{"s", t0, -2.25, (1.5 + -2.25 + 4.0) / 3, 4.0, 3, 2}));
  EXPECT_EQ(rows[1], (Rollup{"s", t0 + kFiveMinutes, 10.0, 10.0, 10.0, 1, 0}));

  // The hour holds all of them.
  const auto hours = history.rollups(Resolution::kHour, kNever, kAll);
  ASSERT_EQ(hours.size(), 1u);
  EXPECT_EQ(hours[0], (Rollup{"s", kMarch1, -2.25, (1.5 + -2.25 + 4.0 + 10.0) / 4, 10.0, 4, 2}));
}

TEST(HistoryRollups, MeanIsTheExactSumOverTheCount) {
  History history(in_memory());
  double sum = 0;
  for (int i = 0; i < 300; ++i) {
    const double value = 20.0 + 0.1 * (i % 7);
    sum += value;
    ASSERT_TRUE(history.add(ok("s", kMarch1 + Millis{i} * 1000, value)));
  }
  const auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].mean, sum / 300);
  EXPECT_EQ(rows[0].count, 300u);
}

TEST(HistoryRollups, MeanStaysWithinMinAndMax) {
  History history(in_memory());
  // 0.1 + 0.1 + 0.1 is 0.30000000000000004, a third of which is more than 0.1.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(history.add(ok("s", i, 0.1)));
  }
  const auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].mean, 0.1);
}

TEST(HistoryRollups, BucketsEndAtExactlyFiveMinutes) {
  History history(in_memory());
  ASSERT_TRUE(history.add(ok("s", kMarch1 + kFiveMinutes - 1, 1)));
  ASSERT_TRUE(history.add(ok("s", kMarch1 + kFiveMinutes, 2)));
  ASSERT_TRUE(history.add(ok("s", kMarch1 + 2 * kFiveMinutes - 1, 3)));
  ASSERT_TRUE(history.add(ok("s", kMarch1 + 2 * kFiveMinutes, 4)));
  const auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (Rollup{"s", kMarch1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(rows[1], (Rollup{"s", kMarch1 + kFiveMinutes, 2, 2.5, 3, 2, 0}));
  EXPECT_EQ(rows[2], (Rollup{"s", kMarch1 + 2 * kFiveMinutes, 4, 4, 4, 1, 0}));
}

TEST(HistoryRollups, BucketsAlignToTheEpoch) {
  History history(in_memory());
  ASSERT_TRUE(history.add(ok("s", 1'700'000'123'456, 1)));
  EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll).at(0).start, 1'700'000'100'000);
  EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll).at(0).start, 1'699'999'200'000);
}

TEST(HistoryRollups, NegativeTimesRoundDown) {
  History history(in_memory());
  ASSERT_TRUE(history.add(ok("s", -kFiveMinutes - 1, 1)));  // in [-10 min, -5 min)
  ASSERT_TRUE(history.add(ok("s", -kFiveMinutes, 2)));      // in [-5 min, 0)
  ASSERT_TRUE(history.add(ok("s", -1, 3)));                 // in [-5 min, 0)
  ASSERT_TRUE(history.add(ok("s", 0, 4)));                  // in [0, 5 min)
  const auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (Rollup{"s", -2 * kFiveMinutes, 1, 1, 1, 1, 0}));
  EXPECT_EQ(rows[1], (Rollup{"s", -kFiveMinutes, 2, 2.5, 3, 2, 0}));
  EXPECT_EQ(rows[2], (Rollup{"s", 0, 4, 4, 4, 1, 0}));
  const auto hours = history.rollups(Resolution::kHour, kNever, kAll);
  ASSERT_EQ(hours.size(), 2u);
  EXPECT_EQ(hours[0], (Rollup{"s", -kHour, 1, 2, 3, 3, 0}));
  EXPECT_EQ(hours[1], (Rollup{"s", 0, 4, 4, 4, 1, 0}));
}

TEST(HistoryRollups, FiveMinutesAndHoursOfTheSameReadings) {
  History history(in_memory());
  // One reading a minute for two hours, valued by its minute: 0, 1, ..., 119.
  for (int minute = 0; minute < 120; ++minute) {
    ASSERT_TRUE(history.add(ok("s", kMarch1 + minute * kMinute, minute)));
  }
  const auto fives = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(fives.size(), 24u);
  for (std::size_t i = 0; i < fives.size(); ++i) {
    const double first = static_cast<double>(i) * 5;
    EXPECT_EQ(fives[i], (Rollup{"s", kMarch1 + static_cast<Millis>(i) * kFiveMinutes, first,
                                first + 2, first + 4, 5, 0}));
  }
  const auto hours = history.rollups(Resolution::kHour, kNever, kAll);
  ASSERT_EQ(hours.size(), 2u);
  EXPECT_EQ(hours[0], (Rollup{"s", kMarch1, 0, 29.5, 59, 60, 0}));
  EXPECT_EQ(hours[1], (Rollup{"s", kMarch1 + kHour, 60, 89.5, 119, 60, 0}));

  // from <= start < to, and by sensor.
  const auto some = history.rollups(Resolution::kFiveMinutes, kMarch1 + kFiveMinutes,
                                    kMarch1 + 3 * kFiveMinutes, {"s"});
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[0].start, kMarch1 + kFiveMinutes);
  EXPECT_TRUE(history.rollups(Resolution::kFiveMinutes, kNever, kAll, {"other"}).empty());
  EXPECT_TRUE(history.rollups(Resolution::kRaw, kNever, kAll).empty());
}

TEST(HistoryRollups, TheBucketStillFillingIsIncluded) {
  History history(in_memory());
  ASSERT_TRUE(history.add(ok("s", kMarch1 + 1000, 5)));
  auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (Rollup{"s", kMarch1, 5, 5, 5, 1, 0}));
  ASSERT_TRUE(history.add(ok("s", kMarch1 + 2000, 7)));
  rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (Rollup{"s", kMarch1, 5, 6, 7, 2, 0}));
}

TEST(HistoryRollups, ABucketOfStaleReadingsOnlyHasNoRow) {
  History history(in_memory());
  ASSERT_TRUE(history.add(stale("s", kMarch1)));
  ASSERT_TRUE(history.add(stale("s", kMarch1 + 1000)));
  EXPECT_TRUE(history.rollups(Resolution::kFiveMinutes, kNever, kAll).empty());
  EXPECT_TRUE(history.rollups(Resolution::kHour, kNever, kAll).empty());
  ASSERT_TRUE(history.add(ok("s", kMarch1 + kFiveMinutes, 3)));  // closes the stale bucket
  const auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (Rollup{"s", kMarch1 + kFiveMinutes, 3, 3, 3, 1, 0}));
  EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll).at(0),
            (Rollup{"s", kMarch1, 3, 3, 3, 1, 2}));
  // The raw readings show the gap.
  const auto raw = history.raw(kNever, kAll);
  ASSERT_EQ(raw.size(), 3u);
  EXPECT_EQ(raw[0], stale("s", kMarch1));
  EXPECT_EQ(raw[0].quality(), Quality::kStale);
}

TEST(HistoryRaw, MergedSortedAndLimitedToTheNewest) {
  History history(in_memory());
  ASSERT_TRUE(history.add(ok("b", 10, 1)));
  ASSERT_TRUE(history.add(ok("a", 10, 2)));
  ASSERT_TRUE(history.add(ok("a", 20, 3)));
  ASSERT_TRUE(history.add(stale("b", 30)));
  ASSERT_TRUE(history.add(ok("c", 40, 5)));

  EXPECT_EQ(history.raw(kNever, kAll),
            (std::vector<Reading>{ok("a", 10, 2), ok("b", 10, 1), ok("a", 20, 3), stale("b", 30),
                                  ok("c", 40, 5)}));
  EXPECT_EQ(history.raw(kNever, kAll, {}, 2),
            (std::vector<Reading>{stale("b", 30), ok("c", 40, 5)}));
  EXPECT_EQ(history.raw(kNever, kAll, {}, 3, History::Keep::kOldest),
            (std::vector<Reading>{ok("a", 10, 2), ok("b", 10, 1), ok("a", 20, 3)}));
  EXPECT_EQ(history.raw(10, 30),
            (std::vector<Reading>{ok("a", 10, 2), ok("b", 10, 1), ok("a", 20, 3)}));
  EXPECT_EQ(history.raw(kNever, kAll, {"b", "b", "nope"}),
            (std::vector<Reading>{ok("b", 10, 1), stale("b", 30)}));
  EXPECT_TRUE(history.raw(kNever, kAll, {}, 0).empty());
  EXPECT_TRUE(history.raw(40, 40).empty());
  EXPECT_EQ(history.latest("b"), stale("b", 30));
  EXPECT_EQ(history.latest("nope"), std::nullopt);
}

TEST(HistoryRaw, TheRingKeepsTheNewestCapacityReadings) {
  HistoryOptions options;
  options.raw_capacity = 5;
  History history(options);
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(history.add(ok("s", kMarch1 + Millis{i} * 1000, i)));
  }
  const auto raw = history.raw(kNever, kAll);
  ASSERT_EQ(raw.size(), 5u);
  EXPECT_EQ(raw.front(), ok("s", kMarch1 + 7000, 7));
  EXPECT_EQ(raw.back(), ok("s", kMarch1 + 11000, 11));
  // Rollups still count every reading.
  EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll).at(0).count, 12u);
}

TEST(HistoryAdd, OlderAndEqualTimesAreDropped) {
  History history(in_memory());
  ASSERT_TRUE(history.add(ok("s", 1000, 1)));
  EXPECT_FALSE(history.add(ok("s", 999, 2)));
  EXPECT_FALSE(history.add(ok("s", 1000, 3)));
  EXPECT_FALSE(history.add(stale("s", 1000)));
  EXPECT_TRUE(history.add(ok("other", 500, 4)));  // each sensor has its own order
  EXPECT_EQ(history.raw(kNever, kAll, {"s"}), std::vector<Reading>{ok("s", 1000, 1)});
  EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll, {"s"}).at(0).count, 1u);
}

TEST(HistoryAdd, BadIdsAndNonFiniteValuesAreRefused) {
  History history(in_memory());
  for (const std::string& id :
       std::vector<std::string>{"", "a b", "a\nb", "a/b", "\xc3\xa4", "tab\t",
                                std::string(129, 'x'), std::string("a\0b", 3)}) {
    EXPECT_FALSE(history.add(ok(id, 1, 1))) << id;
  }
  EXPECT_TRUE(history.add(ok("Az09._~-", 1, 1)));
  EXPECT_TRUE(history.add(ok(std::string(128, 'x'), 1, 1)));
  EXPECT_FALSE(history.add(ok("s", 1, std::numeric_limits<double>::infinity())));
  EXPECT_FALSE(history.add(ok("s", 2, -std::numeric_limits<double>::infinity())));
  EXPECT_FALSE(history.add(ok("s", 3, std::numeric_limits<double>::quiet_NaN())));
  EXPECT_TRUE(history.add(ok("s", 4, 1)));
  EXPECT_EQ(history.raw(kNever, kAll, {"s"}).size(), 1u);
  // Times whose year has no four digits.
  EXPECT_FALSE(history.add(ok("s", kAll, 1)));
  EXPECT_FALSE(history.add(ok("t", kNever, 1)));
}

TEST(HistoryAdd, SensorsAreCapped) {
  History history(in_memory());
  for (int i = 0; i < 1024; ++i) {
    ASSERT_TRUE(history.add(ok("s" + std::to_string(i), 1, 1)));
  }
  EXPECT_FALSE(history.add(ok("one-too-many", 1, 1)));
  EXPECT_TRUE(history.add(ok("s0", 2, 1)));
}

TEST(HistoryOptionsCheck, RefusesUnusableOptions) {
  HistoryOptions options;
  options.keep_raw = kHour - 1;
  EXPECT_THROW(History{options}, HistoryError);
  options.keep_raw = kHour;
  options.raw_capacity = 0;
  EXPECT_THROW(History{options}, HistoryError);
  options.raw_capacity = 1;
  EXPECT_NO_THROW(History{options});
}

TEST(HistoryDisk, AnUnusableFolderThrows) {
  TempDir temp;
  const fs::path file = temp.path() / "a-file";
  append_file(file, "x");
  EXPECT_THROW(History{on_disk(file)}, HistoryError);
  EXPECT_THROW(History{on_disk(file / "below")}, HistoryError);
  try {
    History history(on_disk(file));
  } catch (const HistoryError& e) {
    EXPECT_NE(std::string(e.what()).find("not a folder"), std::string::npos) << e.what();
  }
}

TEST(HistoryDisk, OneWriterPerFolder) {
  TempDir temp;
  History first(on_disk(temp.history()));
  EXPECT_THROW(History{on_disk(temp.history())}, HistoryError);
}

TEST(HistoryDisk, CreatesTheFolderPrivate) {
  TempDir temp;
  History history(on_disk(temp.history() / "deeper"));
  EXPECT_EQ(fs::status(temp.history() / "deeper").permissions() & fs::perms::all,
            fs::perms::owner_all);
}

TEST(HistoryDisk, LinesAreTextThatReadsBackExactly) {
  TempDir temp;
  {
    History history(on_disk(temp.history()));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 1000, 21.5)));
    ASSERT_TRUE(history.add(stale("s", kMarch1 + 2000)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 3000, 0.1)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 4000, 1.0 / 3)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + kFiveMinutes, -0.5)));
  }
  EXPECT_EQ(
      lines_of(temp.history() / "raw-2024-03-01.log"),
      (std::vector<std::string>{"1709251201000 s 21.5", "1709251202000 s -", "1709251203000 s 0.1",
                                "1709251204000 s 0.3333333333333333", "1709251500000 s -0.5"}));
  const double mean = (21.5 + 0.1 + 1.0 / 3) / 3;
  std::array<char, 32> shortest{};
  const auto end = std::to_chars(shortest.data(), shortest.data() + shortest.size(), mean).ptr;
  EXPECT_EQ(lines_of(temp.history() / "5m-2024-03-01.log"),
            std::vector<std::string>{"1709251200000 s 0.1 " + std::string(shortest.data(), end) +
                                     " 21.5 3 1"});
  EXPECT_FALSE(fs::exists(temp.history() / "1h-2024-03-01.log"));  // the hour is still open

  History reopened(on_disk(temp.history()));
  EXPECT_EQ(reopened.rollups(Resolution::kFiveMinutes, kNever, kAll).at(0).mean, mean);
  EXPECT_EQ(reopened.latest("s"), ok("s", kMarch1 + kFiveMinutes, -0.5));
}

/// A day and a bit of two sensors, one reading every 37 s, some stale, values that do not
/// round nicely.
std::vector<Reading> a_day_of_readings(Millis from, int count) {
  std::vector<Reading> readings;
  for (int i = 0; i < count; ++i) {
    const Millis time = from + Millis{i} * 37'000;
    const double value = 20 + std::sin(i * 0.01) * 7.3 + i * 1e-7;
    readings.push_back(i % 17 == 5 ? stale("a", time) : ok("a", time, value));
    readings.push_back(ok("b", time + 11, value / 3));
  }
  return readings;
}

TEST(HistoryDisk, ARestartLosesNothingAndCountsNothingTwice) {
  TempDir temp;
  HistoryOptions options = on_disk(temp.history());
  options.raw_capacity = 50;  // fewer than the readings of the hour still filling
  const std::vector<std::string> sensors = {"a", "b"};
  // Ends mid-hour and mid-five-minutes, so both have a bucket still filling.
  const auto readings = a_day_of_readings(kMarch1 - 2 * kHour + 123, 2500);
  const std::size_t half = readings.size() / 2 + 1;
  HistoryOptions memory_options = options;
  memory_options.dir.clear();
  History reference(memory_options);  // what a History that never restarted says
  for (const auto& reading : readings) {
    ASSERT_TRUE(reference.add(reading));
  }

  Snapshot before;
  {
    History history(options);
    for (std::size_t i = 0; i < half; ++i) {
      ASSERT_TRUE(history.add(readings[i]));
    }
    before = snapshot(history, sensors);
    ASSERT_EQ(before.raw.size(), 100u);
    const Millis last = readings[half - 1].time;
    ASSERT_EQ(before.five_minutes.back().start, last / kFiveMinutes * kFiveMinutes);
    ASSERT_EQ(before.hours.back().start, last / kHour * kHour);
    ASSERT_GT(before.hours.back().count, 50u);
  }
  {
    History history(options);
    EXPECT_TRUE(snapshot(history, sensors) == before);
    EXPECT_EQ(history.raw(kNever, kAll), before.raw);
    EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll), before.five_minutes);
    EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll), before.hours);
    // Not again.
    EXPECT_FALSE(history.add(readings[half - 1]));
    for (std::size_t i = half; i < readings.size(); ++i) {
      ASSERT_TRUE(history.add(readings[i]));
    }
    EXPECT_TRUE(snapshot(history, sensors) == snapshot(reference, sensors));
  }
  History again(options);
  const Snapshot after = snapshot(again, sensors);
  const Snapshot expected = snapshot(reference, sensors);
  EXPECT_EQ(after.raw, expected.raw);
  EXPECT_EQ(after.five_minutes, expected.five_minutes);
  EXPECT_EQ(after.hours, expected.hours);
  EXPECT_EQ(after.latest, expected.latest);
}

TEST(HistoryDisk, AKillLosesNothingThatAddReturned) {
  TempDir temp;
  const auto readings = a_day_of_readings(kMarch1 + 17, 400);
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    History history(on_disk(temp.history()));
    for (const auto& reading : readings) {
      if (!history.add(reading)) {
        ::_exit(1);
      }
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited with " << WEXITSTATUS(status);
  ASSERT_EQ(WTERMSIG(status), SIGKILL);

  History reference(in_memory());
  for (const auto& reading : readings) {
    ASSERT_TRUE(reference.add(reading));
  }
  History history(on_disk(temp.history()));
  EXPECT_TRUE(snapshot(history, {"a", "b"}) == snapshot(reference, {"a", "b"}));
  EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll),
            reference.rollups(Resolution::kHour, kNever, kAll));
}

TEST(HistoryDisk, AFullDiskLeavesNoFragment) {
  TempDir temp;
  const fs::path raw_file = temp.history() / "raw-2024-03-01.log";
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    // Files of at most 100 bytes: the fifth line of 18 bytes is written in part.
    std::signal(SIGXFSZ, SIG_IGN);
    History history(on_disk(temp.history()));
    const rlimit limit{100, 100};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) {
      ::_exit(1);
    }
    for (int i = 0; i < 10; ++i) {
      if (!history.add(ok("s", kMarch1 + 1000 + i, i))) {
        ::_exit(2);  // the disk failing is no reason to drop a reading
      }
    }
    ::_exit(history.raw(kNever, kAll).size() == 10 ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(read_file(raw_file),
            "1709251201000 s 0\n1709251201001 s 1\n1709251201002 s 2\n1709251201003 s 3\n"
            "1709251201004 s 4\n");
  History history(on_disk(temp.history()));
  EXPECT_EQ(history.raw(kNever, kAll).size(), 5u);
}

TEST(HistoryDisk, NegativeTimesGoToTheirOwnDays) {
  TempDir temp;
  Snapshot before;
  {
    History history(on_disk(temp.history()));
    ASSERT_TRUE(history.add(ok("s", -kFiveMinutes - 1, 1)));
    ASSERT_TRUE(history.add(ok("s", -1, 2)));
    ASSERT_TRUE(history.add(ok("s", 5, 3)));
    before = snapshot(history, {"s"});
  }
  EXPECT_EQ(files_in(temp.history()),
            (std::vector<std::string>{"1h-1969-12-31.log", "5m-1969-12-31.log",
                                      "raw-1969-12-31.log", "raw-1970-01-01.log"}));
  History history(on_disk(temp.history()));
  EXPECT_TRUE(snapshot(history, {"s"}) == before);
}

TEST(HistoryDisk, ATornLastLineIsCutOff) {
  TempDir temp;
  const fs::path raw_file = temp.history() / "raw-2024-03-01.log";
  {
    History history(on_disk(temp.history()));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 1000, 1)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 2000, 2)));
  }
  append_file(raw_file, "1709251203000 s 3");  // killed before the newline
  {
    History history(on_disk(temp.history()));
    EXPECT_EQ(history.raw(kNever, kAll),
              (std::vector<Reading>{ok("s", kMarch1 + 1000, 1), ok("s", kMarch1 + 2000, 2)}));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 3000, 30)));
    ASSERT_TRUE(history.add(stale("s", kMarch1 + 4000)));
  }
  const std::string text = read_file(raw_file);
  EXPECT_EQ(text, "1709251201000 s 1\n1709251202000 s 2\n1709251203000 s 30\n1709251204000 s -\n");
  History history(on_disk(temp.history()));
  EXPECT_EQ(history.raw(kNever, kAll).size(), 4u);
  EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll).at(0),
            (Rollup{"s", kMarch1, 1, 11, 30, 3, 1}));
}

TEST(HistoryDisk, ATornRollupLineIsCutOffToo) {
  TempDir temp;
  const fs::path file = temp.history() / "5m-2024-03-01.log";
  {
    History history(on_disk(temp.history()));
    ASSERT_TRUE(history.add(ok("s", kMarch1, 1)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + kFiveMinutes, 2)));
  }
  append_file(file, "1709251500000 s 2 2");
  History history(on_disk(temp.history()));
  EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll),
            (std::vector<Rollup>{{"s", kMarch1, 1, 1, 1, 1, 0},
                                 {"s", kMarch1 + kFiveMinutes, 2, 2, 2, 1, 0}}));
  EXPECT_EQ(lines_of(file), std::vector<std::string>{"1709251200000 s 1 1 1 1 0"});
}

TEST(HistoryDisk, LostRollupFilesAreRebuiltFromRawOnes) {
  TempDir temp;
  Snapshot before;
  {
    History history(on_disk(temp.history()));
    for (Millis t = kMarch1; t < kMarch1 + 3 * kFiveMinutes; t += 60'000) {
      ASSERT_TRUE(history.add(ok("s", t, static_cast<double>((t - kMarch1) / 60'000))));
    }
    before = snapshot(history, {"s"});
  }
  fs::remove(temp.history() / "5m-2024-03-01.log");
  fs::remove(temp.history() / "1h-2024-03-01.log");
  {
    History history(on_disk(temp.history()));
    EXPECT_EQ(snapshot(history, {"s"}), before);
  }
  // And written again, so the next start has them without replaying.
  EXPECT_EQ(lines_of(temp.history() / "5m-2024-03-01.log"),
            (std::vector<std::string>{"1709251200000 s 0 2 4 5 0", "1709251500000 s 5 7 9 5 0"}));
}

TEST(HistoryDisk, DamagedLinesAreSkipped) {
  TempDir temp;
  fs::create_directories(temp.history());
  append_file(temp.history() / "raw-2024-03-01.log",
              "1709251201000 s 1\n"
              "garbage\n"
              "1709251202000 s nan\n"
              "1709251203000 s 1 2\n"
              "1709251204000 bad/id 1\n"
              "\n"
              "1709164800000 s 5\n"  // a day earlier than the file's
              "1709251205000 s 2\n"
              "1709251204000 s 9\n");  // older than the one before
  append_file(temp.history() / "5m-2024-03-01.log",
              "1709251200001 s 1 1 1 1 0\n"  // not the start of a bucket
              "1709251200000 s 2 1 3 1 0\n"  // the mean outside [min, max]
              "1709251200000 s 1 2 3 0 0\n"  // no ok reading
              "1709251200000 t 1 2 3 2 0\n");
  append_file(temp.history() / "notes.txt", "not ours\n");
  append_file(temp.history() / "raw-2024-02-30.log", "1709251201000 x 1\n");  // no such day
  History history(on_disk(temp.history()));
  EXPECT_EQ(history.raw(kNever, kAll),
            (std::vector<Reading>{ok("s", kMarch1 + 1000, 1), ok("s", kMarch1 + 5000, 2)}));
  EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll),
            (std::vector<Rollup>{{"s", kMarch1, 1, 1.5, 2, 2, 0}, {"t", kMarch1, 1, 2, 3, 2, 0}}));
  EXPECT_EQ(read_file(temp.history() / "notes.txt"), "not ours\n");
}

TEST(HistoryDisk, DayFilesSwitchAtUtcMidnight) {
  TempDir temp;
  {
    History history(on_disk(temp.history()));
    ASSERT_TRUE(history.add(ok("s", kMarch1 - kMinute, 1)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 - 1, 2)));
    ASSERT_TRUE(history.add(ok("s", kMarch1, 3)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + kMinute, 4)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + kHour, 5)));
  }
  EXPECT_EQ(
      files_in(temp.history()),
      (std::vector<std::string>{"1h-2024-02-29.log", "1h-2024-03-01.log", "5m-2024-02-29.log",
                                "5m-2024-03-01.log", "raw-2024-02-29.log", "raw-2024-03-01.log"}));
  EXPECT_EQ(lines_of(temp.history() / "raw-2024-02-29.log"),
            (std::vector<std::string>{"1709251140000 s 1", "1709251199999 s 2"}));
  EXPECT_EQ(
      lines_of(temp.history() / "raw-2024-03-01.log"),
      (std::vector<std::string>{"1709251200000 s 3", "1709251260000 s 4", "1709254800000 s 5"}));
  EXPECT_EQ(lines_of(temp.history() / "5m-2024-02-29.log"),
            std::vector<std::string>{"1709250900000 s 1 1.5 2 2 0"});
  EXPECT_EQ(lines_of(temp.history() / "5m-2024-03-01.log"),
            std::vector<std::string>{"1709251200000 s 3 3.5 4 2 0"});
  EXPECT_EQ(lines_of(temp.history() / "1h-2024-02-29.log"),
            std::vector<std::string>{"1709247600000 s 1 1.5 2 2 0"});
  EXPECT_EQ(lines_of(temp.history() / "1h-2024-03-01.log"),
            std::vector<std::string>{"1709251200000 s 3 3.5 4 2 0"});
}

TEST(HistoryExpire, ForgetsByTimeInMemoryAndOnDisk) {
  TempDir temp;
  HistoryOptions options = on_disk(temp.history());
  options.keep_raw = 2 * kHour;
  options.keep_five_minutes = 2 * kDay;
  options.keep_hours = 3 * kDay;
  History history(options);
  // One reading every 10 minutes from Feb 26 00:00 to Mar 1 23:50.
  const Millis from = kMarch1 - 4 * kDay;
  for (Millis time = from; time < kMarch1 + kDay; time += 10 * kMinute) {
    const Millis minutes = (time - from) / kMinute;  // whole minutes: the value is exact
    ASSERT_TRUE(history.add(ok("s", time, static_cast<double>(minutes))));
  }
  ASSERT_EQ(files_in(temp.history()).size(), 15u);  // 5 days of 3 kinds

  const Millis now = kMarch1 + kDay;  // Mar 2 00:00
  history.expire(now);
  const auto raw = history.raw(kNever, kAll);
  ASSERT_EQ(raw.size(), 12u);
  EXPECT_EQ(raw.front().time, now - 2 * kHour);
  const auto fives = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
  EXPECT_EQ(fives.front().start, now - 2 * kDay);
  const auto hours = history.rollups(Resolution::kHour, kNever, kAll);
  EXPECT_EQ(hours.front().start, now - 3 * kDay);
  // Whole days only: raw keeps Mar 1 (it ends after now - 2 h), 5m keeps Feb 29 and Mar 1.
  EXPECT_EQ(
      files_in(temp.history()),
      (std::vector<std::string>{"1h-2024-02-28.log", "1h-2024-02-29.log", "1h-2024-03-01.log",
                                "5m-2024-02-29.log", "5m-2024-03-01.log", "raw-2024-03-01.log"}));
  // Still appending where it should.
  ASSERT_TRUE(history.add(ok("s", now, 1)));
  EXPECT_EQ(lines_of(temp.history() / "raw-2024-03-02.log"),
            std::vector<std::string>{"1709337600000 s 1"});
  EXPECT_EQ(lines_of(temp.history() / "5m-2024-03-01.log").back(),
            "1709337000000 s 7190 7190 7190 1 0");

  // Everything goes, in the end.
  history.expire(now + 10 * kDay);
  EXPECT_TRUE(history.raw(kNever, kAll).empty());
  EXPECT_TRUE(history.rollups(Resolution::kFiveMinutes, kNever, kAll).empty());
  EXPECT_TRUE(history.rollups(Resolution::kHour, kNever, kAll).empty());
  EXPECT_TRUE(files_in(temp.history()).empty());
}

TEST(HistoryExpire, ClosesTheBucketsOfASilentSensorBeforeTheirReadingsGo) {
  TempDir temp;
  HistoryOptions options = on_disk(temp.history());
  options.keep_raw = kHour;
  Snapshot before;
  {
    History history(options);
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 10 * kHour, 1)));
    ASSERT_TRUE(history.add(ok("s", kMarch1 + 10 * kHour + 1000, 2)));
    before = snapshot(history, {});
    // The readings leave memory, not the disk (the day is not over): their buckets are closed.
    history.expire(kMarch1 + 12 * kHour);
    EXPECT_TRUE(history.raw(kNever, kAll).empty());
    EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll), before.five_minutes);
    EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll), before.hours);
    EXPECT_EQ(lines_of(temp.history() / "1h-2024-03-01.log").size(), 1u);
  }
  {
    // The raw readings on disk are not counted again.
    History history(options);
    EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll), before.five_minutes);
    EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll), before.hours);
    EXPECT_EQ(history.raw(kNever, kAll), before.raw);  // back from disk until the next expire()
    history.expire(kMarch1 + 12 * kHour);
    EXPECT_TRUE(history.raw(kNever, kAll).empty());

    history.expire(kMarch1 + kDay + 2 * kHour);  // now the raw file of Mar 1 goes
    EXPECT_FALSE(fs::exists(temp.history() / "raw-2024-03-01.log"));
    EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll), before.hours);
  }
  History history(options);
  EXPECT_EQ(history.rollups(Resolution::kFiveMinutes, kNever, kAll), before.five_minutes);
  EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll), before.hours);
  // A late reading for a closed bucket is kept raw but not counted twice.
  ASSERT_TRUE(history.add(ok("s", kMarch1 + 10 * kHour + 2000, 3)));
  EXPECT_EQ(history.rollups(Resolution::kHour, kNever, kAll), before.hours);
  EXPECT_EQ(history.raw(kNever, kAll).size(), 1u);
}

TEST(HistoryExpire, RollupsStayWithinTheirKeepTimeWithoutExpire) {
  TempDir temp;
  HistoryOptions options = on_disk(temp.history());
  options.keep_five_minutes = kHour;
  options.keep_hours = 2 * kHour;
  Snapshot before;
  {
    History history(options);
    for (Millis time = kMarch1; time < kMarch1 + 5 * kHour + 7 * kMinute; time += kMinute) {
      ASSERT_TRUE(history.add(ok("s", time, 1)));
    }
    // The newest closed bucket starts at 5:00, so the oldest kept starts at 4:00; then 5:05.
    const auto fives = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
    ASSERT_EQ(fives.size(), 14u);
    EXPECT_EQ(fives.front().start, kMarch1 + 4 * kHour);
    EXPECT_EQ(fives.back().start, kMarch1 + 5 * kHour + kFiveMinutes);
    const auto hours = history.rollups(Resolution::kHour, kNever, kAll);
    ASSERT_EQ(hours.size(), 4u);  // 2:00, 3:00, 4:00 closed, 5:00 filling
    EXPECT_EQ(hours.front().start, kMarch1 + 2 * kHour);
    before = snapshot(history, {"s"});
  }
  History history(options);
  EXPECT_TRUE(snapshot(history, {"s"}) == before);
}

TEST(HistoryThreads, AddAndQueryAtOnce) {
  TempDir temp;
  History history(on_disk(temp.history()));
  constexpr int kReadings = 3000;
  std::atomic<bool> done = false;
  std::thread writer([&] {
    for (int i = 0; i < kReadings; ++i) {
      history.add(ok(i % 2 == 0 ? "a" : "b", kMarch1 + Millis{i} * 1000, i));
    }
    done = true;
  });
  std::size_t queries = 0;
  while (!done || queries == 0) {
    const auto raw = history.raw(kNever, kAll, {}, 100);
    EXPECT_LE(raw.size(), 100u);
    const auto rows = history.rollups(Resolution::kFiveMinutes, kNever, kAll);
    for (const auto& row : rows) {
      EXPECT_LE(row.min, row.mean);
      EXPECT_LE(row.mean, row.max);
    }
    history.latest("a");
    if (++queries % 16 == 0) {
      history.expire(kMarch1);
    }
  }
  writer.join();
  EXPECT_EQ(history.raw(kNever, kAll).size(), static_cast<std::size_t>(kReadings));
  std::uint32_t count = 0;
  for (const auto& row : history.rollups(Resolution::kHour, kNever, kAll)) {
    count += row.count;
  }
  EXPECT_EQ(count, static_cast<std::uint32_t>(kReadings));
}

}  // namespace
}  // namespace peernet::sensors
