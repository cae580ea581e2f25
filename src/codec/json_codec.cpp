#include "codec/json_codec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>

namespace peernet::codec {
namespace {

namespace pb = google::protobuf;
using FieldDescriptor = pb::FieldDescriptor;
using core::ApiError;
using core::Status;
using nlohmann::json;

constexpr int kMaxDepth = 32;

std::string join(std::string_view path, std::string_view name) {
  return path.empty() ? std::string(name) : fmt::format("{}.{}", path, name);
}

std::string_view json_type(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_float:
      return "a fraction";
    default:
      return "a number";
  }
}

/// Rejects documents nested deeper than kMaxDepth before the parser builds them.
bool too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) {
        return true;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

template <typename Int>
Status read_integer(const json& value, const std::string& path, Int& out) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) {
      return ApiError::invalid(fmt::format("{}: {} is out of range", path, v));
    }
    out = static_cast<Int>(v);
    return core::ok_status();
  }
  if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    if constexpr (std::is_unsigned_v<Int>) {
      if (v < 0) {
        return ApiError::invalid(
            fmt::format("{}: {} is out of range (must not be negative)", path, v));
      }
      if (static_cast<std::uint64_t>(v) > std::numeric_limits<Int>::max()) {
        return ApiError::invalid(fmt::format("{}: {} is out of range", path, v));
      }
    } else if (v < std::numeric_limits<Int>::min() || v > std::numeric_limits<Int>::max()) {
      return ApiError::invalid(fmt::format("{}: {} is out of range", path, v));
    }
    out = static_cast<Int>(v);
    return core::ok_status();
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (std::trunc(v) != v || v < static_cast<double>(std::numeric_limits<Int>::min()) ||
        v >= std::ldexp(1.0, std::numeric_limits<Int>::digits)) {
      return ApiError::invalid(fmt::format("{}: {} is not an integer in range", path, v));
    }
    out = static_cast<Int>(v);
    return core::ok_status();
  }
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    const auto* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(s.data(), end, out);
    if (ec == std::errc::result_out_of_range) {
      return ApiError::invalid(fmt::format("{}: \"{}\" is out of range", path, s));
    }
    if (ec != std::errc() || ptr != end || s.empty()) {
      return ApiError::malformed(fmt::format("{}: \"{}\" is not an integer", path, s));
    }
    return core::ok_status();
  }
  return ApiError::malformed(
      fmt::format("{}: expected an integer, got {}", path, json_type(value)));
}

Status read_message(const json& value, const std::string& path, pb::Message& message);

Status read_double(const json& value, const std::string& path, double& out) {
  if (value.is_number()) {
    out = value.get<double>();
    return core::ok_status();
  }
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (s == "NaN") {
      out = std::numeric_limits<double>::quiet_NaN();
    } else if (s == "Infinity") {
      out = std::numeric_limits<double>::infinity();
    } else if (s == "-Infinity") {
      out = -std::numeric_limits<double>::infinity();
    } else {
      return ApiError::malformed(fmt::format("{}: \"{}\" is not a number", path, s));
    }
    return core::ok_status();
  }
  return ApiError::malformed(fmt::format("{}: expected a number, got {}", path, json_type(value)));
}

Status read_base64(const json& value, const std::string& path, std::string& out) {
  if (!value.is_string()) {
    return ApiError::malformed(
        fmt::format("{}: expected base64 text, got {}", path, json_type(value)));
  }
  out.clear();
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : value.get_ref<const std::string&>()) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+' || c == '-') {
      v = 62;
    } else if (c == '/' || c == '_') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      return ApiError::malformed(fmt::format("{}: not base64", path));
    }
    acc = (acc << 6U) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> static_cast<unsigned>(bits)) & 0xFFU));
    }
  }
  return core::ok_status();
}

/// Reads one value of `field` (one element, for a repeated field) into `message`.
Status read_value(const json& value, const std::string& path, pb::Message& message,
                  const FieldDescriptor* field) {
  const auto* reflection = message.GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
#define PEERNET_READ_INT(CPPTYPE, TYPE, NAME)                \
  case FieldDescriptor::CPPTYPE: {                           \
    TYPE v{};                                                \
    if (auto s = read_integer(value, path, v); !s) return s; \
    if (repeated) {                                          \
      reflection->Add##NAME(&message, field, v);             \
    } else {                                                 \
      reflection->Set##NAME(&message, field, v);             \
    }                                                        \
    return core::ok_status();                                \
  }
    PEERNET_READ_INT(CPPTYPE_INT32, std::int32_t, Int32)
    PEERNET_READ_INT(CPPTYPE_INT64, std::int64_t, Int64)
    PEERNET_READ_INT(CPPTYPE_UINT32, std::uint32_t, UInt32)
    PEERNET_READ_INT(CPPTYPE_UINT64, std::uint64_t, UInt64)
#undef PEERNET_READ_INT
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v = 0;
      if (auto s = read_double(value, path, v); !s) {
        return s;
      }
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        repeated ? reflection->AddDouble(&message, field, v)
                 : reflection->SetDouble(&message, field, v);
      } else {
        const auto f = static_cast<float>(v);
        repeated ? reflection->AddFloat(&message, field, f)
                 : reflection->SetFloat(&message, field, f);
      }
      return core::ok_status();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      if (!value.is_boolean()) {
        return ApiError::malformed(
            fmt::format("{}: expected true or false, got {}", path, json_type(value)));
      }
      const bool v = value.get<bool>();
      repeated ? reflection->AddBool(&message, field, v) : reflection->SetBool(&message, field, v);
      return core::ok_status();
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string v;
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        if (auto s = read_base64(value, path, v); !s) {
          return s;
        }
      } else if (value.is_string()) {
        v = value.get<std::string>();
      } else {
        return ApiError::malformed(
            fmt::format("{}: expected a string, got {}", path, json_type(value)));
      }
      repeated ? reflection->AddString(&message, field, std::move(v))
               : reflection->SetString(&message, field, std::move(v));
      return core::ok_status();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* type = field->enum_type();
      const pb::EnumValueDescriptor* v = nullptr;
      if (value.is_string()) {
        v = type->FindValueByName(value.get_ref<const std::string&>());
      } else if (value.is_number_integer() || value.is_number_unsigned()) {
        std::int32_t number = 0;
        if (auto s = read_integer(value, path, number); !s) {
          return s;
        }
        v = type->FindValueByNumber(number);
      } else {
        return ApiError::malformed(
            fmt::format("{}: expected a {} name, got {}", path, type->name(), json_type(value)));
      }
      if (v == nullptr) {
        return ApiError::invalid(
            fmt::format("{}: {} is not a {} value", path, value.dump(), type->name()));
      }
      repeated ? reflection->AddEnum(&message, field, v) : reflection->SetEnum(&message, field, v);
      return core::ok_status();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      pb::Message* child = repeated ? reflection->AddMessage(&message, field)
                                    : reflection->MutableMessage(&message, field);
      return read_message(value, path, *child);
    }
  }
  return ApiError::malformed(fmt::format("{}: unsupported field type", path));
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into a Timestamp. Written here
/// because protobuf 3.21's TimeUtil::FromString aborts (a failed CHECK) when a UTC offset moves
/// a time out of the Timestamp range, instead of returning false.
bool parse_rfc3339(std::string_view text, pb::Timestamp& out) {
  auto digits = [&](std::size_t at, std::size_t n, int& value) {
    if (at + n > text.size()) {
      return false;
    }
    value = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return false;
      }
      value = value * 10 + (text[i] - '0');
    }
    return true;
  };
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (text.size() < 20 || !digits(0, 4, year) || text[4] != '-' || !digits(5, 2, month) ||
      text[7] != '-' || !digits(8, 2, day) || (text[10] != 'T' && text[10] != 't') ||
      !digits(11, 2, hour) || text[13] != ':' || !digits(14, 2, minute) || text[16] != ':' ||
      !digits(17, 2, second)) {
    return false;
  }
  static constexpr std::array<int, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDays.at(month - 1) ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 59) {
    return false;
  }
  std::size_t at = 19;
  std::int32_t nanos = 0;
  if (at < text.size() && text[at] == '.') {
    std::size_t n = 0;
    for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, ++n) {
      if (n < 9) {
        nanos = nanos * 10 + (text[at] - '0');
      }
    }
    if (n == 0 || n > 9) {
      return false;
    }
    for (; n < 9; ++n) {
      nanos *= 10;
    }
  }
  std::int64_t offset = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    int oh = 0;
    int om = 0;
    if (!digits(at + 1, 2, oh) || at + 3 >= text.size() || text[at + 3] != ':' ||
        !digits(at + 4, 2, om) || oh > 23 || om > 59) {
      return false;
    }
    offset = (text[at] == '+' ? 1 : -1) * (std::int64_t{oh} * 3600 + std::int64_t{om} * 60);
    at += 6;
  } else {
    return false;
  }
  if (at != text.size()) {
    return false;
  }
  const std::int64_t seconds =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second - offset;
  out.set_seconds(seconds);
  out.set_nanos(nanos);
  return is_valid_timestamp(out);
}

Status read_timestamp(const json& value, const std::string& path, pb::Message& message) {
  if (!value.is_string()) {
    return ApiError::malformed(
        fmt::format("{}: expected an RFC 3339 time, got {}", path, json_type(value)));
  }
  pb::Timestamp ts;
  if (!parse_rfc3339(value.get_ref<const std::string&>(), ts)) {
    return ApiError::invalid(
        fmt::format("{}: \"{}\" is not an RFC 3339 time between the years 1 and 9999", path,
                    value.get_ref<const std::string&>().substr(0, 64)));
  }
  message.CopyFrom(ts);
  return core::ok_status();
}

/// Whether `descriptor` is google.protobuf.Timestamp's, in whichever pool it was built. Its name
/// is looked up once: Timestamp::descriptor() takes a once-flag and a thread-local every call.
bool is_timestamp(const pb::Descriptor& descriptor) {
  static const std::string& timestamp = pb::Timestamp::descriptor()->full_name();
  return descriptor.full_name() == timestamp;
}

Status read_message(const json& value, const std::string& path, pb::Message& message) {
  const auto* descriptor = message.GetDescriptor();
  if (is_timestamp(*descriptor)) {
    return read_timestamp(value, path, message);
  }
  if (!value.is_object()) {
    return ApiError::malformed(fmt::format("{}: expected an object ({}), got {}",
                                           path.empty() ? "body" : path, descriptor->name(),
                                           json_type(value)));
  }
  std::vector<const FieldDescriptor*> seen;
  for (const auto& [key, item] : value.items()) {
    const FieldDescriptor* field = nullptr;
    if (key.size() > 2 && key.front() == '[' && key.back() == ']') {
      const std::string name = key.substr(1, key.size() - 2);
      field = pb::DescriptorPool::generated_pool()->FindExtensionByName(name);
      if (field == nullptr || field->containing_type() != descriptor) {
        return ApiError::malformed(
            fmt::format("{}: unknown extension of {}", join(path, key), descriptor->full_name()));
      }
    } else {
      field = descriptor->FindFieldByName(key);
      for (int i = 0; field == nullptr && i < descriptor->field_count(); ++i) {
        if (descriptor->field(i)->json_name() == key) {
          field = descriptor->field(i);
        }
      }
      if (field == nullptr) {
        return ApiError::malformed(
            fmt::format("{}: unknown field of {}", join(path, key), descriptor->full_name()));
      }
    }
    if (std::find(seen.begin(), seen.end(), field) != seen.end()) {
      // Both spellings of one field ("unique_id" and "uniqueId"): which should win?
      return ApiError::malformed(
          fmt::format("{}: field {} is given twice", join(path, key), field->name()));
    }
    seen.push_back(field);
    if (item.is_null()) {
      continue;  // null means "not set" in protobuf's JSON mapping
    }
    const std::string field_path = join(path, key);
    if (field->is_repeated()) {
      if (!item.is_array()) {
        return ApiError::malformed(
            fmt::format("{}: expected an array, got {}", field_path, json_type(item)));
      }
      std::size_t i = 0;
      for (const auto& element : item) {
        if (auto s = read_value(element, fmt::format("{}[{}]", field_path, i++), message, field);
            !s) {
          return s;
        }
      }
    } else if (auto s = read_value(item, field_path, message, field); !s) {
      return s;
    }
  }
  return core::ok_status();
}

// ---- writing --------------------------------------------------------------------------------

void write_message(std::string& out, const pb::Message& message);

void write_base64(std::string& out, const std::string& bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out.push_back('"');
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16U) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8U) |
                   static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[(n >> 18U) & 63U]);
    out.push_back(kAlphabet[(n >> 12U) & 63U]);
    out.push_back(kAlphabet[(n >> 6U) & 63U]);
    out.push_back(kAlphabet[n & 63U]);
  }
  if (const auto rest = bytes.size() - i; rest > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16U;
    if (rest == 2) {
      n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8U;
    }
    out.push_back(kAlphabet[(n >> 18U) & 63U]);
    out.push_back(kAlphabet[(n >> 12U) & 63U]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6U) & 63U] : '=');
    out.push_back('=');
  }
  out.push_back('"');
}

void write_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

void write_value(std::string& out, const pb::Message& message, const FieldDescriptor* field,
                 int index) {
  const auto* r = message.GetReflection();
  const bool rep = index >= 0;
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      fmt::format_to(
          std::back_inserter(out), "{}",
          rep ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field));
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      fmt::format_to(
          std::back_inserter(out), "{}",
          rep ? r->GetRepeatedUInt32(message, field, index) : r->GetUInt32(message, field));
      return;
    case FieldDescriptor::CPPTYPE_INT64:  // 64-bit integers are strings in protobuf's JSON mapping
      fmt::format_to(
          std::back_inserter(out), "\"{}\"",
          rep ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field));
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      fmt::format_to(
          std::back_inserter(out), "\"{}\"",
          rep ? r->GetRepeatedUInt64(message, field, index) : r->GetUInt64(message, field));
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      write_double(
          out, rep ? r->GetRepeatedDouble(message, field, index) : r->GetDouble(message, field));
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      write_double(out,
                   rep ? r->GetRepeatedFloat(message, field, index) : r->GetFloat(message, field));
      return;
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (rep ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
                 ? "true"
                 : "false";
      return;
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& v = rep ? r->GetRepeatedStringReference(message, field, index, &scratch)
                                 : r->GetStringReference(message, field, &scratch);
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        write_base64(out, v);
      } else {
        append_json_string(out, v);
      }
      return;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* v = rep ? r->GetRepeatedEnum(message, field, index) : r->GetEnum(message, field);
      append_json_string(out, v->name());
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      write_message(
          out, rep ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field));
      return;
  }
}

void write_message(std::string& out, const pb::Message& message) {
  const auto* descriptor = message.GetDescriptor();
  if (is_timestamp(*descriptor)) {
    pb::Timestamp ts;
    ts.CopyFrom(message);
    append_json_string(out, pb::util::TimeUtil::ToString(ts));
    return;
  }
  std::vector<const FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  out.push_back('{');
  bool first = true;
  for (const auto* field : fields) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    if (field->is_extension()) {
      append_json_string(out, fmt::format("[{}]", field->full_name()));
    } else {
      append_json_string(out, field->name());
    }
    out.push_back(':');
    if (field->is_repeated()) {
      out.push_back('[');
      const int n = message.GetReflection()->FieldSize(message, field);
      for (int i = 0; i < n; ++i) {
        if (i > 0) {
          out.push_back(',');
        }
        write_value(out, message, field, i);
      }
      out.push_back(']');
    } else {
      write_value(out, message, field, -1);
    }
  }
  out.push_back('}');
}

}  // namespace

bool is_valid_timestamp(const google::protobuf::Timestamp& timestamp) {
  // 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, as protobuf's JSON mapping has it.
  return timestamp.seconds() >= -62'135'596'800 && timestamp.seconds() <= 253'402'300'799 &&
         timestamp.nanos() >= 0 && timestamp.nanos() <= 999'999'999;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  const auto needs_escape = [](char c) {
    return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
  };
  out.push_back('"');
  // Copies each run of characters that need no escape at once: SDP bodies, the longest strings
  // sent, are lines of plain text between "\r\n".
  auto run = text.begin();
  for (auto it = text.begin(); it != text.end(); ++it) {
    if (!needs_escape(*it)) {
      continue;
    }
    out.append(run, it);
    run = it + 1;
    switch (*it) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        const auto u = static_cast<unsigned char>(*it);
        out += "\\u00";
        out.push_back(kHex[u >> 4U]);
        out.push_back(kHex[u & 15U]);
      }
    }
  }
  out.append(run, text.end());
  out.push_back('"');
}

core::Status json_to_message(std::string_view text, pb::Message& message) {
  if (too_deep(text)) {
    return ApiError::malformed(fmt::format("body: JSON nested deeper than {} levels", kMaxDepth));
  }
  json document;
  std::string duplicate;
  // Objects being parsed, innermost last, with the keys seen so far: a key given twice is an
  // error rather than "last one wins".
  std::vector<std::vector<std::string>> open_objects;
  const json::parser_callback_t check_keys = [&](int /*depth*/, json::parse_event_t event,
                                                 json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end && !open_objects.empty()) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() && duplicate.empty()) {
      auto& keys = open_objects.back();
      const auto& key = parsed.get_ref<const std::string&>();
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
        duplicate = key;
      }
      keys.push_back(key);
    }
    return true;
  };
  try {
    document = json::parse(text, check_keys);
  } catch (const json::out_of_range& e) {
    return ApiError::invalid("body: a number is out of range for JSON (over about 1.8e308)");
  } catch (const json::parse_error& e) {
    // Keep nlohmann's reason but not its echo of the input ("; last read: ...").
    std::string_view what = e.what();
    if (auto at = what.find("parse error"); at != std::string_view::npos) {
      what.remove_prefix(at);
    }
    what = what.substr(0, what.find("; last read"));
    return ApiError::malformed(fmt::format("body: invalid JSON: {}", what));
  } catch (const json::exception& e) {
    return ApiError::malformed(fmt::format("body: invalid JSON ({})", e.id));
  }
  if (!duplicate.empty()) {
    return ApiError::malformed(
        fmt::format("{}: given twice in one object", duplicate.substr(0, 128)));
  }
  try {
    return read_message(document, "", message);
  } catch (const json::exception& e) {
    // Reading a parsed document should not throw; if it does, it is still the body's fault.
    return ApiError::malformed(fmt::format("body: unreadable JSON value ({})", e.id));
  }
}

std::string message_to_json(const pb::Message& message) {
  std::string out;
  out.reserve(256);
  write_message(out, message);
  return out;
}

}  // namespace peernet::codec
