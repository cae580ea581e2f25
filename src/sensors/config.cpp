#include "sensors/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include "common/id_chars.h"

namespace peernet::sensors {
namespace {

/// The longest friendly name, in bytes.
constexpr std::size_t kMaxNameBytes = 64;
/// The largest config file read; a real one is a few hundred bytes.
constexpr std::uintmax_t kMaxConfigBytes = std::uintmax_t{1} << 20;

[[noreturn]] void fail(const std::filesystem::path& file, const toml::source_region& where,
                       std::string_view what) {
  throw ConfigError(fmt::format("{}:{}: {}", file.string(), where.begin.line, what));
}

bool is_id(std::string_view id) noexcept {
  return !id.empty() && std::all_of(id.begin(), id.end(), is_id_char);
}

/// Whether `text` (valid UTF-8, as toml++ checks) holds a C0 or C1 control character or DEL.
bool has_control(std::string_view text) noexcept {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      return true;
    }
    // U+0080 to U+009F are encoded as C2 80 to C2 9F.
    if (c == 0xc2 && i + 1 < text.size()) {
      const auto next = static_cast<unsigned char>(text[i + 1]);
      if (next >= 0x80 && next <= 0x9f) {
        return true;
      }
    }
  }
  return false;
}

std::string read_text(const std::filesystem::path& file) {
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (ec) {
    throw ConfigError(fmt::format("{}: cannot be read: {}", file.string(), ec.message()));
  }
  // Checked before opening: an ifstream on a FIFO would wait for a writer.
  if (!std::filesystem::is_regular_file(status)) {
    throw ConfigError(fmt::format("{}: not a regular file", file.string()));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw ConfigError(fmt::format("{}: cannot be read", file.string()));
  }
  // One byte more than the limit, to tell a file of exactly the limit from a longer one.
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) {
    throw ConfigError(fmt::format("{}: cannot be read", file.string()));
  }
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    throw ConfigError(fmt::format("{}: larger than {} bytes; is it the right file?", file.string(),
                                  kMaxConfigBytes));
  }
  return text;
}

SensorOverride parse_sensor(const std::filesystem::path& file, std::string_view id,
                            const toml::table& table) {
  SensorOverride sensor;
  for (const auto& [key, node] : table) {
    const auto name = fmt::format("sensors.{}.{}", id, key.str());
    if (key == "name") {
      const auto* text = node.as_string();
      if (text == nullptr) {
        fail(file, node.source(), fmt::format("{} must be a string", name));
      }
      const std::string& value = text->get();
      if (value.empty()) {
        fail(file, node.source(), fmt::format("{} is empty", name));
      }
      if (value.size() > kMaxNameBytes) {
        fail(file, node.source(), fmt::format("{} is longer than {} bytes", name, kMaxNameBytes));
      }
      if (has_control(value)) {
        fail(file, node.source(), fmt::format("{} holds a control character", name));
      }
      sensor.name = value;
    } else if (key == "offset") {
      double offset = 0;
      if (const auto* real = node.as_floating_point()) {
        offset = real->get();
      } else if (const auto* whole = node.as_integer()) {
        offset = static_cast<double>(whole->get());
      } else {
        fail(file, node.source(), fmt::format("{} must be a number", name));
      }
      if (!std::isfinite(offset)) {
        fail(file, node.source(), fmt::format("{} must be a finite number", name));
      }
      sensor.offset = offset;
    } else if (key == "ignore") {
      const auto* flag = node.as_boolean();
      if (flag == nullptr) {
        fail(file, node.source(), fmt::format("{} must be true or false", name));
      }
      sensor.ignore = flag->get();
    } else {
      fail(file, key.source(),
           fmt::format("unknown key '{}' (name, offset and ignore are known)", name));
    }
  }
  return sensor;
}

/// A sensor as the config wants it: another name, an offset added to every value.
class OverrideSource final : public Source {
 public:
  OverrideSource(std::unique_ptr<Source> inner, const SensorOverride& config)
      : inner_(std::move(inner)), info_(inner_->info()), offset_(config.offset) {
    if (config.name) {
      info_.name = *config.name;
    }
  }

  const SensorInfo& info() const noexcept override { return info_; }
  Millis min_period() const noexcept override { return inner_->min_period(); }

  ReadResult read(Millis now) override {
    auto result = inner_->read(now);
    if (result.value) {
      double value = *result.value + offset_;
      if (info_.kind == Kind::kHumidity) {
        value = std::clamp(value, 0.0, 100.0);
      }
      // To the resolution sources read at, so that 23.125 - 0.4 shows as 22.725.
      result.value = std::round(value * 1000) / 1000;
    }
    return result;
  }

 private:
  std::unique_ptr<Source> inner_;
  SensorInfo info_;
  double offset_;
};

}  // namespace

SensorsConfig load_sensors_config(const std::filesystem::path& file) {
  const auto text = read_text(file);
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& e) {
    throw ConfigError(fmt::format("{}:{}:{}: {}", file.string(), e.source().begin.line,
                                  e.source().begin.column, e.description()));
  }
  SensorsConfig config;
  for (const auto& [key, node] : root) {
    if (key != "sensors") {
      fail(file, key.source(),
           fmt::format("unknown key '{}' (only [sensors.ID] tables belong here)", key.str()));
    }
    const auto* sensors = node.as_table();
    if (sensors == nullptr) {
      fail(file, node.source(), "sensors must be a table of [sensors.ID] tables");
    }
    for (const auto& [id, sensor] : *sensors) {
      if (!is_id(id.str())) {
        fail(file, id.source(),
             fmt::format("sensors.\"{}\" is not a sensor id (letters, digits, '.', '_', '~', '-')",
                         id.str()));
      }
      const auto* table = sensor.as_table();
      if (table == nullptr) {
        fail(file, sensor.source(), fmt::format("sensors.{} must be a table", id.str()));
      }
      config.sensors.emplace(std::string(id.str()), parse_sensor(file, id.str(), *table));
    }
  }
  return config;
}

std::vector<std::string> apply_sensors_config(const SensorsConfig& config,
                                              std::vector<std::unique_ptr<Source>>& sources) {
  std::set<std::string_view> matched;
  std::vector<std::unique_ptr<Source>> kept;
  kept.reserve(sources.size());
  for (auto& source : sources) {
    if (!source) {
      continue;
    }
    const auto it = config.sensors.find(source->info().id);
    if (it == config.sensors.end()) {
      kept.push_back(std::move(source));
      continue;
    }
    matched.insert(it->first);
    const auto& wanted = it->second;
    if (wanted.ignore) {
      spdlog::debug("sensors: {} ignored, as the config asks", it->first);
      continue;
    }
    if (wanted.name || wanted.offset != 0) {
      kept.push_back(std::make_unique<OverrideSource>(std::move(source), wanted));
    } else {
      kept.push_back(std::move(source));
    }
  }
  sources = std::move(kept);
  std::vector<std::string> unknown;
  for (const auto& [id, wanted] : config.sensors) {
    if (!matched.contains(id)) {
      unknown.push_back(id);
    }
  }
  return unknown;
}

}  // namespace peernet::sensors
