#pragma once

// Keeping a recordings folder from filling the disk: delete by age, by a total size and by a
// minimum of free space, oldest first, never the segment being written.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace peernet::camera {

struct RetentionRules {
  /// Recordings older than this go.
  std::optional<std::chrono::seconds> max_age;
  /// The oldest go until all of them together take at most this.
  std::optional<std::uint64_t> max_bytes;
  /// The oldest go until the file system has at least this free.
  std::optional<std::uint64_t> min_free_bytes;
};

/// One recording on disk.
struct Recording {
  std::filesystem::path path;
  std::uint64_t bytes = 0;
  std::chrono::system_clock::time_point modified;
};

/// What to delete, oldest first: every recording older than max_age; then the oldest until the
/// rest fit in max_bytes; then the oldest until `free_bytes` (plus what was deleted) reaches
/// min_free_bytes. `current`, the segment being written, is never among them, whatever the
/// rules say; it still counts towards the total.
std::vector<std::filesystem::path> plan_deletions(std::vector<Recording> recordings,
                                                  const RetentionRules& rules,
                                                  std::chrono::system_clock::time_point now,
                                                  std::uint64_t free_bytes,
                                                  const std::filesystem::path& current);

/// The recordings in `dir`: files named as recording_name() names them, and nothing else, so
/// that whatever else lives in the folder is never touched.
std::vector<Recording> list_recordings(const std::filesystem::path& dir);

/// "CAMERA_2026-11-30_14-05-00.webm" for a segment of `camera` started at `start` (UTC);
/// characters outside A-Z a-z 0-9 . _ ~ - in the camera's name become "-".
std::string recording_name(const std::string& camera, std::chrono::system_clock::time_point start);

/// Lists `dir`, plans against the file system's free space, deletes; returns what it deleted.
/// A file that cannot be deleted is logged and skipped.
std::vector<std::filesystem::path> enforce_retention(const std::filesystem::path& dir,
                                                     const RetentionRules& rules,
                                                     const std::filesystem::path& current);

}  // namespace peernet::camera
