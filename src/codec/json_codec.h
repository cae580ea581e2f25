#pragma once

#include <string>
#include <string_view>

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include "core/api_error.h"

namespace peernet::codec {

/// Reads `text` (protobuf's JSON mapping) into `message`. Field names are accepted as written in
/// the .proto or in lowerCamelCase; extensions the daemon knows are read from keys of the form
/// "[full.extension.name]". Unknown fields, wrong types and out-of-range numbers are errors
/// naming the field, as is nesting deeper than 32 levels.
core::Status json_to_message(std::string_view text, google::protobuf::Message& message);

/// Writes `message` in protobuf's JSON mapping with field names as in the .proto. Known
/// extensions are written as "[full.extension.name]" keys; unknown fields (including extensions
/// the daemon cannot name) are left out.
std::string message_to_json(const google::protobuf::Message& message);

/// True for a Timestamp within 0001-01-01 and 9999-12-31 with nanos in [0, 1e9).
bool is_valid_timestamp(const google::protobuf::Timestamp& timestamp);

/// Appends a JSON string literal for `text` (which must be valid UTF-8) to `out`.
void append_json_string(std::string& out, std::string_view text);

}  // namespace peernet::codec
