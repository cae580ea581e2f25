#include "http/listing_cache.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "codec/codec.h"
#include "common/id_chars.h"

namespace peernet::http {

bool ListingCache::cacheable(const ListServersRequest& request) {
  constexpr std::size_t kLongest = 128;
  const auto is_id = [](std::string_view text) {
    return text.size() <= kLongest && std::all_of(text.begin(), text.end(), is_id_char);
  };
  return !request.room().empty() && is_id(request.room()) && is_id(request.protocol()) &&
         is_id(request.version()) && (request.version().empty() || !request.protocol().empty());
}

std::string ListingCache::key_of(const ListServersRequest& request) {
  // Only cacheable() requests come here: their parts hold no NUL, so they cannot run together.
  std::string key;
  key.reserve(request.room().size() + request.protocol().size() + request.version().size() + 2);
  key.append(request.room()).push_back('\0');
  key.append(request.protocol()).push_back('\0');
  key.append(request.version());
  return key;
}

ListingCache::Listing ListingCache::find(const ListServersRequest& request,
                                         std::uint64_t version) const {
  if (!cacheable(request)) {
    return {};
  }
  const std::string key = key_of(request);
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end() && it->second.version == version) {
    return it->second.listing;
  }
  return {};
}

ListingCache::Listing ListingCache::keep(const ListServersRequest& request, std::uint64_t version,
                                         ListServersResponse listing) {
  auto message = std::make_shared<const ListServersResponse>(std::move(listing));
  auto encoded = std::make_shared<const EncodedMessage>(
      EncodedMessage{codec::encode(*message, codec::Encoding::kJson),
                     codec::encode(*message, codec::Encoding::kProto)});
  Listing kept{std::move(message), std::move(encoded)};
  if (!cacheable(request)) {
    return kept;
  }
  std::string key = key_of(request);
  const std::size_t size = size_of(key, *kept.encoded);
  std::unordered_map<std::string, Entry> retired;  // freed after the lock is let go
  {
    std::lock_guard lock(mutex_);
    if (version < newest_) {
      return kept;  // made before a change another request has already seen
    }
    if (version > newest_ || bytes_ + size > max_bytes_ || entries_.size() >= kMaxEntries) {
      // Every entry is stale after a change; when full, start over rather than track use.
      retired.swap(entries_);
      bytes_ = 0;
      newest_ = version;
    }
    if (auto it = entries_.find(key); it != entries_.end()) {
      bytes_ -= size_of(it->first, *it->second.listing.encoded);
      entries_.erase(it);
    }
    if (size <= max_bytes_) {
      bytes_ += size;
      entries_.emplace(std::move(key), Entry{version, kept});
    }
  }
  return kept;
}

std::size_t ListingCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::size_t ListingCache::entries() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace peernet::http
