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
  auto listed = context.registry.list_servers(request);
  if (!listed) {
    return Reply::failure(std::move(listed).error());
  }
  return ok(std::move(listed).value());
}

}  // namespace peernet::http::handlers
