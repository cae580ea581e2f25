#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/logging.h>

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

/// What both codec targets do before their first input: check the table, and keep protobuf's
/// own log quiet (its parse warnings are expected here by the million).
inline void init_codec_target() {
  check_message_table();
  google::protobuf::SetLogHandler(nullptr);
}

/// Stops the run on a broken invariant, naming it and the message concerned.
[[noreturn]] inline void fail(const char* what, const google::protobuf::Message& message,
                              std::string_view detail = {}) {
  std::fprintf(stderr, "invariant violated: %s\nmessage %s: %s\ndetail: %.*s\n", what,
               message.GetDescriptor()->full_name().c_str(), message.ShortDebugString().c_str(),
               static_cast<int>(detail.size()), detail.data());
  __builtin_trap();
}

inline void expect(bool ok, const char* what, const google::protobuf::Message& message,
                   std::string_view detail = {}) {
  if (!ok) {
    fail(what, message, detail);
  }
}

}  // namespace peernet::fuzz
