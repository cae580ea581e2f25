#include "sensors/history.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "common/unique_fd.h"

// On disk: one text file per kind and UTC day in the history folder, appended to as readings
// arrive, so that `less` and `grep` can read it:
//
//   raw-YYYY-MM-DD.log  "TIME_MS SENSOR_ID VALUE"            (VALUE "-" for a stale reading)
//   5m-YYYY-MM-DD.log   "START_MS SENSOR_ID MIN MEAN MAX COUNT STALE"   (closed buckets only)
//   1h-YYYY-MM-DD.log   the same per hour
//
// A raw line goes to the file of its reading's day, a rollup line to the file of its bucket's
// start (buckets never straddle days). Numbers are written in the shortest form that reads back
// to the same double. Each line is one write(2) to an O_APPEND descriptor: once add() returned,
// a kill of the process loses nothing. There is no fsync per line, so a power loss may lose the
// last seconds the page cache held; expire() syncs the files in use.
//
// The buckets still filling are not written: a restart rebuilds them from the raw readings newer
// than the newest closed bucket on disk. A bucket is written when a reading for a later one
// arrives (before that reading's raw line), or by expire() once its raw readings are about to
// be deleted, so every raw reading on disk is either in a closed bucket on disk or in the bucket
// a restart rebuilds.

namespace peernet::sensors {

std::string_view resolution_name(Resolution resolution) noexcept {
  switch (resolution) {
    case Resolution::kRaw:
      return "raw";
    case Resolution::kFiveMinutes:
      return "5m";
    case Resolution::kHour:
      return "1h";
  }
  return "raw";
}

std::optional<Resolution> resolution_from_name(std::string_view name) noexcept {
  if (name == "raw") {
    return Resolution::kRaw;
  }
  if (name == "5m") {
    return Resolution::kFiveMinutes;
  }
  if (name == "1h") {
    return Resolution::kHour;
  }
  return std::nullopt;
}

Millis bucket_length(Resolution resolution) noexcept {
  switch (resolution) {
    case Resolution::kRaw:
      return 0;
    case Resolution::kFiveMinutes:
      return Millis{5} * 60 * 1000;
    case Resolution::kHour:
      return Millis{3600} * 1000;
  }
  return 0;
}

namespace {

constexpr Millis kDay = Millis{24} * 3600 * 1000;
constexpr Millis kMinKeepRaw = Millis{3600} * 1000;
// File names carry four-digit years: 0000-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z.
// Keeping times in this range also keeps every bucket and day computation far from overflow.
constexpr Millis kMinTime = -62'167'219'200'000;
constexpr Millis kMaxTime = 253'402'300'799'999;
constexpr std::size_t kMaxSensors = 1024;
constexpr std::size_t kMaxLineBytes = 512;

// The rollup resolutions, in the order of the per-sensor arrays below.
constexpr std::size_t kRollupCount = 2;
constexpr std::array<Resolution, kRollupCount> kRollupResolutions = {Resolution::kFiveMinutes,
                                                                     Resolution::kHour};

// The kinds of file: raw, then one per rollup resolution (index 1 + the rollup's index).
constexpr std::size_t kLogCount = 3;
constexpr std::size_t kRawLog = 0;
constexpr std::array<std::string_view, kLogCount> kLogPrefixes = {"raw-", "5m-", "1h-"};
constexpr std::string_view kLogSuffix = ".log";

std::optional<std::size_t> rollup_index(Resolution resolution) noexcept {
  switch (resolution) {
    case Resolution::kFiveMinutes:
      return 0;
    case Resolution::kHour:
      return 1;
    case Resolution::kRaw:
      break;
  }
  return std::nullopt;
}

/// Rounds towards minus infinity, so that -1 ms lies in the bucket that starts at -len.
constexpr Millis floor_div(Millis a, Millis b) noexcept {
  Millis q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

constexpr Millis bucket_start(Millis time, Millis length) noexcept {
  return floor_div(time, length) * length;
}

constexpr Millis day_of(Millis time) noexcept { return floor_div(time, kDay); }

/// a - b, stopping at the lowest Millis instead of wrapping.
constexpr Millis saturating_sub(Millis a, Millis b) noexcept {
  Millis out = 0;
  if (__builtin_sub_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<Millis>::min() : std::numeric_limits<Millis>::max();
  }
  return out;
}

bool valid_time(Millis time) noexcept { return time >= kMinTime && time <= kMaxTime; }

std::string log_name(std::size_t log, Millis day) {
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{day}}};
  return fmt::format("{}{:04}-{:02}-{:02}{}", kLogPrefixes.at(log), static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                     kLogSuffix);
}

template <typename T>
bool parse_number(std::string_view text, T& out) noexcept {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

bool parse_value(std::string_view text, double& out) noexcept {
  return parse_number(text, out) && std::isfinite(out);
}

struct LogFile {
  std::size_t log = 0;
  Millis day = 0;
  std::string name;
};

/// The kind and day of a history file's name ("5m-2024-03-01.log"), or nullopt for any other
/// name.
std::optional<LogFile> parse_log_name(std::string_view name) {
  for (std::size_t log = 0; log < kLogCount; ++log) {
    const std::string_view prefix = kLogPrefixes.at(log);
    // "YYYY-MM-DD"
    constexpr std::size_t kDateBytes = 10;
    if (name.size() != prefix.size() + kDateBytes + kLogSuffix.size() ||
        name.substr(0, prefix.size()) != prefix ||
        name.substr(name.size() - kLogSuffix.size()) != kLogSuffix) {
      continue;
    }
    const std::string_view date = name.substr(prefix.size(), kDateBytes);
    if (date[4] != '-' || date[7] != '-') {
      return std::nullopt;
    }
    const auto digits = [](std::string_view part) {
      return std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    int year = 0;
    unsigned month = 0;
    unsigned day = 0;
    if (!digits(date.substr(0, 4)) || !digits(date.substr(5, 2)) || !digits(date.substr(8, 2)) ||
        !parse_number(date.substr(0, 4), year) || !parse_number(date.substr(5, 2), month) ||
        !parse_number(date.substr(8, 2), day)) {
      return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{month},
                                          std::chrono::day{day}};
    if (!ymd.ok()) {
      return std::nullopt;
    }
    return LogFile{log, std::chrono::sys_days{ymd}.time_since_epoch().count(), std::string(name)};
  }
  return std::nullopt;
}

/// Splits `line` at single spaces into exactly N non-empty fields.
template <std::size_t N>
bool split_fields(std::string_view line, std::array<std::string_view, N>& fields) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    const auto space = line.find(' ');
    if (i + 1 < N) {
      if (space == std::string_view::npos) {
        return false;
      }
      fields.at(i) = line.substr(0, space);
      line.remove_prefix(space + 1);
    } else {
      if (space != std::string_view::npos) {
        return false;
      }
      fields.at(i) = line;
    }
    if (fields.at(i).empty()) {
      return false;
    }
  }
  return true;
}

/// One line to append, built without allocating.
class Line {
 public:
  Line& text(std::string_view text) {
    const std::size_t n = std::min(text.size(), buffer_.size() - size_);
    std::memcpy(buffer_.data() + size_, text.data(), n);
    size_ += n;
    return *this;
  }
  template <typename T>
  Line& number(T value) {
    // to_chars of a double without a format is the shortest text that reads back the same.
    auto [ptr, ec] = std::to_chars(buffer_.data() + size_, buffer_.data() + buffer_.size(), value);
    size_ = ec == std::errc{} ? static_cast<std::size_t>(ptr - buffer_.data()) : size_;
    return *this;
  }
  std::string_view view() const noexcept { return {buffer_.data(), size_}; }

 private:
  // Ids are at most kMaxSensorIdBytes; seven numbers take at most 25 bytes each.
  std::array<char, kMaxLineBytes> buffer_{};
  std::size_t size_ = 0;
};

std::string errno_text(int error) { return std::generic_category().message(error); }

/// The whole file, read from its start.
bool read_all(int fd, std::string& out) {
  out.clear();
  std::array<char, 65536> chunk{};
  for (;;) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return false;
    }
    if (n == 0) {
      return true;
    }
    out.append(chunk.data(), static_cast<std::size_t>(n));
  }
}

/// A raw reading in the ring. A stale one has a NaN value: add() never stores a non-finite
/// value, so NaN cannot mean anything else (and the entry stays 16 bytes).
struct RawEntry {
  Millis time = 0;
  double value = 0;

  bool ok() const noexcept { return !std::isnan(value); }
};

/// A closed bucket, as rollups() returns it (less the sensor id).
struct ClosedBucket {
  Millis start = 0;
  double min = 0;
  double mean = 0;
  double max = 0;
  std::uint32_t count = 0;
  std::uint32_t stale = 0;
};

/// The bucket still filling. `sum` is the exact double sum of the ok values in arrival order, so
/// that the mean does not drift and a restart, adding the same values in the same order, gets
/// the very same mean. Times per sensor strictly increase in ms, so count + stale stays below
/// the bucket's length (at most 3,600,000) and cannot overflow.
struct OpenBucket {
  Millis start = 0;
  double min = 0;
  double max = 0;
  double sum = 0;
  std::uint32_t count = 0;
  std::uint32_t stale = 0;
  bool active = false;

  /// sum / count, kept within [min, max] where rounding would step out of it (three times 0.1
  /// sums to 0.30000000000000004).
  double mean() const noexcept {
    double mean = sum / count;
    if (!std::isfinite(mean)) {  // the sum overflowed: values near DBL_MAX
      mean = min / 2 + max / 2;
    }
    return std::clamp(mean, min, max);
  }
};

struct SensorHistory {
  std::deque<RawEntry> raw;  // oldest first, times strictly increasing
  std::optional<RawEntry> latest;
  std::array<OpenBucket, kRollupCount> open{};
  std::array<std::deque<ClosedBucket>, kRollupCount> closed;  // oldest first
  /// The start of the newest bucket ever closed (or loaded closed); a reading for it or an
  /// earlier one is not counted again.
  std::array<Millis, kRollupCount> last_closed{std::numeric_limits<Millis>::min(),
                                               std::numeric_limits<Millis>::min()};

  bool empty() const noexcept {
    return raw.empty() &&
           std::all_of(open.begin(), open.end(), [](const auto& b) { return !b.active; }) &&
           std::all_of(closed.begin(), closed.end(), [](const auto& c) { return c.empty(); });
  }
};

/// What loading found wrong, reported in one warning.
struct LoadReport {
  std::size_t damaged = 0;
  std::size_t torn = 0;
  std::size_t out_of_order = 0;
  std::string first;  // "FILE:LINE" of the first damaged line

  void damage(const LogFile& file, std::size_t line) {
    if (damaged++ == 0) {
      first = fmt::format("{}:{}", file.name, line);
    }
  }
};

}  // namespace

struct History::State {
  explicit State(const HistoryOptions& history_options) : options(history_options) {}

  const HistoryOptions& options;
  std::map<std::string, SensorHistory, std::less<>> sensors;

  /// The history of sensor `id`, made when new; sensors.end() once kMaxSensors are known.
  auto find_or_add(std::string_view id) {
    auto it = sensors.find(id);
    if (it == sensors.end() && sensors.size() < kMaxSensors) {
      it = sensors.emplace(std::string(id), SensorHistory{}).first;
    }
    return it;
  }

  // Persistence; all unused when options.dir is empty.
  UniqueFd dir;
  std::array<UniqueFd, kLogCount> logs;  // the file each kind is appending to
  std::array<Millis, kLogCount> log_days{};
  /// A day whose file ends in a fragment that could not be cut off: nothing more is appended to
  /// it (the next load cuts the fragment as a torn last line).
  std::array<std::optional<Millis>, kLogCount> broken_days{};
  bool write_failing = false;  // reported once per run of failures

  void open_dir();
  void load();
  void load_file(const LogFile& file, LoadReport& report);
  void load_raw_line(std::string_view line, const LogFile& file, std::size_t number,
                     LoadReport& report);
  void load_rollup_line(std::string_view line, const LogFile& file, std::size_t number,
                        LoadReport& report);

  void record(const std::string& id, SensorHistory& sensor, RawEntry entry, bool replay);
  void close_bucket(const std::string& id, SensorHistory& sensor, std::size_t index);
  Millis keep(std::size_t index) const noexcept {
    return index == 0 ? options.keep_five_minutes : options.keep_hours;
  }
  void trim_closed(SensorHistory& sensor, std::size_t index, Millis cutoff) const;
  void append(std::size_t log, Millis day, std::string_view line);
  void write_failed(const std::string& what, int error);
  void delete_old_files(Millis now);
};

void History::State::open_dir() {
  const std::filesystem::path& path = options.dir;
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_directory(path, ec)) {
    throw HistoryError(fmt::format("history folder {}: not a folder", path.string()));
  }
  // The parents as the umask says; the folder itself private from its first moment.
  const std::filesystem::path leaf = path.has_filename() ? path : path.parent_path();
  if (leaf.has_parent_path()) {
    std::filesystem::create_directories(leaf.parent_path(), ec);
  }
  if (!ec && ::mkdir(leaf.c_str(), 0700) != 0 && errno != EEXIST) {
    ec.assign(errno, std::generic_category());
  }
  if (ec) {
    throw HistoryError(
        fmt::format("history folder {}: cannot create it: {}", path.string(), ec.message()));
  }
  dir.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    const int error = errno;
    throw HistoryError(fmt::format("history folder {}: {}", path.string(),
                                   error == ENOTDIR ? "not a folder" : errno_text(error)));
  }
  // Two writers would interleave their files; the lock goes with the descriptor.
  if (::flock(dir.get(), LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    throw HistoryError(
        fmt::format("history folder {}: {}", path.string(),
                    error == EWOULDBLOCK ? "in use by another process" : errno_text(error)));
  }
  if (::faccessat(dir.get(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    const int error = errno;
    throw HistoryError(
        fmt::format("history folder {}: not writable: {}", path.string(), errno_text(error)));
  }
}

void History::State::load() {
  std::vector<LogFile> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(options.dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code status_ec;
    if (!it->is_regular_file(status_ec) || it->is_symlink(status_ec)) {
      continue;
    }
    if (auto file = parse_log_name(it->path().filename().string())) {
      files.push_back(std::move(*file));
    }
  }
  if (ec) {
    throw HistoryError(
        fmt::format("history folder {}: cannot list it: {}", options.dir.string(), ec.message()));
  }
  // Closed rollups first: the raw readings then rebuild only the buckets newer than those.
  std::sort(files.begin(), files.end(), [](const LogFile& a, const LogFile& b) {
    return std::pair(a.log == kRawLog, a.day) < std::pair(b.log == kRawLog, b.day);
  });
  LoadReport report;
  for (const LogFile& file : files) {
    load_file(file, report);
  }
  for (auto& [id, sensor] : sensors) {
    for (std::size_t index = 0; index < kRollupCount; ++index) {
      if (!sensor.closed.at(index).empty()) {
        trim_closed(sensor, index, saturating_sub(sensor.last_closed.at(index), keep(index)));
      }
    }
  }
  std::vector<std::string> skipped;
  if (report.damaged > 0) {
    skipped.push_back(
        fmt::format("{} damaged line(s), the first at {}", report.damaged, report.first));
  }
  if (report.out_of_order > 0) {
    skipped.push_back(fmt::format("{} line(s) out of order", report.out_of_order));
  }
  if (report.torn > 0) {
    skipped.push_back(fmt::format("{} torn last line(s), cut off", report.torn));
  }
  if (!skipped.empty()) {
    spdlog::warn("history in {}: skipped {}", options.dir.string(), fmt::join(skipped, "; "));
  }
}

void History::State::load_file(const LogFile& file, LoadReport& report) {
  UniqueFd fd(::openat(dir.get(), file.name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  std::string data;
  if (!fd || !read_all(fd.get(), data)) {
    const int error = errno;
    throw HistoryError(fmt::format("history folder {}: cannot open or read {}: {}",
                                   options.dir.string(), file.name, errno_text(error)));
  }
  // A line without its newline was cut by a kill (or a full disk) mid-write: cut it off, so
  // that the next line appended does not glue onto it.
  const auto last_newline = data.rfind('\n');
  const std::size_t complete = last_newline == std::string::npos ? 0 : last_newline + 1;
  if (complete < data.size()) {
    ++report.torn;
    if (::ftruncate(fd.get(), static_cast<off_t>(complete)) != 0) {
      const int error = errno;
      throw HistoryError(fmt::format("history folder {}: cannot cut the torn end of {}: {}",
                                     options.dir.string(), file.name, errno_text(error)));
    }
  }
  std::string_view text(data.data(), complete);
  std::size_t number = 0;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline + 1);
    ++number;
    if (file.log == kRawLog) {
      load_raw_line(line, file, number, report);
    } else {
      load_rollup_line(line, file, number, report);
    }
  }
}

void History::State::load_raw_line(std::string_view line, const LogFile& file, std::size_t number,
                                   LoadReport& report) {
  std::array<std::string_view, 3> fields;
  RawEntry entry;
  const bool split = split_fields(line, fields);
  const bool stale = split && fields[2] == "-";
  if (stale) {
    entry.value = std::numeric_limits<double>::quiet_NaN();
  }
  if (!split || !parse_number(fields[0], entry.time) || !valid_time(entry.time) ||
      day_of(entry.time) != file.day || !valid_sensor_id(fields[1]) ||
      (!stale && !parse_value(fields[2], entry.value))) {
    report.damage(file, number);
    return;
  }
  const auto it = find_or_add(fields[1]);
  if (it == sensors.end()) {
    report.damage(file, number);
    return;
  }
  if (it->second.latest && entry.time <= it->second.latest->time) {
    ++report.out_of_order;
    return;
  }
  record(it->first, it->second, entry, /*replay=*/true);
}

void History::State::load_rollup_line(std::string_view line, const LogFile& file,
                                      std::size_t number, LoadReport& report) {
  const std::size_t index = file.log - 1;
  const Millis length = bucket_length(kRollupResolutions.at(index));
  std::array<std::string_view, 7> fields;
  ClosedBucket bucket;
  if (!split_fields(line, fields) || !parse_number(fields[0], bucket.start) ||
      !valid_time(bucket.start) || bucket_start(bucket.start, length) != bucket.start ||
      day_of(bucket.start) != file.day || !valid_sensor_id(fields[1]) ||
      !parse_value(fields[2], bucket.min) || !parse_value(fields[3], bucket.mean) ||
      !parse_value(fields[4], bucket.max) || !parse_number(fields[5], bucket.count) ||
      !parse_number(fields[6], bucket.stale) || bucket.count == 0 ||
      Millis{bucket.count} + Millis{bucket.stale} > length || !(bucket.min <= bucket.mean) ||
      !(bucket.mean <= bucket.max)) {
    report.damage(file, number);
    return;
  }
  const auto it = find_or_add(fields[1]);
  if (it == sensors.end()) {
    report.damage(file, number);
    return;
  }
  SensorHistory& sensor = it->second;
  if (bucket.start <= sensor.last_closed.at(index)) {
    ++report.out_of_order;
    return;
  }
  sensor.closed.at(index).push_back(bucket);
  sensor.last_closed.at(index) = bucket.start;
}

/// Adds one reading that is newer than `sensor`'s latest. `replay` (loading): the raw line is on
/// disk already. A bucket it closes was not in the rollup files (those read back are closed
/// already and skipped), so it is closed and written as if live.
void History::State::record(const std::string& id, SensorHistory& sensor, RawEntry entry,
                            bool replay) {
  for (std::size_t index = 0; index < kRollupCount; ++index) {
    const Millis start = bucket_start(entry.time, bucket_length(kRollupResolutions.at(index)));
    if (start <= sensor.last_closed.at(index)) {
      // Only after a clock went back across a restart with the raw files gone: the bucket is
      // closed already and stays as it was.
      continue;
    }
    OpenBucket& bucket = sensor.open.at(index);
    if (bucket.active && bucket.start != start) {
      close_bucket(id, sensor, index);
    }
    if (!bucket.active) {
      bucket = OpenBucket{.start = start, .active = true};
    }
    if (!entry.ok()) {
      ++bucket.stale;
    } else if (bucket.count++ == 0) {
      bucket.min = bucket.max = bucket.sum = entry.value;
    } else {
      bucket.min = std::min(bucket.min, entry.value);
      bucket.max = std::max(bucket.max, entry.value);
      bucket.sum += entry.value;
    }
  }
  if (!replay && dir) {
    Line line;
    line.number(entry.time).text(" ").text(id).text(" ");
    if (entry.ok()) {
      line.number(entry.value);
    } else {
      line.text("-");
    }
    line.text("\n");
    append(kRawLog, day_of(entry.time), line.view());
  }
  sensor.raw.push_back(entry);
  while (sensor.raw.size() > options.raw_capacity) {
    sensor.raw.pop_front();
  }
  sensor.latest = entry;
}

void History::State::close_bucket(const std::string& id, SensorHistory& sensor, std::size_t index) {
  OpenBucket& open = sensor.open.at(index);
  open.active = false;
  if (open.count == 0) {
    return;  // a bucket with stale readings only has no row
  }
  // A bucket that closes while raw files are replayed was not in the rollup files (record()
  // skips those): its line was lost (a full disk, a file deleted). It is kept and written now.
  const ClosedBucket bucket{open.start, open.min, open.mean(), open.max, open.count, open.stale};
  sensor.closed.at(index).push_back(bucket);
  sensor.last_closed.at(index) = bucket.start;
  trim_closed(sensor, index, saturating_sub(bucket.start, keep(index)));
  if (dir) {
    Line line;
    line.number(bucket.start).text(" ").text(id).text(" ");
    line.number(bucket.min).text(" ").number(bucket.mean).text(" ").number(bucket.max).text(" ");
    line.number(bucket.count).text(" ").number(bucket.stale).text("\n");
    append(index + 1, day_of(bucket.start), line.view());
  }
}

/// Forgets the closed buckets that start before `cutoff`. Closing a bucket trims by its own
/// start, so that memory stays bounded by the keep times even if expire() is never called (and
/// loading trims the same way, so a restart finds what was there).
void History::State::trim_closed(SensorHistory& sensor, std::size_t index, Millis cutoff) const {
  auto& closed = sensor.closed.at(index);
  while (!closed.empty() && closed.front().start < cutoff) {
    closed.pop_front();
  }
}

/// One write(2) of a whole line to an O_APPEND descriptor, so a kill never leaves half of it. A
/// short write (a full disk) is cut off again, so no later line is glued onto a fragment.
void History::State::append(std::size_t log, Millis day, std::string_view line) {
  UniqueFd& fd = logs.at(log);
  if (broken_days.at(log) == day) {
    write_failed(log_name(log, day), EIO);
    return;
  }
  if (!fd || log_days.at(log) != day) {
    const std::string name = log_name(log, day);
    fd.reset(::openat(dir.get(), name.c_str(),
                      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    log_days.at(log) = day;
    if (!fd) {
      write_failed(name, errno);
      return;
    }
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    const ssize_t n = ::write(fd.get(), line.data(), line.size());
    if (n == static_cast<ssize_t>(line.size())) {
      if (write_failing) {
        spdlog::info("history in {}: writing again", options.dir.string());
        write_failing = false;
      }
      return;
    }
    const int error = n < 0 ? errno : ENOSPC;
    if (n > 0) {
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0 || ::ftruncate(fd.get(), st.st_size - n) != 0) {
        write_failed(log_name(log, day), errno);
        broken_days.at(log) = day;
        fd.reset();
        return;
      }
    }
    if (n < 0 && error != EINTR) {
      write_failed(log_name(log, day), error);
      return;
    }
  }
  write_failed(log_name(log, day), ENOSPC);
}

void History::State::write_failed(const std::string& what, int error) {
  if (!write_failing) {
    spdlog::error("history in {}: cannot write {}: {}; keeping readings in memory only",
                  options.dir.string(), what, errno_text(error));
    write_failing = true;
  }
}

void History::State::delete_old_files(Millis now) {
  const std::array<Millis, kLogCount> cutoffs = {saturating_sub(now, options.keep_raw),
                                                 saturating_sub(now, options.keep_five_minutes),
                                                 saturating_sub(now, options.keep_hours)};
  std::error_code ec;
  for (std::filesystem::directory_iterator it(options.dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const auto file = parse_log_name(it->path().filename().string());
    // A whole day, all of it older than the cutoff.
    if (!file || (file->day + 1) * kDay > cutoffs.at(file->log)) {
      continue;
    }
    if (logs.at(file->log) && log_days.at(file->log) == file->day) {
      logs.at(file->log).reset();
    }
    if (::unlinkat(dir.get(), file->name.c_str(), 0) != 0 && errno != ENOENT) {
      spdlog::warn("history in {}: cannot delete {}: {}", options.dir.string(), file->name,
                   errno_text(errno));
    }
  }
  if (ec) {
    spdlog::warn("history in {}: cannot list it: {}", options.dir.string(), ec.message());
  }
}

History::History(HistoryOptions options) : options_(std::move(options)) {
  if (options_.keep_raw < kMinKeepRaw) {
    throw HistoryError(
        "history: keep_raw must be at least one hour (a restart rebuilds the hour still filling "
        "from raw readings)");
  }
  if (options_.raw_capacity < 1) {
    throw HistoryError("history: raw_capacity must be at least 1");
  }
  if (options_.keep_five_minutes <= 0 || options_.keep_hours <= 0) {
    throw HistoryError("history: keep_five_minutes and keep_hours must be positive");
  }
  state_ = std::make_unique<State>(options_);
  if (!options_.dir.empty()) {
    state_->open_dir();
    state_->load();
  }
}

History::~History() = default;

bool History::add(const Reading& reading) {
  if (!valid_sensor_id(reading.sensor) || !valid_time(reading.time) ||
      (reading.value && !std::isfinite(*reading.value))) {
    return false;
  }
  const RawEntry entry{reading.time,
                       reading.value.value_or(std::numeric_limits<double>::quiet_NaN())};
  const std::lock_guard lock(mutex_);
  const auto it = state_->find_or_add(reading.sensor);
  if (it == state_->sensors.end() ||
      (it->second.latest && reading.time <= it->second.latest->time)) {
    return false;
  }
  state_->record(it->first, it->second, entry, /*replay=*/false);
  return true;
}

void History::expire(Millis now) {
  const Millis raw_cutoff = saturating_sub(now, options_.keep_raw);
  const std::array<Millis, kRollupCount> cutoffs = {saturating_sub(now, options_.keep_five_minutes),
                                                    saturating_sub(now, options_.keep_hours)};
  std::vector<UniqueFd> logs_to_sync;
  UniqueFd dir_to_sync;
  {
    const std::lock_guard lock(mutex_);
    for (auto it = state_->sensors.begin(); it != state_->sensors.end();) {
      SensorHistory& sensor = it->second;
      for (std::size_t index = 0; index < kRollupCount; ++index) {
        // Close a bucket before its raw readings go, or a restart could not rebuild it.
        const OpenBucket& open = sensor.open.at(index);
        const Millis length = bucket_length(kRollupResolutions.at(index));
        if (open.active && open.start + length <= raw_cutoff) {
          state_->close_bucket(it->first, sensor, index);
        }
        state_->trim_closed(sensor, index, cutoffs.at(index));
      }
      while (!sensor.raw.empty() && sensor.raw.front().time < raw_cutoff) {
        sensor.raw.pop_front();
      }
      it = sensor.empty() ? state_->sensors.erase(it) : std::next(it);
    }
    if (!state_->dir) {
      return;
    }
    state_->delete_old_files(now);
    // Sync outside the lock: fdatasync can take a while, and add() must not wait for it.
    for (const UniqueFd& fd : state_->logs) {
      if (fd) {
        logs_to_sync.emplace_back(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
      }
    }
    dir_to_sync.reset(::fcntl(state_->dir.get(), F_DUPFD_CLOEXEC, 0));
  }
  // A power loss now loses at most what was appended since this call (files older than the
  // current ones were synced when they were current, or by the call after).
  bool synced = true;
  for (const UniqueFd& fd : logs_to_sync) {
    synced = fd && ::fdatasync(fd.get()) == 0 && synced;
  }
  synced = dir_to_sync && ::fsync(dir_to_sync.get()) == 0 && synced;
  if (!synced) {
    spdlog::warn("history in {}: cannot sync: {}", options_.dir.string(), errno_text(errno));
  }
}

namespace {

/// `ids` sorted, each once.
std::vector<std::string> sorted_unique(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

/// Calls visit(id, history) for each sensor of `wanted` that `sensors` has, or for all of them
/// when `wanted` is empty.
template <typename Sensors, typename Visit>
void for_each_wanted(const Sensors& sensors, const std::vector<std::string>& wanted,
                     Visit&& visit) {
  if (wanted.empty()) {
    for (const auto& [id, sensor] : sensors) {
      visit(id, sensor);
    }
    return;
  }
  for (const std::string& id : wanted) {
    if (const auto it = sensors.find(id); it != sensors.end()) {
      visit(id, it->second);
    }
  }
}

}  // namespace

std::vector<Reading> History::raw(Millis from, Millis to, const std::vector<std::string>& sensors,
                                  std::size_t limit, Keep keep) const {
  if (from >= to || limit == 0) {
    return {};
  }
  // Collected under the lock without allocating per reading; ids and sorting come after.
  struct Found {
    Millis time;
    double value;
    std::uint32_t sensor;  // index into ids, which is sorted
  };
  std::vector<std::string> ids;
  std::vector<Found> found;
  const std::vector<std::string> wanted = sorted_unique(sensors);
  {
    const std::lock_guard lock(mutex_);
    const auto visit = [&](const std::string& id, const SensorHistory& sensor) {
      const auto by_time = [](const RawEntry& entry, Millis time) { return entry.time < time; };
      auto first = std::lower_bound(sensor.raw.begin(), sensor.raw.end(), from, by_time);
      auto last = std::lower_bound(first, sensor.raw.end(), to, by_time);
      if (static_cast<std::size_t>(last - first) > limit) {
        if (keep == Keep::kNewest) {
          first = last - static_cast<std::ptrdiff_t>(limit);
        } else {
          last = first + static_cast<std::ptrdiff_t>(limit);
        }
      }
      if (first == last) {
        return;
      }
      const auto index = static_cast<std::uint32_t>(ids.size());
      ids.push_back(id);
      for (auto entry = first; entry != last; ++entry) {
        found.push_back(Found{entry->time, entry->value, index});
      }
    };
    for_each_wanted(state_->sensors, wanted, visit);
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return std::pair(a.time, a.sensor) < std::pair(b.time, b.sensor);
  });
  const std::size_t extra = found.size() > limit ? found.size() - limit : 0;
  const std::size_t skip = keep == Keep::kNewest ? extra : 0;
  std::vector<Reading> out;
  out.reserve(found.size() - extra);
  for (std::size_t i = skip; i < skip + found.size() - extra; ++i) {
    const Found& f = found[i];
    out.push_back(Reading{ids[f.sensor], f.time,
                          std::isnan(f.value) ? std::nullopt : std::optional<double>(f.value)});
  }
  return out;
}

std::vector<Rollup> History::rollups(Resolution resolution, Millis from, Millis to,
                                     const std::vector<std::string>& sensors) const {
  const auto index = rollup_index(resolution);
  if (!index || from >= to) {
    return {};  // kRaw has no rollups; raw() answers for it
  }
  struct Found {
    ClosedBucket bucket;
    std::uint32_t sensor;
  };
  std::vector<std::string> ids;
  std::vector<Found> found;
  const std::vector<std::string> wanted = sorted_unique(sensors);
  {
    const std::lock_guard lock(mutex_);
    const auto visit = [&](const std::string& id, const SensorHistory& sensor) {
      const auto& closed = sensor.closed.at(*index);
      const auto by_start = [](const ClosedBucket& b, Millis start) { return b.start < start; };
      const auto first = std::lower_bound(closed.begin(), closed.end(), from, by_start);
      const auto last = std::lower_bound(first, closed.end(), to, by_start);
      const OpenBucket& open = sensor.open.at(*index);
      const bool with_open = open.active && open.count > 0 && open.start >= from && open.start < to;
      if (first == last && !with_open) {
        return;
      }
      const auto sensor_index = static_cast<std::uint32_t>(ids.size());
      ids.push_back(id);
      for (auto bucket = first; bucket != last; ++bucket) {
        found.push_back(Found{*bucket, sensor_index});
      }
      if (with_open) {
        found.push_back(
            Found{ClosedBucket{open.start, open.min, open.mean(), open.max, open.count, open.stale},
                  sensor_index});
      }
    };
    for_each_wanted(state_->sensors, wanted, visit);
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return std::pair(a.bucket.start, a.sensor) < std::pair(b.bucket.start, b.sensor);
  });
  std::vector<Rollup> out;
  out.reserve(found.size());
  for (const Found& f : found) {
    out.push_back(Rollup{ids[f.sensor], f.bucket.start, f.bucket.min, f.bucket.mean, f.bucket.max,
                         f.bucket.count, f.bucket.stale});
  }
  return out;
}

std::optional<Reading> History::latest(const std::string& sensor) const {
  const std::lock_guard lock(mutex_);
  const auto it = state_->sensors.find(sensor);
  if (it == state_->sensors.end() || !it->second.latest) {
    return std::nullopt;
  }
  const RawEntry& entry = *it->second.latest;
  return Reading{it->first, entry.time,
                 entry.ok() ? std::optional<double>(entry.value) : std::nullopt};
}

}  // namespace peernet::sensors
