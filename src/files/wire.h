#pragma once

// The file protocol ("peernet.file", version 1) on a data channel labelled "files".
//
// Control messages are JSON text, one object per message, each with an "op" and the "id" of the
// request it belongs to. File data travels as binary messages, one chunk each: the chunk's index
// (8 bytes, big-endian), the SHA-256 of its bytes (32), then the bytes. Every chunk of a file
// has kChunkBytes bytes but the last. docs/files.md has the exchanges; decode() treats every
// message as hostile.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <peernet/peernet.h>

#include "files/safe_dir.h"
#include "files/sha256.h"

namespace peernet::files {

inline constexpr std::string_view kProtocol = "peernet.file";
inline constexpr std::string_view kVersion = "1";
inline constexpr std::string_view kChannelLabel = "files";
inline constexpr std::size_t kChunkHeaderBytes = 8 + 32;
/// The largest chunk that fits a data-channel message with its header.
inline constexpr std::uint32_t kChunkBytes = Channel::kMaxMessageBytes - kChunkHeaderBytes;
/// At most this many ranges travel in one message; a receiver with more asks for a little more.
inline constexpr std::size_t kMaxRanges = 1000;

/// Half-open ranges [first, last) of chunk indices: sorted, disjoint, not adjacent, not empty.
using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

std::uint64_t chunk_count(std::uint64_t size, std::uint32_t chunk_bytes);
/// The chunks of [0, count) that `ranges` leaves out.
Ranges complement(const Ranges& ranges, std::uint64_t count);
/// How many chunks `ranges` covers.
std::uint64_t covered(const Ranges& ranges);
/// `have` cut to what one message may carry, with room for its complement (at most kMaxRanges
/// ranges either way): the receiver forgets the ranges past the cut and gets them again.
Ranges clip_have(Ranges have);
/// True when `index` is in `ranges` (binary search).
bool contains(const Ranges& ranges, std::uint64_t index);

/// "list": the entries at `path` (client -> server).
struct ListRequest {
  std::uint64_t id = 0;
  std::string path;
  bool recursive = false;
};

/// What a receiver already has of a file from an earlier, broken transfer.
struct Resume {
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::uint32_t chunk = kChunkBytes;
  Ranges have;
};

/// "get": send me the file at `path` (client -> server); with `resume`, only what is missing if
/// the file is still the one described.
struct GetRequest {
  std::uint64_t id = 0;
  std::string path;
  std::optional<Resume> resume;
};

/// "put": I will send you a file for `path` (client -> server).
struct PutRequest {
  std::uint64_t id = 0;
  std::string path;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  bool overwrite = false;
};

/// "end": every chunk that was to be sent is sent; the whole file's SHA-256 (sender -> receiver).
struct EndOfFile {
  std::uint64_t id = 0;
  Digest sha256{};
};

/// "listing": a part of the answer to a ListRequest; `more` until the last part.
struct Listing {
  std::uint64_t id = 0;
  std::vector<Entry> entries;
  bool more = false;
};

/// "file": the answer to a GetRequest; the chunks in `sending` follow, then an EndOfFile.
/// `restart` when the file is not the one a Resume described (the receiver starts over).
struct FileHeader {
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::uint32_t chunk = kChunkBytes;
  bool restart = false;
  Ranges sending;
};

/// "ready": the answer to a PutRequest; send the chunks not in `have`, then an EndOfFile.
struct Ready {
  std::uint64_t id = 0;
  std::uint32_t chunk = kChunkBytes;
  Ranges have;
};

/// "done": the uploaded file passed its checks and has its final name.
struct Done {
  std::uint64_t id = 0;
};

/// "working": the request is still being worked on (a long read or hash with nothing to send
/// yet); it only keeps the other side from taking the silence for a broken connection.
struct Working {
  std::uint64_t id = 0;
};

/// "error": the request failed. `code` is a FileErrc name or one of the protocol's own
/// ("bad-request", "busy", "read-only", "checksum", "changed").
struct Failure {
  std::uint64_t id = 0;
  std::string code;
  std::string message;
};

using Message = std::variant<ListRequest, GetRequest, PutRequest, EndOfFile, Listing, FileHeader,
                             Ready, Done, Working, Failure>;

/// A message from the peer that breaks the protocol; what() says how.
class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string encode(const Message& message);
/// Parses one text message. Throws WireError: not JSON, not an object, unknown "op", a missing or
/// mistyped field, a number out of range, ranges that are not sorted and disjoint.
Message decode(std::string_view text);

/// One chunk as it arrives: a view into the message.
struct ChunkView {
  std::uint64_t index = 0;
  Digest digest{};
  std::span<const std::byte> data;
};

/// Writes the header for chunk `index` with `digest` into the first kChunkHeaderBytes of `out`.
void encode_chunk_header(std::span<std::byte> out, std::uint64_t index, const Digest& digest);
/// The chunk in a binary message; nullopt when it is too short or too long to be one.
std::optional<ChunkView> decode_chunk(std::span<const std::byte> message);

/// Listings longer than one message are cut into parts of about this many bytes of JSON.
inline constexpr std::size_t kListingPartBytes = std::size_t{48} * 1024;
/// The ListRequest's answer as messages that each fit a data channel.
std::vector<std::string> encode_listing(std::uint64_t id, const std::vector<Entry>& entries);

}  // namespace peernet::files
