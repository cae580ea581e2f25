#pragma once

#include <string_view>

#include "http/api.h"
#include "peernet.pb.h"

// One function per RPC; each takes its decoded request, the caller's token and the context and
// returns the reply (or a long-poll). Grouped by resource in src/http/handlers/.
namespace peernet::http::handlers {

Outcome create_room(const CreateRoomRequest& request, Context& context);
Outcome get_room(const GetRoomRequest& request, Context& context);
Outcome delete_room(const DeleteRoomRequest& request, std::string_view token, Context& context);

Outcome create_server(const CreateServerRequest& request, std::string_view token, Context& context);
Outcome get_server(const GetServerRequest& request, std::string_view token, Context& context);
Outcome delete_server(const DeleteServerRequest& request, std::string_view token, Context& context);
Outcome list_servers(const ListServersRequest& request, Context& context);

Outcome create_service(const CreateServiceRequest& request, std::string_view token,
                       Context& context);
Outcome update_service(const UpdateServiceRequest& request, std::string_view token,
                       Context& context);
Outcome delete_service(const DeleteServiceRequest& request, std::string_view token,
                       Context& context);

Outcome create_knock(const CreateKnockRequest& request, Context& context);
Outcome get_knock(const GetKnockRequest& request, std::string_view token, Context& context);
Outcome list_knocks(const ListKnocksRequest& request, std::string_view token, Context& context);
Outcome update_knock(const UpdateKnockRequest& request, std::string_view token, Context& context);
Outcome delete_knock(const DeleteKnockRequest& request, std::string_view token, Context& context);

/// The reply for a successful call: the message, shared so a long-poll can hold it.
template <typename Message>
Reply ok(Message message, unsigned status = 200) {
  Reply r;
  r.status = status;
  r.message = std::make_shared<const Message>(std::move(message));
  return r;
}

/// The wait a request asked for, capped by the daemon's limit.
std::chrono::milliseconds wait_for(std::uint32_t wait_seconds, const Context& context);

}  // namespace peernet::http::handlers
