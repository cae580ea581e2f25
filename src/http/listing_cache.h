#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "peernet.pb.h"

namespace peernet::http {

/// A message already encoded both ways, for a reply sent many times over.
struct EncodedMessage {
  std::string json;
  std::string binary;
};

/// Room listings already encoded, so that the request people and programs make most often
/// (`GET /rooms/{room}/servers`) is answered without building or encoding anything while the
/// rooms stay as they are. An entry is good for the registry's listings_version() it was made
/// under; any change to any room retires every entry at once (a busy daemon's listings are
/// rebuilt after each registration, which is as before). Only requests whose room and filters
/// are well-formed ids are kept. Bounded in entries and bytes: when full, it starts over. Safe
/// to use from any thread.
class ListingCache {
 public:
  struct Listing {
    std::shared_ptr<const ListServersResponse> message;
    std::shared_ptr<const EncodedMessage> encoded;
  };

  ListingCache() = default;
  explicit ListingCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  /// Whether a listing for `request` may be kept: room, protocol and version are ids (the
  /// registry refuses anything else, and no filter can then make two keys collide).
  static bool cacheable(const ListServersRequest& request);

  /// The listing for `request` when one made under `version` is kept; else an empty Listing.
  Listing find(const ListServersRequest& request, std::uint64_t version) const;

  /// Encodes `listing` both ways and keeps it for `request` under `version`, unless a newer
  /// version has been seen (or `request` is not cacheable()).
  Listing keep(const ListServersRequest& request, std::uint64_t version,
               ListServersResponse listing);

  /// Bytes held: keys, both encodings and a fixed allowance per entry for the rest.
  std::size_t bytes() const;
  std::size_t entries() const;

  /// What an entry costs beyond its key and encodings: its node, its control blocks and the
  /// decoded message's shell.
  static constexpr std::size_t kEntryOverhead = 512;
  static constexpr std::size_t kMaxEntries = 4096;

 private:
  struct Entry {
    std::uint64_t version = 0;
    Listing listing;
  };
  static std::string key_of(const ListServersRequest& request);
  static std::size_t size_of(const std::string& key, const EncodedMessage& encoded) {
    return kEntryOverhead + key.size() + encoded.json.size() + encoded.binary.size();
  }

  const std::size_t max_bytes_ = std::size_t{16} << 20U;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::size_t bytes_ = 0;
  std::uint64_t newest_ = 0;  // the newest version kept; older entries are stale
};

}  // namespace peernet::http
