#include "http/handlers.h"

namespace peernet::http::handlers {

Outcome create_room(const CreateRoomRequest& request, Context& context) {
  auto created = context.registry.create_room(request.room());
  if (!created) {
    return Reply::failure(std::move(created).error());
  }
  return ok(std::move(created).value(), 201);
}

Outcome get_room(const GetRoomRequest& request, Context& context) {
  auto room = context.registry.get_room(request.room());
  if (!room) {
    return Reply::failure(std::move(room).error());
  }
  GetRoomResponse response;
  *response.mutable_room() = std::move(room).value();
  return ok(std::move(response));
}

Outcome delete_room(const DeleteRoomRequest& request, std::string_view token, Context& context) {
  if (auto s = context.registry.delete_room(request.room(), token); !s) {
    return Reply::failure(std::move(s).error());
  }
  return ok(DeleteRoomResponse{});
}

}  // namespace peernet::http::handlers
