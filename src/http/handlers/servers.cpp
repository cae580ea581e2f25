#include "http/handlers.h"

namespace peernet::http::handlers {

Outcome create_server(const CreateServerRequest& request, std::string_view token,
                      Context& context) {
  auto registered = context.registry.register_server(request.server(), token);
  if (!registered) {
    return Reply::failure(std::move(registered).error());
  }
  const unsigned status = registered->created ? 201 : 200;
  return ok(std::move(registered->response), status);
}

Outcome get_server(const GetServerRequest& request, std::string_view token, Context& context) {
  auto server = context.registry.get_server(request.server(), token);
  if (!server) {
    return Reply::failure(std::move(server).error());
  }
  GetServerResponse response;
  *response.mutable_server() = std::move(server).value();
  return ok(std::move(response));
}

Outcome delete_server(const DeleteServerRequest& request, std::string_view token,
                      Context& context) {
  if (auto s = context.registry.delete_server(request.server(), token); !s) {
    return Reply::failure(std::move(s).error());
  }
  return ok(DeleteServerResponse{});
}

Outcome list_servers(const ListServersRequest& request, Context& context) {
  // The version is read first: a change racing this request leaves an entry that is already
  // stale, never one that passes for newer than it is.
  const std::uint64_t version = context.registry.listings_version();
  auto listing = context.listings.find(request, version);
  if (!listing.message) {
    auto listed = context.registry.list_servers(request);
    if (!listed) {
      return Reply::failure(std::move(listed).error());
    }
    listing = context.listings.keep(request, version, std::move(listed).value());
  }
  Reply reply;
  reply.message = std::move(listing.message);
  reply.encoded = std::move(listing.encoded);
  return reply;
}

}  // namespace peernet::http::handlers
