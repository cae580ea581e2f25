#include "files/wire.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

namespace peernet::files {
namespace {

using nlohmann::json;

/// Error messages longer than this are refused unread (paths: kMaxPathBytes, in safe_dir.h).
constexpr std::size_t kMaxMessageTextBytes = 1024;

const json& field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end()) {
    throw WireError(std::string("missing field \"") + name + "\"");
  }
  return *it;
}

std::uint64_t get_u64(const json& object, const char* name) {
  const json& value = field(object, name);
  if (!value.is_number_unsigned()) {
    throw WireError(std::string("\"") + name + "\" must be a non-negative integer");
  }
  return value.get<std::uint64_t>();
}

std::int64_t get_i64(const json& object, const char* name) {
  const json& value = field(object, name);
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() <= std::uint64_t{std::numeric_limits<std::int64_t>::max()}) {
    return static_cast<std::int64_t>(value.get<std::uint64_t>());
  }
  if (!value.is_number_integer() || value.is_number_unsigned()) {
    throw WireError(std::string("\"") + name + "\" must be an integer");
  }
  return value.get<std::int64_t>();
}

std::uint32_t get_chunk(const json& object) {
  const std::uint64_t chunk = get_u64(object, "chunk");
  if (chunk == 0 || chunk > kChunkBytes) {
    throw WireError("\"chunk\" must be between 1 and " + std::to_string(kChunkBytes));
  }
  return static_cast<std::uint32_t>(chunk);
}

bool get_bool(const json& object, const char* name, bool fallback) {
  const auto it = object.find(name);
  if (it == object.end()) {
    return fallback;
  }
  if (!it->is_boolean()) {
    throw WireError(std::string("\"") + name + "\" must be true or false");
  }
  return it->get<bool>();
}

std::string get_string(const json& object, const char* name, std::size_t max_bytes) {
  const json& value = field(object, name);
  if (!value.is_string()) {
    throw WireError(std::string("\"") + name + "\" must be a string");
  }
  const auto& text = value.get_ref<const std::string&>();
  if (text.size() > max_bytes) {
    throw WireError(std::string("\"") + name + "\" is longer than " + std::to_string(max_bytes) +
                    " bytes");
  }
  return text;
}

Digest get_digest(const json& object) {
  Digest digest{};
  if (!from_hex(get_string(object, "sha256", 64), digest)) {
    throw WireError("\"sha256\" must be 64 hexadecimal digits");
  }
  return digest;
}

json ranges_json(const Ranges& ranges) {
  json array = json::array();
  for (const auto& [first, last] : ranges) {
    array.push_back(json::array({first, last}));
  }
  return array;
}

Ranges get_ranges(const json& object, const char* name) {
  const json& value = field(object, name);
  if (!value.is_array() || value.size() > kMaxRanges) {
    throw WireError(std::string("\"") + name + "\" must be an array of at most " +
                    std::to_string(kMaxRanges) + " ranges");
  }
  Ranges ranges;
  ranges.reserve(value.size());
  for (const json& range : value) {
    if (!range.is_array() || range.size() != 2 || !range[0].is_number_unsigned() ||
        !range[1].is_number_unsigned()) {
      throw WireError(std::string("each of \"") + name + "\" must be [first, last]");
    }
    const auto first = range[0].get<std::uint64_t>();
    const auto last = range[1].get<std::uint64_t>();
    if (first >= last || (!ranges.empty() && first <= ranges.back().second)) {
      throw WireError(std::string("\"") + name + "\" must be sorted, disjoint, non-empty ranges");
    }
    ranges.emplace_back(first, last);
  }
  return ranges;
}

json entry_json(const Entry& entry) {
  json object{{"path", entry.path}, {"mtime", entry.mtime}};
  if (entry.directory) {
    object["dir"] = true;
  } else {
    object["size"] = entry.size;
  }
  return object;
}

Entry get_entry(const json& object) {
  if (!object.is_object()) {
    throw WireError("each entry must be an object");
  }
  Entry entry;
  entry.path = get_string(object, "path", kMaxPathBytes);
  entry.mtime = get_i64(object, "mtime");
  entry.directory = get_bool(object, "dir", false);
  entry.size = entry.directory ? 0 : get_u64(object, "size");
  return entry;
}

std::string dump(const json& object) {
  // Replacement, not an exception, for a name that is not UTF-8: the serving side leaves such
  // names out, so this only guards against a bug becoming a crash.
  return object.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct Encoder {
  json operator()(const ListRequest& m) const {
    return {{"op", "list"}, {"id", m.id}, {"path", m.path}, {"recursive", m.recursive}};
  }
  json operator()(const GetRequest& m) const {
    json object{{"op", "get"}, {"id", m.id}, {"path", m.path}};
    if (m.resume) {
      object["resume"] = {{"size", m.resume->size},
                          {"mtime", m.resume->mtime},
                          {"chunk", m.resume->chunk},
                          {"have", ranges_json(m.resume->have)}};
    }
    return object;
  }
  json operator()(const PutRequest& m) const {
    return {{"op", "put"},    {"id", m.id},       {"path", m.path},
            {"size", m.size}, {"mtime", m.mtime}, {"overwrite", m.overwrite}};
  }
  json operator()(const EndOfFile& m) const {
    return {{"op", "end"}, {"id", m.id}, {"sha256", to_hex(m.sha256)}};
  }
  json operator()(const Listing& m) const {
    json entries = json::array();
    for (const Entry& entry : m.entries) {
      entries.push_back(entry_json(entry));
    }
    return {{"op", "listing"}, {"id", m.id}, {"entries", std::move(entries)}, {"more", m.more}};
  }
  json operator()(const FileHeader& m) const {
    return {{"op", "file"},
            {"id", m.id},
            {"size", m.size},
            {"mtime", m.mtime},
            {"chunk", m.chunk},
            {"restart", m.restart},
            {"sending", ranges_json(m.sending)}};
  }
  json operator()(const Ready& m) const {
    return {{"op", "ready"}, {"id", m.id}, {"chunk", m.chunk}, {"have", ranges_json(m.have)}};
  }
  json operator()(const Done& m) const { return {{"op", "done"}, {"id", m.id}}; }
  json operator()(const Working& m) const { return {{"op", "working"}, {"id", m.id}}; }
  json operator()(const Failure& m) const {
    return {{"op", "error"}, {"id", m.id}, {"code", m.code}, {"message", m.message}};
  }
};

Message decode_object(const json& object) {
  const std::string op = get_string(object, "op", 16);
  const std::uint64_t id = get_u64(object, "id");
  if (op == "list") {
    return ListRequest{id, get_string(object, "path", kMaxPathBytes),
                       get_bool(object, "recursive", false)};
  }
  if (op == "get") {
    GetRequest request{id, get_string(object, "path", kMaxPathBytes), std::nullopt};
    if (const auto it = object.find("resume"); it != object.end() && !it->is_null()) {
      if (!it->is_object()) {
        throw WireError("\"resume\" must be an object");
      }
      request.resume = Resume{get_u64(*it, "size"), get_i64(*it, "mtime"), get_chunk(*it),
                              get_ranges(*it, "have")};
    }
    return request;
  }
  if (op == "put") {
    return PutRequest{id, get_string(object, "path", kMaxPathBytes), get_u64(object, "size"),
                      get_i64(object, "mtime"), get_bool(object, "overwrite", false)};
  }
  if (op == "end") {
    return EndOfFile{id, get_digest(object)};
  }
  if (op == "listing") {
    const json& entries = field(object, "entries");
    if (!entries.is_array()) {
      throw WireError("\"entries\" must be an array");
    }
    Listing listing{id, {}, get_bool(object, "more", false)};
    listing.entries.reserve(entries.size());
    for (const json& entry : entries) {
      listing.entries.push_back(get_entry(entry));
    }
    return listing;
  }
  if (op == "file") {
    return FileHeader{id,
                      get_u64(object, "size"),
                      get_i64(object, "mtime"),
                      get_chunk(object),
                      get_bool(object, "restart", false),
                      get_ranges(object, "sending")};
  }
  if (op == "ready") {
    return Ready{id, get_chunk(object), get_ranges(object, "have")};
  }
  if (op == "done") {
    return Done{id};
  }
  if (op == "working") {
    return Working{id};
  }
  if (op == "error") {
    return Failure{id, get_string(object, "code", 32),
                   get_string(object, "message", kMaxMessageTextBytes)};
  }
  throw WireError("unknown op \"" + op + "\"");
}

}  // namespace

std::uint64_t chunk_count(std::uint64_t size, std::uint32_t chunk_bytes) {
  return size / chunk_bytes + (size % chunk_bytes != 0 ? 1 : 0);
}

Ranges complement(const Ranges& ranges, std::uint64_t count) {
  Ranges missing;
  std::uint64_t next = 0;
  for (const auto& [first, last] : ranges) {
    if (first >= count) {
      break;
    }
    if (first > next) {
      missing.emplace_back(next, first);
    }
    next = std::max(next, last);
  }
  if (next < count) {
    missing.emplace_back(next, count);
  }
  return missing;
}

std::uint64_t covered(const Ranges& ranges) {
  std::uint64_t total = 0;
  for (const auto& [first, last] : ranges) {
    total += last - first;
  }
  return total;
}

Ranges clip_have(Ranges have) {
  if (have.size() >= kMaxRanges) {
    have.resize(kMaxRanges - 1);
  }
  return have;
}

bool contains(const Ranges& ranges, std::uint64_t index) {
  const auto it =
      std::upper_bound(ranges.begin(), ranges.end(), index,
                       [](std::uint64_t i, const auto& range) { return i < range.first; });
  return it != ranges.begin() && index < std::prev(it)->second;
}

std::string encode(const Message& message) { return dump(std::visit(Encoder{}, message)); }

Message decode(std::string_view text) {
  json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    throw WireError("not a JSON message");
  }
  if (!object.is_object()) {
    throw WireError("a message must be a JSON object");
  }
  return decode_object(object);
}

void encode_chunk_header(std::span<std::byte> out, std::uint64_t index, const Digest& digest) {
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<std::byte>(index & 0xffU);
    index >>= 8U;
  }
  std::copy(digest.begin(), digest.end(), out.begin() + 8);
}

std::optional<ChunkView> decode_chunk(std::span<const std::byte> message) {
  if (message.size() <= kChunkHeaderBytes || message.size() > kChunkHeaderBytes + kChunkBytes) {
    return std::nullopt;
  }
  ChunkView chunk;
  for (std::size_t i = 0; i < 8; ++i) {
    chunk.index = (chunk.index << 8U) | std::to_integer<std::uint64_t>(message[i]);
  }
  std::copy_n(message.begin() + 8, chunk.digest.size(), chunk.digest.begin());
  chunk.data = message.subspan(kChunkHeaderBytes);
  return chunk;
}

std::vector<std::string> encode_listing(std::uint64_t id, const std::vector<Entry>& entries) {
  std::vector<std::string> parts;
  json batch = json::array();
  std::size_t batch_bytes = 0;
  const auto flush = [&](bool more) {
    parts.push_back(
        dump({{"op", "listing"}, {"id", id}, {"entries", std::move(batch)}, {"more", more}}));
    batch = json::array();
    batch_bytes = 0;
  };
  for (const Entry& entry : entries) {
    json object = entry_json(entry);
    const std::size_t bytes = dump(object).size() + 1;
    if (batch_bytes + bytes > kListingPartBytes && !batch.empty()) {
      flush(true);
    }
    batch_bytes += bytes;
    batch.push_back(std::move(object));
  }
  flush(false);
  return parts;
}

}  // namespace peernet::files
