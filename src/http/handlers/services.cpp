#include "http/handlers.h"

namespace peernet::http::handlers {

Outcome create_service(const CreateServiceRequest& request, std::string_view token,
                       Context& context) {
  auto service = context.registry.create_service(request.server(), token, request.service());
  if (!service) {
    return Reply::failure(std::move(service).error());
  }
  CreateServiceResponse response;
  *response.mutable_service() = std::move(service).value();
  return ok(std::move(response), 201);
}

Outcome update_service(const UpdateServiceRequest& request, std::string_view token,
                       Context& context) {
  auto service = context.registry.put_service(request.server(), token, request.service());
  if (!service) {
    return Reply::failure(std::move(service).error());
  }
  UpdateServiceResponse response;
  *response.mutable_service() = std::move(service).value();
  return ok(std::move(response));
}

Outcome delete_service(const DeleteServiceRequest& request, std::string_view token,
                       Context& context) {
  if (auto s = context.registry.delete_service(request.server(), token, request.protocol()); !s) {
    return Reply::failure(std::move(s).error());
  }
  return ok(DeleteServiceResponse{});
}

}  // namespace peernet::http::handlers
