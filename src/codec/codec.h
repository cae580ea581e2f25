#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>

#include "core/api_error.h"

namespace peernet::codec {

/// How a body is encoded.
enum class Encoding { kJson, kProto };

/// A content type the daemon reads and writes, with the spelling to answer in.
struct MediaType {
  Encoding encoding = Encoding::kJson;
  std::string_view name = "application/json";
};

/// The encoding of a request body from its Content-Type; an absent Content-Type means JSON (the
/// seed's sample sends none). nullopt for anything else (415).
std::optional<MediaType> media_type_of(std::string_view content_type);

/// The encoding to answer in: the first type in Accept the daemon can write (q=0 excluded),
/// else `fallback` (the request's own type).
MediaType negotiate(std::string_view accept, MediaType fallback);

/// Decodes a body. Binary bodies are checked for well-formed UTF-8 in every string field, since
/// a JSON reader would choke on anything else later.
core::Status decode(std::string_view body, Encoding encoding, google::protobuf::Message& message);

/// Encodes a message; unknown fields survive in binary only.
std::string encode(const google::protobuf::Message& message, Encoding encoding);

}  // namespace peernet::codec
