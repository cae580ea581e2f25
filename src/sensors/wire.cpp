#include "sensors/wire.h"

#include <cmath>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace peernet::sensors {
namespace {

using nlohmann::json;

/// Times outside ±10^15 ms (about 31,000 years) are no one's readings.
constexpr Millis kMaxTime = 1'000'000'000'000'000;
constexpr std::size_t kMaxNameBytes = 128;
constexpr std::size_t kMaxUnitBytes = 16;

[[noreturn]] void fail(const std::string& what) { throw WireError(what); }

const json& member(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end()) {
    fail(std::string("missing \"") + name + "\"");
  }
  return *it;
}

Millis as_time(const json& value, const char* what) {
  if (!value.is_number_integer()) {
    fail(std::string("\"") + what + "\" is not a whole number of milliseconds");
  }
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() > static_cast<std::uint64_t>(kMaxTime)) {
    fail(std::string("\"") + what + "\" is out of range");
  }
  const auto time = value.get<std::int64_t>();
  if (time > kMaxTime || time < -kMaxTime) {
    fail(std::string("\"") + what + "\" is out of range");
  }
  return time;
}

double as_finite(const json& value, const char* what) {
  if (!value.is_number()) {
    fail(std::string("\"") + what + "\" is not a number");
  }
  const auto number = value.get<double>();
  if (!std::isfinite(number)) {
    fail(std::string("\"") + what + "\" is not finite");
  }
  return number;
}

std::string as_text(const json& value, const char* what, std::size_t max_bytes) {
  if (!value.is_string()) {
    fail(std::string("\"") + what + "\" is not a string");
  }
  auto text = value.get<std::string>();
  if (text.size() > max_bytes) {
    fail(std::string("\"") + what + "\" is longer than " + std::to_string(max_bytes) + " bytes");
  }
  return text;
}

std::string as_sensor_id(const json& value) {
  std::string id = as_text(value, "sensor", kMaxNameBytes);
  if (!valid_sensor_id(id)) {
    fail("\"" + id + "\" is not a sensor id (1-128 of A-Z a-z 0-9 . _ ~ -)");
  }
  return id;
}

std::uint32_t as_count(const json& value, const char* what) {
  if (!value.is_number_unsigned() || value.get<std::uint64_t>() > UINT32_MAX) {
    fail(std::string("\"") + what + "\" is not a count");
  }
  return value.get<std::uint32_t>();
}

const json& as_array(const json& value, const char* what) {
  if (!value.is_array()) {
    fail(std::string("\"") + what + "\" is not an array");
  }
  return value;
}

Resolution as_resolution(const json& value) {
  const auto resolution = resolution_from_name(as_text(value, "resolution", 8));
  if (!resolution) {
    fail("\"resolution\" is not one of raw, 5m, 1h");
  }
  return *resolution;
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json value_json(const std::optional<double>& value) { return value ? json(*value) : json(nullptr); }

json reading_row(const Reading& r) { return json::array({r.sensor, r.time, value_json(r.value)}); }

Reading reading_from(const json& row) {
  if (!row.is_array() || row.size() != 3) {
    fail("a reading is not [sensor, time, value]");
  }
  Reading reading{as_sensor_id(row[0]), as_time(row[1], "time"), std::nullopt};
  if (!row[2].is_null()) {
    reading.value = as_finite(row[2], "value");
  }
  return reading;
}

json rollup_row(const Rollup& r) {
  return json::array({r.sensor, r.start, r.min, r.mean, r.max, r.count, r.stale});
}

Rollup rollup_from(const json& row) {
  if (!row.is_array() || row.size() != 7) {
    fail("a rollup is not [sensor, start, min, mean, max, count, stale]");
  }
  Rollup rollup{as_sensor_id(row[0]),      as_time(row[1], "start"), as_finite(row[2], "min"),
                as_finite(row[3], "mean"), as_finite(row[4], "max"), as_count(row[5], "count"),
                as_count(row[6], "stale")};
  if (!(rollup.min <= rollup.mean && rollup.mean <= rollup.max) || rollup.count == 0) {
    fail("a rollup's figures do not hold together (min <= mean <= max, count > 0)");
  }
  return rollup;
}

json sensor_json(const SensorInfo& s) {
  return {{"id", s.id},
          {"kind", kind_name(s.kind)},
          {"unit", s.unit},
          {"name", s.name},
          {"source", s.source}};
}

SensorInfo sensor_from(const json& object) {
  if (!object.is_object()) {
    fail("a sensor is not an object");
  }
  const auto kind = kind_from_name(as_text(member(object, "kind"), "kind", 16));
  if (!kind) {
    fail("\"kind\" is not temperature or humidity");
  }
  return {as_sensor_id(member(object, "id")), *kind,
          as_text(member(object, "unit"), "unit", kMaxUnitBytes),
          as_text(member(object, "name"), "name", kMaxNameBytes),
          as_text(member(object, "source"), "source", 16)};
}

struct Encoder {
  json operator()(const Subscribe& m) const {
    json object{{"op", "subscribe"}, {"sensors", m.sensors}, {"live", m.live}};
    if (m.history) {
      object["history"] = {{"from", m.history->from},
                           {"to", m.history->to},
                           {"resolution", resolution_name(m.history->resolution)}};
    }
    return object;
  }
  json operator()(const Hello& m) const {
    json sensors = json::array();
    for (const SensorInfo& sensor : m.sensors) {
      sensors.push_back(sensor_json(sensor));
    }
    return {{"op", "sensors"}, {"interval_ms", m.interval}, {"sensors", std::move(sensors)}};
  }
  json operator()(const Readings& m) const {
    json rows = json::array();
    for (const Reading& reading : m.readings) {
      rows.push_back(reading_row(reading));
    }
    return {{"op", "readings"}, {"live", m.live}, {"rows", std::move(rows)}};
  }
  json operator()(const Rollups& m) const {
    json rows = json::array();
    for (const Rollup& rollup : m.rows) {
      rows.push_back(rollup_row(rollup));
    }
    return {{"op", "rollups"},
            {"resolution", resolution_name(m.resolution)},
            {"rows", std::move(rows)}};
  }
  json operator()(const HistoryEnd& /*unused*/) const { return {{"op", "history-end"}}; }
  json operator()(const Failure& m) const {
    return {{"op", "error"}, {"code", m.code}, {"message", m.message}};
  }
};

Subscribe subscribe_from(const json& object) {
  Subscribe subscribe;
  if (const auto it = object.find("sensors"); it != object.end()) {
    const json& sensors = as_array(*it, "sensors");
    if (sensors.size() > kMaxSensors) {
      fail("\"sensors\" names more than " + std::to_string(kMaxSensors) + " sensors");
    }
    for (const json& id : sensors) {
      subscribe.sensors.push_back(as_sensor_id(id));
    }
  }
  if (const auto it = object.find("history"); it != object.end() && !it->is_null()) {
    if (!it->is_object()) {
      fail("\"history\" is not an object");
    }
    HistoryRequest request{as_time(member(*it, "from"), "from"), as_time(member(*it, "to"), "to"),
                           as_resolution(member(*it, "resolution"))};
    if (request.from > request.to) {
      fail("\"history\" ends before it starts (from > to)");
    }
    subscribe.history = request;
  }
  if (const auto it = object.find("live"); it != object.end()) {
    if (!it->is_boolean()) {
      fail("\"live\" is not true or false");
    }
    subscribe.live = it->get<bool>();
  }
  return subscribe;
}

Hello hello_from(const json& object) {
  Hello hello;
  hello.interval = as_time(member(object, "interval_ms"), "interval_ms");
  if (hello.interval <= 0) {
    fail("\"interval_ms\" is not positive");
  }
  const json& sensors = as_array(member(object, "sensors"), "sensors");
  if (sensors.size() > kMaxSensors) {
    fail("more than " + std::to_string(kMaxSensors) + " sensors");
  }
  for (const json& sensor : sensors) {
    hello.sensors.push_back(sensor_from(sensor));
  }
  return hello;
}

/// Rows dumped one by one into messages of about kBatchBytes: `head` + rows + "]}".
template <typename Row, typename ToJson>
std::vector<std::string> batches(const std::string& head, std::span<const Row> rows,
                                 ToJson to_json) {
  std::vector<std::string> messages;
  std::string message;
  for (const Row& row : rows) {
    const std::string text = dump(to_json(row));
    if (!message.empty() && message.size() + text.size() + 2 > kBatchBytes) {
      messages.push_back(std::move(message) + "]}");
      message.clear();
    }
    message += message.empty() ? head : ",";
    message += text;
  }
  if (!message.empty()) {
    messages.push_back(std::move(message) + "]}");
  }
  return messages;
}

}  // namespace

std::string encode(const Message& message) { return dump(std::visit(Encoder{}, message)); }

Message decode(std::string_view text) {
  const json object = json::parse(text, nullptr, false);
  if (object.is_discarded()) {
    fail("not JSON");
  }
  if (!object.is_object()) {
    fail("not a JSON object");
  }
  const std::string op = as_text(member(object, "op"), "op", 32);
  if (op == "subscribe") {
    return subscribe_from(object);
  }
  if (op == "sensors") {
    return hello_from(object);
  }
  if (op == "readings") {
    Readings readings;
    const auto live = object.find("live");
    readings.live = live != object.end() && live->is_boolean() && live->get<bool>();
    for (const json& row : as_array(member(object, "rows"), "rows")) {
      readings.readings.push_back(reading_from(row));
    }
    return readings;
  }
  if (op == "rollups") {
    Rollups rollups;
    rollups.resolution = as_resolution(member(object, "resolution"));
    if (rollups.resolution == Resolution::kRaw) {
      fail("rollups cannot be raw");
    }
    for (const json& row : as_array(member(object, "rows"), "rows")) {
      rollups.rows.push_back(rollup_from(row));
    }
    return rollups;
  }
  if (op == "history-end") {
    return HistoryEnd{};
  }
  if (op == "error") {
    return Failure{as_text(member(object, "code"), "code", 64),
                   as_text(member(object, "message"), "message", 1024)};
  }
  fail("unknown op \"" + op + "\"");
}

std::vector<std::string> encode_readings(std::span<const Reading> readings, bool live) {
  const std::string head =
      std::string(R"({"op":"readings","live":)") + (live ? "true" : "false") + R"(,"rows":[)";
  if (readings.empty()) {
    return {head + "]}"};
  }
  return batches(head, readings, reading_row);
}

std::vector<std::string> encode_rollups(Resolution resolution, std::span<const Rollup> rows) {
  const std::string head = std::string(R"({"op":"rollups","resolution":")") +
                           std::string(resolution_name(resolution)) + R"(","rows":[)";
  if (rows.empty()) {
    return {};
  }
  return batches(head, rows, rollup_row);
}

}  // namespace peernet::sensors
