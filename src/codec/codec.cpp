#include "codec/codec.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/timestamp.pb.h>

#include "codec/json_codec.h"
#include "core/ids.h"

namespace peernet::codec {
namespace {

namespace pb = google::protobuf;

constexpr std::array<MediaType, 5> kKnown = {{
    {Encoding::kJson, "application/json"},
    {Encoding::kProto, "application/x-protobuf"},
    {Encoding::kProto, "application/protobuf"},
    {Encoding::kProto, "application/proto"},
    {Encoding::kProto, "application/vnd.google.protobuf"},
}};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<MediaType> find_known(std::string_view type) {
  for (const auto& known : kKnown) {
    if (iequals(type, known.name)) {
      return known;
    }
  }
  return std::nullopt;
}

core::Status check_strings(const pb::Message& message, const std::string& path) {
  const auto* reflection = message.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const auto* field : fields) {
    const auto name =
        path.empty() ? std::string(field->name()) : fmt::format("{}.{}", path, field->name());
    const int n = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < n; ++i) {
      const auto element = field->is_repeated() ? fmt::format("{}[{}]", name, i) : name;
      if (field->type() == pb::FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        const auto& value =
            field->is_repeated()
                ? reflection->GetRepeatedStringReference(message, field, i, &scratch)
                : reflection->GetStringReference(message, field, &scratch);
        if (!core::is_valid_utf8(value)) {
          return core::ApiError::malformed(fmt::format("{}: not valid UTF-8", element));
        }
      } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        const auto& child = field->is_repeated() ? reflection->GetRepeatedMessage(message, field, i)
                                                 : reflection->GetMessage(message, field);
        if (child.GetDescriptor() == pb::Timestamp::descriptor()) {
          pb::Timestamp timestamp;
          timestamp.CopyFrom(child);
          if (!is_valid_timestamp(timestamp)) {
            return core::ApiError::invalid(
                fmt::format("{}: a time outside the years 1 to 9999", element));
          }
          continue;
        }
        if (auto s = check_strings(child, element); !s) {
          return s;
        }
      }
    }
  }
  return core::ok_status();
}

}  // namespace

std::optional<MediaType> media_type_of(std::string_view content_type) {
  const auto type = trim(content_type.substr(0, content_type.find(';')));
  if (type.empty()) {
    return MediaType{};
  }
  return find_known(type);
}

MediaType negotiate(std::string_view accept, MediaType fallback) {
  std::optional<MediaType> best;
  double best_q = 0;
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    auto item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    const auto semi = item.find(';');
    const auto type = trim(item.substr(0, semi));
    double q = 1.0;
    auto params = semi == std::string_view::npos ? std::string_view{} : item.substr(semi + 1);
    while (!params.empty()) {
      const auto next = params.find(';');
      const auto param = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view{} : params.substr(next + 1);
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        q = std::strtod(std::string(param.substr(2)).c_str(), nullptr);
      }
    }
    if (q <= 0) {
      continue;
    }
    std::optional<MediaType> candidate = find_known(type);
    if (!candidate && (type == "*/*" || iequals(type, "application/*"))) {
      candidate = fallback;
    }
    if (candidate && q > best_q) {
      best = candidate;
      best_q = q;
    }
  }
  return best.value_or(fallback);
}

core::Status decode(std::string_view body, Encoding encoding, pb::Message& message) {
  if (encoding == Encoding::kJson) {
    if (trim(body).empty()) {
      return core::ok_status();  // an empty body is an empty message, as in binary
    }
    return json_to_message(body, message);
  }
  if (!message.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return core::ApiError::malformed(
        fmt::format("body: not a valid binary {} message", message.GetDescriptor()->full_name()));
  }
  return check_strings(message, "");
}

std::string encode(const pb::Message& message, Encoding encoding) {
  if (encoding == Encoding::kJson) {
    return message_to_json(message);
  }
  return message.SerializeAsString();
}

}  // namespace peernet::codec
