#include "http/listing_cache.h"

#include "codec/codec.h"

namespace peernet::http {

std::string ListingCache::key_of(const ListServersRequest& request) {
  // Ids have no NUL (the registry refuses them), so the parts cannot run into each other.
  std::string key;
  key.reserve(request.room().size() + request.protocol().size() + request.version().size() + 2);
  key.append(request.room()).push_back('\0');
  key.append(request.protocol()).push_back('\0');
  key.append(request.version());
  return key;
}

ListingCache::Listing ListingCache::find(const ListServersRequest& request,
                                         std::uint64_t version) const {
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
  std::string key = key_of(request);
  const std::size_t size = size_of(key, *kept.encoded);
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= size_of(it->first, *it->second.listing.encoded);
    entries_.erase(it);
  }
  if (bytes_ + size > max_bytes_) {
    // Many rooms or filters: start over rather than track which entry is least used.
    entries_.clear();
    bytes_ = 0;
  }
  if (size <= max_bytes_) {
    bytes_ += size;
    entries_.emplace(std::move(key), Entry{version, kept});
  }
  return kept;
}

std::size_t ListingCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace peernet::http
