#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "peernet.pb.h"

// Shared by the JSON and the binary protobuf targets.
namespace peernet::fuzz {

/// The messages the decoding targets read: the 15 requests of PeerNetService, then the three
/// resources that travel inside them. The first byte of an input picks one (modulo the count),
/// so a seed file names its type by its first byte: the index below.
inline constexpr std::size_t kMessageCount = 18;

inline std::unique_ptr<google::protobuf::Message> new_message(std::uint8_t selector) {
  switch (selector % kMessageCount) {
    case 0:
      return std::make_unique<CreateRoomRequest>();
    case 1:
      return std::make_unique<GetRoomRequest>();
    case 2:
      return std::make_unique<DeleteRoomRequest>();
    case 3:
      return std::make_unique<CreateServerRequest>();
    case 4:
      return std::make_unique<GetServerRequest>();
    case 5:
      return std::make_unique<DeleteServerRequest>();
    case 6:
      return std::make_unique<ListServersRequest>();
    case 7:
      return std::make_unique<CreateServiceRequest>();
    case 8:
      return std::make_unique<DeleteServiceRequest>();
    case 9:
      return std::make_unique<UpdateServiceRequest>();
    case 10:
      return std::make_unique<CreateKnockRequest>();
    case 11:
      return std::make_unique<DeleteKnockRequest>();
    case 12:
      return std::make_unique<GetKnockRequest>();
    case 13:
      return std::make_unique<ListKnocksRequest>();
    case 14:
      return std::make_unique<UpdateKnockRequest>();
    case 15:
      return std::make_unique<Server>();
    case 16:
      return std::make_unique<Service>();
    default:
      return std::make_unique<Knock>();
  }
}

/// Stops the run when the schema gained a request message the table above does not know, so a
/// new RPC cannot go unfuzzed unnoticed.
inline void check_message_table() {
  const auto* file = CreateRoomRequest::descriptor()->file();
  for (int i = 0; i < file->message_type_count(); ++i) {
    const std::string& name = file->message_type(i)->name();
    if (name.size() < 7 || name.compare(name.size() - 7, 7, "Request") != 0) {
      continue;
    }
    bool listed = false;
    for (std::size_t s = 0; s < kMessageCount && !listed; ++s) {
      listed = new_message(static_cast<std::uint8_t>(s))->GetDescriptor()->name() == name;
    }
    if (!listed) {
      std::fprintf(stderr, "tests/fuzz/messages.h does not list %s\n", name.c_str());
      __builtin_trap();
    }
  }
}

}  // namespace peernet::fuzz
