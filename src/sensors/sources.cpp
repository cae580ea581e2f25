#include "sensors/sources.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/id_chars.h"
#include "common/unique_fd.h"

namespace peernet::sensors {
namespace {

namespace fs = std::filesystem;

/// The largest sysfs attribute read; values are a few bytes, w1_slave about 80.
constexpr std::size_t kMaxAttributeBytes = 4096;
/// Devices looked at per class (IIO, hwmon, 1-wire), so that a hostile tree cannot make
/// discovery run for ever.
constexpr std::size_t kMaxDevicesPerClass = 256;
/// Directory entries read from one folder, for the same reason.
constexpr std::size_t kMaxEntriesPerFolder = 4096;
/// Sensors taken from one device.
constexpr std::size_t kMaxSensorsPerDevice = 64;
/// Bytes of a device name that go into an id, and of a friendly name.
constexpr std::size_t kMaxIdPartBytes = 32;
constexpr std::size_t kMaxFriendlyBytes = 64;
/// What a read may say before it is taken as nonsense.
constexpr double kMinTemperature = -273.15;
constexpr double kMaxTemperature = 1000;
/// Humidity sensors read a little past 0 and 100 %RH; that much is clamped, more is a failure.
constexpr double kHumidityTolerance = 2;
/// The kernel's dht11 driver (DHT11, DHT22) answers from its last read for this long.
constexpr Millis kDhtCacheMillis = 2000;
/// A DS18B20 that has not converted yet reports its power-on value, 85 °C.
constexpr double kW1PowerOnMilli = 85000;
constexpr Millis kMillisPerDay = 86'400'000;

// ---------------------------------------------------------------------------------------------
// Reading sysfs attributes.

std::string errno_name(int error) {
  const char* name = ::strerrorname_np(error);
  return name != nullptr ? std::string(name) : fmt::format("errno {}", error);
}

/// The text of one attribute, or why there is none.
struct Attribute {
  std::optional<std::string> text;
  std::string error;
};

/// Reads a whole attribute afresh. sysfs makes a new value on each open and read from offset 0,
/// so nothing is kept open. Only regular files are read (a FIFO, device or folder is a failed
/// read and never blocks), and at most kMaxAttributeBytes.
Attribute read_attribute(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return {std::nullopt, errno_name(errno)};
  }
  if (!S_ISREG(st.st_mode)) {
    return {std::nullopt, "not a regular file"};
  }
  // O_NONBLOCK: should the path turn into a FIFO between stat() and open(), open returns at once.
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    return {std::nullopt, errno_name(errno)};
  }
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return {std::nullopt, "not a regular file"};
  }
  // One byte more than the limit, to tell a file of exactly the limit from a longer one.
  std::array<char, kMaxAttributeBytes + 1> buffer{};
  std::size_t size = 0;
  while (size < buffer.size()) {
    const ssize_t n = ::read(fd.get(), buffer.data() + size, buffer.size() - size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return {std::nullopt, errno_name(errno)};
    }
    if (n == 0) {
      break;
    }
    size += static_cast<std::size_t>(n);
  }
  if (size > kMaxAttributeBytes) {
    return {std::nullopt, "too long"};
  }
  return {std::string(buffer.data(), size), {}};
}

bool is_space(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

/// `text` with every byte that is not printable ASCII as '?', cut to `limit` bytes.
std::string printable(std::string_view text, std::size_t limit) {
  std::string out;
  for (char c : text.substr(0, limit)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (text.size() > limit) {
    out += "...";
  }
  return out;
}

ReadResult failed(std::string error) { return {std::nullopt, std::move(error)}; }

/// The number `text` holds (surrounding white space allowed), or why it holds none.
std::optional<double> parse_number(std::string_view text, std::string& error) {
  text = trim(text);
  if (text.empty()) {
    error = "empty";
    return std::nullopt;
  }
  double value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    error = "not a number: " + printable(text, 16);
    return std::nullopt;
  }
  if (!std::isfinite(value)) {
    error = "not finite";
    return std::nullopt;
  }
  return value;
}

/// `value` in the unit of `kind`, once it is known to be plausible, to the kernel's resolution
/// (a thousandth) so that scale arithmetic does not show as 23.124999999999996.
ReadResult checked(Kind kind, double value) {
  if (!std::isfinite(value)) {
    return failed("not finite");
  }
  if (kind == Kind::kTemperature) {
    if (value < kMinTemperature || value > kMaxTemperature) {
      return failed(fmt::format("out of range: {} °C", value));
    }
  } else {
    if (value < -kHumidityTolerance || value > 100 + kHumidityTolerance) {
      return failed(fmt::format("out of range: {} %RH", value));
    }
    value = std::clamp(value, 0.0, 100.0);
  }
  return {std::round(value * 1000) / 1000, {}};
}

/// The number in the attribute at `path`, or why there is none.
std::optional<double> read_number(const fs::path& path, std::string& error) {
  auto attribute = read_attribute(path);
  if (!attribute.text) {
    error = std::move(attribute.error);
    return std::nullopt;
  }
  return parse_number(*attribute.text, error);
}

// ---------------------------------------------------------------------------------------------
// Sources.

/// What every source here shares: its description, which discovery may still adjust.
class BasicSource : public Source {
 public:
  explicit BasicSource(SensorInfo info) : info_(std::move(info)) {}
  const SensorInfo& info() const noexcept final { return info_; }
  SensorInfo& mutable_info() noexcept { return info_; }
  Millis min_period() const noexcept final { return min_period_; }
  void set_min_period(Millis period) noexcept { min_period_ = period; }

 private:
  SensorInfo info_;
  Millis min_period_ = 0;
};

/// An attribute in milli-units: hwmon's tempK_input, IIO's in_temp_input.
class MilliInputSource final : public BasicSource {
 public:
  MilliInputSource(SensorInfo info, fs::path input)
      : BasicSource(std::move(info)), input_(std::move(input)) {}

  ReadResult read(Millis /*now*/) override {
    std::string error;
    const auto milli = read_number(input_, error);
    if (!milli) {
      return failed(std::move(error));
    }
    return checked(info().kind, *milli / 1000);
  }

 private:
  fs::path input_;
};

/// An IIO channel without a processed value: (raw + offset) * scale, in milli-units. Scale and
/// offset are read each time too, as some drivers let them be changed.
class IioRawSource final : public BasicSource {
 public:
  IioRawSource(SensorInfo info, fs::path raw, std::optional<fs::path> scale,
               std::optional<fs::path> offset)
      : BasicSource(std::move(info)),
        raw_(std::move(raw)),
        scale_(std::move(scale)),
        offset_(std::move(offset)) {}

  ReadResult read(Millis /*now*/) override {
    std::string error;
    const auto raw = read_number(raw_, error);
    if (!raw) {
      return failed(std::move(error));
    }
    std::optional<double> scale = 1.0;
    if (scale_) {
      scale = read_number(*scale_, error);
      if (!scale) {
        return failed("scale: " + error);
      }
    }
    std::optional<double> offset = 0.0;
    if (offset_) {
      offset = read_number(*offset_, error);
      if (!offset) {
        return failed("offset: " + error);
      }
    }
    return checked(info().kind, (*raw + *offset) * *scale / 1000);
  }

 private:
  fs::path raw_;
  std::optional<fs::path> scale_;
  std::optional<fs::path> offset_;
};

/// A 1-wire thermometer's w1_slave file.
class W1Source final : public BasicSource {
 public:
  W1Source(SensorInfo info, fs::path slave)
      : BasicSource(std::move(info)), slave_(std::move(slave)) {}

  ReadResult read(Millis /*now*/) override {
    auto attribute = read_attribute(slave_);
    if (!attribute.text) {
      return failed(std::move(attribute.error));
    }
    return parse_w1_slave(*attribute.text);
  }

 private:
  fs::path slave_;
};

/// A number in [0, 1) that depends only on `second` and `salt` (splitmix64).
double noise(std::int64_t second, std::uint64_t salt) noexcept {
  std::uint64_t x = static_cast<std::uint64_t>(second) ^ salt;
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

/// A day's weather, as a function of the time only: warmest (and driest) at 15:00 UTC.
class SimulatedSource final : public BasicSource {
 public:
  explicit SimulatedSource(Kind kind)
      : BasicSource(SensorInfo{
            .id = kind == Kind::kHumidity ? "sim-humidity" : "sim-temperature",
            .kind = kind,
            .unit = std::string(unit_of(kind)),
            .name = kind == Kind::kHumidity ? "Simulated humidity" : "Simulated temperature",
            .source = "simulated",
        }) {}

  ReadResult read(Millis now) override {
    const Millis in_day = ((now % kMillisPerDay) + kMillisPerDay) % kMillisPerDay;
    const double day = static_cast<double>(in_day) / static_cast<double>(kMillisPerDay);
    // sin() peaks a quarter of a period after its zero: zero at 09:00, peak at 15:00.
    const double cycle = std::sin(2 * std::numbers::pi * (day - 9.0 / 24));
    const std::int64_t second = now >= 0 ? now / 1000 : (now - 999) / 1000;
    double value = 0;
    if (info().kind == Kind::kHumidity) {
      value = 65 - 14 * cycle + (noise(second, 0x68756d) - 0.5) * 2;
      value = std::clamp(value, 50.0, 80.0);
    } else {
      value = 15 + 5 * cycle + (noise(second, 0x74656d) - 0.5) * 0.4;
    }
    return {std::round(value * 10) / 10, {}};
  }
};

// ---------------------------------------------------------------------------------------------
// Discovery.

/// An id part made from text found in sysfs: [A-Za-z0-9._~-] only, at most kMaxIdPartBytes.
std::string id_part(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxIdPartBytes)) {
    out += is_id_char(c) ? c : '_';
  }
  return out;
}

/// A friendly name made from text found in sysfs: printable ASCII only, never too long.
std::string friendly(std::string_view text) { return printable(trim(text), kMaxFriendlyBytes); }

/// "hwmon2" before "hwmon10": runs of digits compare as numbers.
bool natural_less(std::string_view a, std::string_view b) noexcept {
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      std::size_t i_end = i;
      while (i_end < a.size() && is_digit(a[i_end])) {
        ++i_end;
      }
      std::size_t j_end = j;
      while (j_end < b.size() && is_digit(b[j_end])) {
        ++j_end;
      }
      auto da = a.substr(i, i_end - i);
      auto db = b.substr(j, j_end - j);
      while (da.size() > 1 && da.front() == '0') {
        da.remove_prefix(1);
      }
      while (db.size() > 1 && db.front() == '0') {
        db.remove_prefix(1);
      }
      if (da.size() != db.size()) {
        return da.size() < db.size();
      }
      if (da != db) {
        return da < db;
      }
      i = i_end;
      j = j_end;
    } else {
      if (a[i] != b[j]) {
        return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      }
      ++i;
      ++j;
    }
  }
  if (i < a.size() || j < b.size()) {
    return i == a.size();
  }
  return a < b;  // "01" and "1": any fixed order
}

/// The names in `folder`, naturally sorted; at most kMaxEntriesPerFolder are looked at. A
/// folder that is missing or cannot be read has none.
std::vector<std::string> list_folder(const fs::path& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) {
    spdlog::debug("sensors: skipping {}: {}", folder.string(), ec.message());
    return names;
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) {
      spdlog::debug("sensors: stopped listing {}: {}", folder.string(), ec.message());
      break;
    }
    if (names.size() == kMaxEntriesPerFolder) {
      spdlog::debug("sensors: {} has more than {} entries; the rest are ignored", folder.string(),
                    kMaxEntriesPerFolder);
      break;
    }
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end(),
            [](const std::string& a, const std::string& b) { return natural_less(a, b); });
  return names;
}

bool is_folder(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

/// Whether `text` is `prefix` followed by 1 to 6 digits (and then `suffix`); the digits.
std::optional<std::string_view> numbered(std::string_view text, std::string_view prefix,
                                         std::string_view suffix = {}) {
  if (!text.starts_with(prefix) || !text.ends_with(suffix) ||
      text.size() <= prefix.size() + suffix.size()) {
    return std::nullopt;
  }
  const auto digits = text.substr(prefix.size(), text.size() - prefix.size() - suffix.size());
  if (digits.size() > 6 || !std::all_of(digits.begin(), digits.end(), is_digit)) {
    return std::nullopt;
  }
  return digits;
}

/// The device folders of one class: entries of `folder` that are `prefix` and a number, in
/// natural order, at most kMaxDevicesPerClass.
std::vector<std::string> device_folders(const fs::path& folder, std::string_view prefix) {
  std::vector<std::string> devices;
  for (auto& name : list_folder(folder)) {
    if (!numbered(name, prefix)) {
      continue;
    }
    if (devices.size() == kMaxDevicesPerClass) {
      spdlog::debug("sensors: more than {} devices in {}; the rest are ignored",
                    kMaxDevicesPerClass, folder.string());
      break;
    }
    devices.push_back(std::move(name));
  }
  return devices;
}

/// One IIO or hwmon device.
struct Device {
  fs::path folder;        ///< where its attributes are
  std::string name;       ///< from its name file, as found
  std::string canonical;  ///< its folder with symlinks resolved: stable across reboots
  std::string id;         ///< id_part(name), with "-N" when several devices share the name
  std::string label;      ///< friendly(name), likewise
};

Device describe(fs::path folder, std::string_view fallback_name) {
  Device device;
  auto attribute = read_attribute(folder / "name");
  const auto name = attribute.text ? trim(*attribute.text) : std::string_view{};
  device.name = name.empty() ? std::string(fallback_name) : std::string(name);
  std::error_code ec;
  auto canonical = fs::canonical(folder, ec);
  device.canonical = ec ? folder.string() : canonical.string();
  device.folder = std::move(folder);
  return device;
}

/// Gives each device its id and label: devices that share a name are told apart by "-2",
/// "-3", ... in the order of their canonical paths, which (unlike hwmonN) survive a reboot.
void name_devices(std::vector<Device>& devices) {
  std::vector<Device*> order;
  order.reserve(devices.size());
  for (auto& d : devices) {
    order.push_back(&d);
  }
  std::stable_sort(order.begin(), order.end(), [](const Device* a, const Device* b) {
    if (a->name != b->name) {
      return a->name < b->name;
    }
    return natural_less(a->canonical, b->canonical);
  });
  for (std::size_t i = 0; i < order.size(); ++i) {
    std::size_t same = 1;
    while (i >= same && order[i - same]->name == order[i]->name) {
      ++same;
    }
    auto& d = *order[i];
    d.id = id_part(d.name);
    d.label = friendly(d.name);
    if (d.id.empty()) {
      d.id = "unnamed";
    }
    if (same > 1) {
      d.id += fmt::format("-{}", same);
      d.label += fmt::format("-{}", same);
    }
  }
}

using Found = std::vector<std::unique_ptr<BasicSource>>;

SensorInfo make_info(std::string id, Kind kind, std::string name, std::string_view source) {
  return SensorInfo{
      .id = std::move(id),
      .kind = kind,
      .unit = std::string(unit_of(kind)),
      .name = std::move(name),
      .source = std::string(source),
  };
}

void found(const BasicSource& source, const fs::path& where) {
  const auto& info = source.info();
  spdlog::debug("sensors: {} \"{}\" ({}, {}) at {}", info.id, info.name, kind_name(info.kind),
                info.source, where.string());
}

/// One IIO channel of a kind we read: in_temp_input, in_temp0_raw, in_humidityrelative_input...
struct IioChannel {
  Kind kind;
  std::string type;      ///< "temp" or "humidityrelative"
  std::string modifier;  ///< what follows the type: "", "0", "_ambient"
  bool raw = false;
};

std::string_view trim_underscores(std::string_view text) noexcept {
  while (!text.empty() && text.front() == '_') {
    text.remove_prefix(1);
  }
  while (!text.empty() && text.back() == '_') {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<IioChannel> iio_channel(std::string_view file) {
  if (!file.starts_with("in_")) {
    return std::nullopt;
  }
  file.remove_prefix(3);
  bool raw = false;
  if (file.ends_with("_input")) {
    file.remove_suffix(6);
  } else if (file.ends_with("_raw")) {
    file.remove_suffix(4);
    raw = true;
  } else {
    return std::nullopt;
  }
  for (auto [type, kind] : {std::pair{std::string_view("temp"), Kind::kTemperature},
                            std::pair{std::string_view("humidityrelative"), Kind::kHumidity}}) {
    if (!file.starts_with(type)) {
      continue;
    }
    const auto modifier = file.substr(type.size());
    if (!modifier.empty() && !is_digit(modifier.front()) && modifier.front() != '_') {
      continue;  // in_tempfoo_input: another type
    }
    return IioChannel{kind, std::string(type), std::string(modifier), raw};
  }
  return std::nullopt;
}

void discover_iio(const fs::path& sysfs, Found& out) {
  const auto root = sysfs / "bus" / "iio" / "devices";
  std::vector<Device> devices;
  for (const auto& entry : device_folders(root, "iio:device")) {
    if (is_folder(root / entry)) {
      devices.push_back(describe(root / entry, entry));
    }
  }
  name_devices(devices);
  for (const auto& device : devices) {
    const auto files = list_folder(device.folder);
    const std::set<std::string_view> present(files.begin(), files.end());
    std::size_t taken = 0;
    for (const auto& file : files) {
      auto channel = iio_channel(file);
      if (!channel) {
        continue;
      }
      const auto base = "in_" + channel->type + channel->modifier;
      if (channel->raw && present.contains(base + "_input")) {
        continue;  // the processed value is read instead
      }
      if (taken++ == kMaxSensorsPerDevice) {
        break;
      }
      const bool humidity = channel->kind == Kind::kHumidity;
      auto id = fmt::format("iio-{}-{}{}", device.id, humidity ? "humidity" : "temp",
                            id_part(channel->modifier));
      // "dht11 temperature", "mlx90614 temperature object", "bme680 temperature 0"
      auto modifier = std::string(trim_underscores(channel->modifier));
      std::replace(modifier.begin(), modifier.end(), '_', ' ');
      auto name = friendly(fmt::format("{} {}{}{}", device.label, kind_name(channel->kind),
                                       modifier.empty() ? "" : " ", modifier));
      auto info = make_info(std::move(id), channel->kind, std::move(name), "iio");
      if (!channel->raw) {
        out.push_back(std::make_unique<MilliInputSource>(std::move(info), device.folder / file));
      } else {
        // A scale or offset of the channel itself, else one shared by the channel's type.
        auto extra = [&](std::string_view what) -> std::optional<fs::path> {
          for (const auto& candidate :
               {fmt::format("{}_{}", base, what), fmt::format("in_{}_{}", channel->type, what)}) {
            if (present.contains(candidate)) {
              return device.folder / candidate;
            }
          }
          return std::nullopt;
        };
        out.push_back(std::make_unique<IioRawSource>(std::move(info), device.folder / file,
                                                     extra("scale"), extra("offset")));
      }
      if (device.id.starts_with("dht")) {
        out.back()->set_min_period(kDhtCacheMillis);  // the dht11 driver's cache
      }
      found(*out.back(), device.folder / file);
    }
  }
}

void discover_hwmon(const fs::path& sysfs, Found& out) {
  const auto root = sysfs / "class" / "hwmon";
  std::vector<Device> devices;
  for (const auto& entry : device_folders(root, "hwmon")) {
    auto folder = root / entry;
    if (!is_folder(folder)) {
      continue;
    }
    // Drivers from before the hwmon core named things keep their attributes in device/.
    if (!is_file(folder / "name") && is_file(folder / "device" / "name")) {
      folder /= "device";
    }
    devices.push_back(describe(std::move(folder), entry));
  }
  name_devices(devices);
  for (const auto& device : devices) {
    std::size_t taken = 0;
    for (const auto& file : list_folder(device.folder)) {
      Kind kind = Kind::kTemperature;
      std::string_view type = "temp";
      auto number = numbered(file, type, "_input");
      if (!number) {
        kind = Kind::kHumidity;
        type = "humidity";
        number = numbered(file, type, "_input");
      }
      if (!number) {
        continue;
      }
      if (taken++ == kMaxSensorsPerDevice) {
        break;
      }
      const auto channel = fmt::format("{}{}", type, *number);
      auto label = read_attribute(device.folder / (channel + "_label"));
      auto shown = label.text ? friendly(*label.text) : std::string();
      if (shown.empty()) {
        shown = channel;
      }
      auto info = make_info(fmt::format("hwmon-{}-{}", device.id, channel), kind,
                            friendly(fmt::format("{} {}", device.label, shown)), "hwmon");
      out.push_back(std::make_unique<MilliInputSource>(std::move(info), device.folder / file));
      found(*out.back(), device.folder / file);
    }
  }
}

/// The 1-wire families that are thermometers, with the chip's name.
std::optional<std::string_view> w1_thermometer(std::string_view family) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kFamilies{{
      {"10", "DS18S20"},
      {"22", "DS1822"},
      {"28", "DS18B20"},
      {"3b", "DS1825"},
      {"42", "DS28EA00"},
  }};
  for (const auto& [code, chip] : kFamilies) {
    if (family == code) {
      return chip;
    }
  }
  return std::nullopt;
}

void discover_w1(const fs::path& sysfs, Found& out) {
  const auto root = sysfs / "bus" / "w1" / "devices";
  std::size_t devices = 0;
  for (const auto& entry : list_folder(root)) {
    // FF-SERIAL: the family in two hex digits; w1_bus_master1 and other families are skipped.
    const auto dash = entry.find('-');
    if (dash != 2 || entry.size() == 3) {
      continue;
    }
    const auto chip = w1_thermometer(std::string_view(entry).substr(0, 2));
    const auto slave = root / entry / "w1_slave";
    if (!chip || !is_file(slave)) {
      continue;
    }
    if (devices++ == kMaxDevicesPerClass) {
      spdlog::debug("sensors: more than {} devices in {}; the rest are ignored",
                    kMaxDevicesPerClass, root.string());
      break;
    }
    auto info = make_info("w1-" + id_part(entry), Kind::kTemperature,
                          friendly(fmt::format("{} {}", *chip, entry)), "w1");
    out.push_back(std::make_unique<W1Source>(std::move(info), slave));
    found(*out.back(), slave);
  }
}

/// Ids must be unique; device names could still collide ("x-2" and the second "x").
void make_ids_unique(Found& sources) {
  std::set<std::string, std::less<>> seen;
  for (auto& source : sources) {
    auto& id = source->mutable_info().id;
    if (seen.contains(id)) {
      for (int n = 2;; ++n) {
        auto candidate = fmt::format("{}-{}", id, n);
        if (!seen.contains(candidate)) {
          id = std::move(candidate);
          break;
        }
      }
    }
    seen.insert(id);
  }
}

}  // namespace

std::vector<std::unique_ptr<Source>> discover(const DiscoverOptions& options) {
  Found sources;
  discover_iio(options.sysfs, sources);
  discover_hwmon(options.sysfs, sources);
  discover_w1(options.sysfs, sources);
  if (options.simulate) {
    sources.push_back(std::make_unique<SimulatedSource>(Kind::kTemperature));
    sources.push_back(std::make_unique<SimulatedSource>(Kind::kHumidity));
  }
  make_ids_unique(sources);
  spdlog::debug("sensors: {} found under {}", sources.size(), options.sysfs.string());
  return {std::make_move_iterator(sources.begin()), std::make_move_iterator(sources.end())};
}

std::unique_ptr<Source> simulated_source(Kind kind) {
  return std::make_unique<SimulatedSource>(kind);
}

ReadResult parse_w1_slave(std::string_view text) {
  // 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
  // 72 01 4b 46 7f ff 0e 10 57 t=23125
  if (trim(text).empty()) {
    return failed("empty");
  }
  const auto newline = text.find('\n');
  const auto first = trim(text.substr(0, newline));
  const auto second =
      newline == std::string_view::npos ? std::string_view{} : trim(text.substr(newline + 1));
  if (!first.ends_with("YES")) {
    return failed("bad CRC");
  }
  // A sensor that does not answer reads as nine zero bytes, whose CRC is zero too.
  const auto bytes = first.substr(0, first.find(':'));
  if (bytes.find_first_not_of("0 ") == std::string_view::npos) {
    return failed("no answer (all bytes zero)");
  }
  const auto at = second.find("t=");
  if (at == std::string_view::npos) {
    return failed("no t= value");
  }
  std::string error;
  const auto milli = parse_number(second.substr(at + 2), error);
  if (!milli) {
    return failed(std::move(error));
  }
  if (*milli == kW1PowerOnMilli) {
    return failed("power-on value 85 °C");
  }
  return checked(Kind::kTemperature, *milli / 1000);
}

}  // namespace peernet::sensors
