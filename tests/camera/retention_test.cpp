// Retention of recordings: the plan on made-up files (times and sizes under the test's control),
// then the real thing on a folder.
#include "camera/retention.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "integration/daemon_process.h"

namespace peernet::camera {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using SystemClock = std::chrono::system_clock;

constexpr std::uint64_t kMiB = 1024 * 1024;

/// Ten recordings of 100 MiB, one an hour, the newest an hour before `now`.
struct Folder {
  SystemClock::time_point now = SystemClock::time_point{} + hours{24 * 365 * 50};
  std::vector<Recording> recordings;
  Folder() {
    for (int i = 0; i < 10; ++i) {
      recordings.push_back(
          {fs::path("cam_" + std::to_string(i) + ".webm"), 100 * kMiB, now - hours{10 - i}});
    }
  }
  std::vector<std::string> plan(const RetentionRules& rules, std::uint64_t free_bytes,
                                const fs::path& current = {}) const {
    std::vector<Recording> shuffled = recordings;
    std::reverse(shuffled.begin(), shuffled.end());  // the plan must not rely on order
    std::vector<std::string> names;
    for (const auto& path : plan_deletions(shuffled, rules, now, free_bytes, current)) {
      names.push_back(path.string());
    }
    return names;
  }
};

const std::uint64_t kPlenty = 1000 * kMiB * 1024;

TEST(RetentionPlanTest, NoRulesDeleteNothing) {
  const Folder folder;
  EXPECT_TRUE(folder.plan({}, 0).empty());
}

TEST(RetentionPlanTest, AgeDeletesWhatIsOlder) {
  const Folder folder;
  RetentionRules rules;
  rules.max_age = hours{7} + std::chrono::minutes{30};
  EXPECT_EQ(folder.plan(rules, kPlenty),
            (std::vector<std::string>{"cam_0.webm", "cam_1.webm", "cam_2.webm"}));
}

TEST(RetentionPlanTest, ASizeCapDeletesTheOldestUntilTheRestFit) {
  const Folder folder;
  RetentionRules rules;
  rules.max_bytes = 750 * kMiB;  // 1000 MiB now: three must go to get to 700
  EXPECT_EQ(folder.plan(rules, kPlenty),
            (std::vector<std::string>{"cam_0.webm", "cam_1.webm", "cam_2.webm"}));
  rules.max_bytes = 1000 * kMiB;
  EXPECT_TRUE(folder.plan(rules, kPlenty).empty()) << "exactly at the cap is within it";
}

TEST(RetentionPlanTest, AMinimumOfFreeSpaceDeletesTheOldestUntilThereIsEnough) {
  const Folder folder;
  RetentionRules rules;
  rules.min_free_bytes = 500 * kMiB;
  EXPECT_EQ(folder.plan(rules, 250 * kMiB),
            (std::vector<std::string>{"cam_0.webm", "cam_1.webm", "cam_2.webm"}));
  EXPECT_TRUE(folder.plan(rules, 500 * kMiB).empty());
}

TEST(RetentionPlanTest, TheSegmentBeingWrittenIsNeverDeleted) {
  Folder folder;
  folder.recordings[0].path = "cam_now.webm";  // an old name, but the one being written
  RetentionRules rules;
  rules.max_age = hours{1};
  rules.max_bytes = 0;
  rules.min_free_bytes = kPlenty * 2;
  const auto doomed = folder.plan(rules, 0, "cam_now.webm");
  EXPECT_EQ(doomed.size(), 9U);
  EXPECT_EQ(std::count(doomed.begin(), doomed.end(), "cam_now.webm"), 0);
}

TEST(RetentionPlanTest, RulesTogetherTakeWhicheverDeletesMore) {
  const Folder folder;
  RetentionRules rules;
  rules.max_age = hours{9} + std::chrono::minutes{30};  // only cam_0
  rules.max_bytes = 850 * kMiB;                         // cam_0 and cam_1
  rules.min_free_bytes = 100 * kMiB;                    // with 100 free: none
  EXPECT_EQ(folder.plan(rules, 100 * kMiB), (std::vector<std::string>{"cam_0.webm", "cam_1.webm"}));
}

TEST(RetentionFolderTest, OnlyRecordingsAreListedAndDeleted) {
  const testing::TempDir dir;
  const auto write = [&](const std::string& name, std::size_t bytes) {
    std::ofstream(dir.path() / name) << std::string(bytes, 'x');
    return dir.path() / name;
  };
  const auto old_one = write("porch_2026-11-01_10-00-00.webm", 4000);
  const auto second = write("porch_2026-11-01_10-10-00-2.webm", 3000);
  const auto current = write("porch_2026-11-01_10-20-00.webm", 2000);
  write("notes.txt", 10000);
  write("porch.webm", 10000);                                       // not a name the recorder makes
  fs::create_directory(dir.path() / "x_2026-11-01_10-00-00.webm");  // a folder
  fs::last_write_time(old_one, fs::file_time_type::clock::now() - hours{3});
  fs::last_write_time(second, fs::file_time_type::clock::now() - hours{2});

  const auto listed = list_recordings(dir.path());
  EXPECT_EQ(listed.size(), 3U);

  RetentionRules rules;
  rules.max_bytes = 0;  // everything would go, but the rest of the folder is not ours
  const auto deleted = enforce_retention(dir.path(), rules, current);
  EXPECT_EQ(deleted.size(), 2U);
  EXPECT_FALSE(fs::exists(old_one));
  EXPECT_FALSE(fs::exists(second));
  EXPECT_TRUE(fs::exists(current));
  EXPECT_TRUE(fs::exists(dir.path() / "notes.txt"));
  EXPECT_TRUE(fs::exists(dir.path() / "porch.webm"));
  EXPECT_TRUE(fs::exists(dir.path() / "x_2026-11-01_10-00-00.webm"));
}

TEST(RetentionFolderTest, FileNamesCarryTheCameraAndTheUtcStart) {
  const auto start = SystemClock::time_point{} + std::chrono::seconds{1764511500};
  EXPECT_EQ(recording_name("porch", start), "porch_2025-11-30_14-05-00.webm");
  EXPECT_EQ(recording_name("front door/../x", start), "front-door-..-x_2025-11-30_14-05-00.webm");
  EXPECT_EQ(recording_name("", start), "camera_2025-11-30_14-05-00.webm");
}

}  // namespace
}  // namespace peernet::camera
