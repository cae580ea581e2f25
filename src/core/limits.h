#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace peernet::core {

/// The registry's limits and lifetimes. Every one is a named option of peernetd.conf with this
/// default; docs/configuration.md (generated from the same table as --help) describes them.
struct RegistryLimits {
  /// The room a server joins when it names none; empty disables it.
  std::string default_room = "default";

  std::chrono::seconds server_ttl_default{30};
  std::chrono::seconds server_ttl_min{5};
  std::chrono::seconds server_ttl_max{300};
  /// How long a knock may stay unanswered.
  std::chrono::seconds knock_ttl{60};
  /// How long a finished knock stays after its outcome reached the knocker (and after each
  /// trickled candidate), so late ICE candidates can still be exchanged.
  std::chrono::seconds knock_linger{10};

  std::size_t max_rooms = 10'000;
  std::size_t max_servers = 100'000;
  std::size_t max_servers_per_room = 1'000;
  std::size_t max_services_per_server = 32;
  std::size_t max_pending_knocks_per_server = 64;
  std::size_t max_candidates_per_side = 64;
  /// One ICE candidate line, in bytes.
  std::size_t max_candidate_bytes = 1024;
  std::size_t max_sdp_bytes = 65'536;
  std::size_t max_text_bytes = 256;
  std::size_t max_id_length = 128;
  /// Extension fields of one service, encoded, in bytes.
  std::size_t max_service_bytes = 4096;
};

}  // namespace peernet::core
