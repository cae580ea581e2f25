#include "camera/retention.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <ctime>
#include <regex>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace peernet::camera {
namespace {

namespace fs = std::filesystem;
using SystemClock = std::chrono::system_clock;

bool is_recording_name(const std::string& name) {
  static const std::regex pattern(
      R"(^[A-Za-z0-9._~-]+_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?\.webm$)");
  return std::regex_match(name, pattern);
}

}  // namespace

std::vector<fs::path> plan_deletions(std::vector<Recording> recordings, const RetentionRules& rules,
                                     SystemClock::time_point now, std::uint64_t free_bytes,
                                     const fs::path& current) {
  std::sort(recordings.begin(), recordings.end(), [](const Recording& a, const Recording& b) {
    return a.modified != b.modified ? a.modified < b.modified : a.path < b.path;
  });
  std::uint64_t total = 0;
  for (const auto& recording : recordings) {
    total += recording.bytes;
  }
  std::vector<fs::path> doomed;
  std::uint64_t freed = 0;
  const auto too_much = [&] {
    return (rules.max_bytes && total - freed > *rules.max_bytes) ||
           (rules.min_free_bytes && free_bytes + freed < *rules.min_free_bytes);
  };
  for (const auto& recording : recordings) {
    if (!current.empty() && recording.path == current) {
      continue;
    }
    const bool old = rules.max_age && now - recording.modified > *rules.max_age;
    if (!old && !too_much()) {
      continue;  // oldest first: a later one is newer, but may still be past the age limit
    }
    doomed.push_back(recording.path);
    freed += recording.bytes;
  }
  return doomed;
}

std::vector<Recording> list_recordings(const fs::path& dir) {
  std::vector<Recording> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code entry_ec;
    if (!entry.is_regular_file(entry_ec) || entry.is_symlink(entry_ec) ||
        !is_recording_name(entry.path().filename().string())) {
      continue;
    }
    const auto bytes = entry.file_size(entry_ec);
    const auto written = entry.last_write_time(entry_ec);
    if (entry_ec) {
      continue;  // gone meanwhile
    }
    found.push_back({entry.path(), bytes,
                     std::chrono::time_point_cast<SystemClock::duration>(
                         std::chrono::file_clock::to_sys(written))});
  }
  return found;
}

std::string recording_name(const std::string& camera, SystemClock::time_point start) {
  std::string safe = camera.empty() ? std::string("camera") : camera;
  for (char& c : safe) {
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '~' || c == '-';
    if (!plain) {
      c = '-';
    }
  }
  const std::time_t seconds = SystemClock::to_time_t(start);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{}_{:04}-{:02}-{:02}_{:02}-{:02}-{:02}.webm", safe, utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

std::vector<fs::path> enforce_retention(const fs::path& dir, const RetentionRules& rules,
                                        const fs::path& current) {
  struct statvfs space {};
  std::uint64_t free_bytes = 0;
  if (::statvfs(dir.c_str(), &space) == 0) {
    free_bytes = std::uint64_t{space.f_bavail} * space.f_frsize;
  } else if (rules.min_free_bytes) {
    spdlog::warn("cannot tell the free space of {}; keeping recordings", dir.string());
    return {};
  }
  std::vector<fs::path> deleted;
  for (const auto& path :
       plan_deletions(list_recordings(dir), rules, SystemClock::now(), free_bytes, current)) {
    std::error_code ec;
    if (fs::remove(path, ec)) {
      spdlog::info("retention: deleted {}", path.filename().string());
      deleted.push_back(path);
    } else if (ec) {
      spdlog::warn("retention: cannot delete {}: {}", path.filename().string(), ec.message());
    }
  }
  return deleted;
}

}  // namespace peernet::camera
