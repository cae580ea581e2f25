#pragma once

// The serving side's memory of what it read: the raw readings in a bounded ring per sensor, and
// rollups (min, mean, max) per 5 minutes and per hour, each kept for its own time. With a
// folder, every reading is appended to disk as it is added, so a restart (or a kill) loses
// nothing that add() had returned from. Lines are not synced one by one: a power loss may lose
// the last seconds the page cache held (expire() syncs). The file format is described at the top
// of history.cpp.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sensors/reading.h"

namespace peernet::sensors {

/// The resolutions history is kept at.
enum class Resolution { kRaw, kFiveMinutes, kHour };

std::string_view resolution_name(Resolution resolution) noexcept;  ///< "raw", "5m", "1h"
std::optional<Resolution> resolution_from_name(std::string_view name) noexcept;
/// The length of one rollup bucket: 300,000 or 3,600,000 ms (0 for kRaw).
Millis bucket_length(Resolution resolution) noexcept;

/// One bucket of one sensor: the ok readings with start <= time < start + bucket_length.
/// Stale readings count in `stale` only; a bucket with no ok reading has no row.
struct Rollup {
  std::string sensor;
  Millis start = 0;  ///< a multiple of the bucket length (buckets align to the epoch, UTC)
  double min = 0;
  double mean = 0;
  double max = 0;
  std::uint32_t count = 0;  ///< ok readings in the bucket
  std::uint32_t stale = 0;  ///< stale readings in the bucket

  bool operator==(const Rollup&) const = default;
};

struct HistoryOptions {
  /// Where to persist; empty keeps history in memory only.
  std::filesystem::path dir;
  /// Raw readings kept per sensor, and for how long (whichever ends first).
  std::size_t raw_capacity = 100'000;
  Millis keep_raw = Millis{48} * 3600 * 1000;
  /// How long rollups are kept.
  Millis keep_five_minutes = Millis{30} * 24 * 3600 * 1000;
  Millis keep_hours = Millis{400} * 24 * 3600 * 1000;
};

/// Thrown when the folder cannot be used (not writable, not a folder); what() says which.
class HistoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thread-safe: add() from the reading thread, the queries from any other.
class History {
 public:
  /// Loads what `options.dir` holds (a torn last line, from a kill mid-write, is skipped; any
  /// other damaged line is skipped and counted in a warning), then keeps appending to it. One
  /// History per folder at a time. Throws HistoryError for a folder that cannot be used or
  /// locked, keep_raw under one hour (the hour still filling is rebuilt from raw readings), or a
  /// raw_capacity or rollup keep time of 0.
  explicit History(HistoryOptions options);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  /// Records `reading` (times must not go backwards per sensor: an older one, or one as old as
  /// the newest, is dropped and false returned). Also false, and nothing recorded, for an id
  /// outside [A-Za-z0-9._~-] or longer than 128 bytes, a non-finite value, a year outside
  /// 0000-9999, or a new sensor beyond the 1024th. Closes the rollup buckets it moves past and
  /// appends to disk (a failing disk is logged; the reading is still kept in memory).
  bool add(const Reading& reading);

  /// Forgets what is older than each resolution's keep time, measured back from `now`, in
  /// memory and on disk (whole files at a time). Call now and then (hourly is plenty), and once
  /// after construction: what memory had forgotten but disk still held comes back at a restart.
  /// Closes the buckets of a sensor gone silent before their raw readings go, and syncs the files
  /// to disk (outside the lock).
  void expire(Millis now);

  /// Which readings raw() keeps when there are more than its limit.
  enum class Keep { kNewest, kOldest };

  /// Raw readings with from <= time < to, oldest first, of `sensors` (empty: all), at most
  /// `limit` (the newest ones when there are more, or the oldest: for reading in slices).
  std::vector<Reading> raw(Millis from, Millis to, const std::vector<std::string>& sensors = {},
                           std::size_t limit = SIZE_MAX, Keep keep = Keep::kNewest) const;
  /// Rollups with from <= start < to, oldest first, including each sensor's bucket still
  /// filling (its figures so far). `resolution` must not be kRaw (kRaw gives nothing).
  std::vector<Rollup> rollups(Resolution resolution, Millis from, Millis to,
                              const std::vector<std::string>& sensors = {}) const;

  /// The newest reading of `sensor`, if any.
  std::optional<Reading> latest(const std::string& sensor) const;

  const HistoryOptions& options() const noexcept { return options_; }

 private:
  struct State;
  HistoryOptions options_;
  mutable std::mutex mutex_;
  std::unique_ptr<State> state_;
};

}  // namespace peernet::sensors
