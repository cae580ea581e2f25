#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "http/handlers.h"

namespace peernet::http::handlers {
namespace {

using core::ApiError;

/// ListKnocks now, as a reply built by `finish`.
template <typename Finish>
Reply list_now(Context& context, const std::string& server, const std::string& token,
               std::uint64_t since, const Finish& finish) {
  auto listed = context.registry.list_knocks(server, token, since);
  if (!listed) {
    return Reply::failure(std::move(listed).error());
  }
  return finish(std::move(listed).value());
}

/// The serving side's long-poll: answers at once when knocks are waiting (or no wait was asked
/// for), else when one arrives or the wait runs out.
template <typename Finish>
Outcome poll_knocks(Context& context, std::string server, std::string token, std::uint64_t since,
                    std::uint32_t wait_seconds, Finish finish) {
  const auto wait = wait_for(wait_seconds, context);
  if (wait.count() == 0) {
    return list_now(context, server, token, since, finish);
  }
  Wait w;
  w.duration = wait;
  w.subscribe = [&context, server, token, since](core::Waker waker) {
    return context.registry.watch_knocks(server, token, since, std::move(waker));
  };
  w.resume = [&context, server = std::move(server), token = std::move(token), since,
              finish = std::move(finish)](bool) -> Outcome {
    return list_now(context, server, token, since, finish);
  };
  return w;
}

}  // namespace

std::chrono::milliseconds wait_for(std::uint32_t wait_seconds, const Context& context) {
  return std::min<std::chrono::milliseconds>(std::chrono::seconds{wait_seconds}, context.max_wait);
}

Outcome create_knock(const CreateKnockRequest& request, Context& context) {
  auto created = context.registry.create_knock(request.server(), request.knock());
  if (!created) {
    return Reply::failure(std::move(created).error());
  }
  const auto wait = wait_for(request.wait_seconds(), context);
  if (wait.count() == 0) {
    return ok(std::move(created).value(), 201);
  }
  // One round trip for the knocker: the same request waits for the serving side's answer.
  Wait w;
  w.duration = wait;
  w.subscribe = [&context, id = created->knock().unique_id(), token = created->token(),
                 since = created->knock().revision()](core::Waker waker) {
    return context.registry.watch_knock(id, token, since, std::move(waker));
  };
  w.resume = [&context, response = std::move(created).value()](bool) mutable -> Outcome {
    auto knock = context.registry.get_knock(response.knock().unique_id(), response.token(), 0);
    if (knock.ok()) {
      *response.mutable_knock() = std::move(knock).value();
    } else if (knock.error().code != core::ErrorCode::kNotFound) {
      return Reply::failure(std::move(knock).error());
    }
    // A knock deleted while waiting is answered as created: the knocker still learns its token
    // and id, and its next read says it is gone.
    return ok(std::move(response), 201);
  };
  return w;
}

Outcome get_knock(const GetKnockRequest& request, std::string_view token, Context& context) {
  auto read = [&context, id = request.knock(), token = std::string(token),
               since = request.since()](bool) -> Outcome {
    auto knock = context.registry.get_knock(id, token, since);
    if (!knock) {
      return Reply::failure(std::move(knock).error());
    }
    return ok(std::move(knock).value());
  };
  const auto wait = wait_for(request.wait_seconds(), context);
  if (wait.count() == 0) {
    return read(false);
  }
  Wait w;
  w.duration = wait;
  w.subscribe = [&context, id = request.knock(), token = std::string(token),
                 since = request.since()](core::Waker waker) {
    return context.registry.watch_knock(id, token, since, std::move(waker));
  };
  w.resume = std::move(read);
  return w;
}

Outcome list_knocks(const ListKnocksRequest& request, std::string_view token, Context& context) {
  return poll_knocks(context, request.server(), std::string(token), request.since(),
                     request.wait_seconds(),
                     [](ListKnocksResponse listed) { return ok(std::move(listed)); });
}

Outcome update_knock(const UpdateKnockRequest& request, std::string_view token, Context& context) {
  auto updated = context.registry.update_knock(request.knock(), token, request);
  if (!updated) {
    return Reply::failure(std::move(updated).error());
  }
  UpdateKnockResponse response;
  *response.mutable_knock() = std::move(updated->knock);
  if (!request.has_next_poll()) {
    return ok(std::move(response));
  }
  const auto& next = request.next_poll();
  if (!next.server().empty() && next.server() != updated->server) {
    return Reply::failure(
        ApiError::invalid(fmt::format("next_poll.server: '{}' is not the knock's server '{}'",
                                      next.server().substr(0, 128), updated->server)));
  }
  // Answering and polling for the next knock in one request: a busy server pays no extra trip.
  return poll_knocks(context, updated->server, std::string(token), next.since(),
                     next.wait_seconds(),
                     [response = std::move(response)](ListKnocksResponse listed) {
                       auto combined = response;
                       *combined.mutable_next_poll() = std::move(listed);
                       return ok(std::move(combined));
                     });
}

Outcome delete_knock(const DeleteKnockRequest& request, std::string_view token, Context& context) {
  if (auto s = context.registry.delete_knock(request.knock(), token); !s) {
    return Reply::failure(std::move(s).error());
  }
  return ok(DeleteKnockResponse{});
}

}  // namespace peernet::http::handlers
