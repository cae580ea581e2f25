#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <google/protobuf/message.h>

#include "codec/codec.h"
#include "core/api_error.h"
#include "core/registry.h"
#include "http/listing_cache.h"
#include "http/router.h"

namespace peernet::http {

/// A request as the API layer sees it: no sockets, no Beast types.
struct Call {
  Route route;
  std::string_view body;
  codec::Encoding body_encoding = codec::Encoding::kJson;
  /// The bearer token presented, empty when none was.
  std::string_view token;
};

/// A finished answer: a message, an error, or plain text (healthz, metrics).
struct Reply {
  unsigned status = 200;
  std::shared_ptr<const google::protobuf::Message> message;
  /// `message` encoded, when it was done once for many replies; else render() encodes it.
  std::shared_ptr<const EncodedMessage> encoded;
  std::optional<core::ApiError> error;
  std::string text;
  std::string_view text_type = "text/plain; charset=utf-8";

  static Reply failure(core::ApiError error) {
    Reply r;
    r.error = std::move(error);
    return r;
  }
};

struct Wait;
using Outcome = std::variant<Reply, Wait>;

/// A long-poll in progress. The session subscribes with a waker, and when the waker fires (or
/// the wait runs out) calls `resume`, which answers or asks to wait again (a wake-up that
/// brought nothing for this caller).
struct Wait {
  std::chrono::milliseconds duration{0};
  std::function<core::Result<core::Watch>(core::Waker)> subscribe;
  std::function<Outcome(bool timed_out)> resume;
};

/// What handlers need besides the request.
struct Context {
  core::Registry& registry;
  /// The longest a long-poll may wait; longer requests are cut to it.
  std::chrono::seconds max_wait{30};
  /// Room listings kept encoded while the rooms stay the same.
  ListingCache listings;
};

/// Decodes the call into its request message, runs the method, and returns the answer or a
/// long-poll to wait on. Never throws.
Outcome handle(const Call& call, Context& context);

}  // namespace peernet::http
