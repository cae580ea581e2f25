#include "http/api.h"

#include <charconv>
#include <cstdint>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>

#include "http/handlers.h"
#include "peernet.pb.h"

namespace peernet::http {
namespace {

namespace pb = google::protobuf;
using core::ApiError;

/// Finds a field by a dotted path ("next_poll.since"), creating the messages on the way.
std::pair<pb::Message*, const pb::FieldDescriptor*> resolve(pb::Message& root,
                                                            std::string_view path) {
  pb::Message* message = &root;
  while (true) {
    const auto dot = path.find('.');
    const auto* field = message->GetDescriptor()->FindFieldByName(std::string(path.substr(0, dot)));
    if (field == nullptr) {
      return {nullptr, nullptr};
    }
    if (dot == std::string_view::npos) {
      return {message, field};
    }
    message = message->GetReflection()->MutableMessage(message, field);
    path.remove_prefix(dot + 1);
  }
}

template <typename Int>
core::Status parse_number(std::string_view name, const std::string& text, Int& out) {
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (ec == std::errc::result_out_of_range) {
    return ApiError::invalid(fmt::format("{}: {} is out of range", name, text.substr(0, 32)));
  }
  if (ec != std::errc() || ptr != end || text.empty()) {
    return ApiError::malformed(
        fmt::format("{}: '{}' is not a whole number", name, text.substr(0, 32)));
  }
  return core::ok_status();
}

/// Sets the request fields that the path and query carry. Path values win over the body: a REST
/// path names the thing acted on.
core::Status apply_params(const Route& route, pb::Message& request) {
  for (const auto& [name, value] : route.params) {
    auto [message, field] = resolve(request, name);
    if (field == nullptr) {
      return ApiError{core::ErrorCode::kInternal,
                      fmt::format("route parameter '{}' has no field", name)};
    }
    const auto* reflection = message->GetReflection();
    switch (field->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING:
        if (reflection->HasField(*message, field) &&
            reflection->GetString(*message, field) != value) {
          return ApiError::invalid(fmt::format(
              "{}: '{}' in the body differs from '{}' in the path", name,
              reflection->GetString(*message, field).substr(0, 128), value.substr(0, 128)));
        }
        reflection->SetString(message, field, value);
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32: {
        std::uint32_t n = 0;
        if (auto s = parse_number(name, value, n); !s) {
          return s;
        }
        reflection->SetUInt32(message, field, n);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT64: {
        std::uint64_t n = 0;
        if (auto s = parse_number(name, value, n); !s) {
          return s;
        }
        reflection->SetUInt64(message, field, n);
        break;
      }
      default:
        return ApiError{core::ErrorCode::kInternal,
                        fmt::format("route parameter '{}' has an odd type", name)};
    }
  }
  return core::ok_status();
}

/// Decodes the body into the request (or into the field the REST route names), then applies
/// path and query values.
template <typename Request>
core::Result<Request> decode_request(const Call& call) {
  Request request;
  const auto& route = call.route;
  if (route.body_field.empty()) {
    if (!call.body.empty()) {
      return ApiError::malformed(fmt::format("body: {} takes no body", method_name(route.method)));
    }
  } else {
    pb::Message* target = &request;
    if (route.body_field != "*") {
      const auto* field = request.GetDescriptor()->FindFieldByName(std::string(route.body_field));
      target = request.GetReflection()->MutableMessage(&request, field);
    }
    if (auto s = codec::decode(call.body, call.body_encoding, *target); !s) {
      return std::move(s).error();
    }
  }
  if (auto s = apply_params(route, request); !s) {
    return std::move(s).error();
  }
  return request;
}

template <typename Request, typename Fn>
Outcome run(const Call& call, Fn&& fn) {
  auto request = decode_request<Request>(call);
  if (!request) {
    return Reply::failure(std::move(request).error());
  }
  return fn(*request);
}

}  // namespace

Outcome handle(const Call& call, Context& context) {
  namespace h = handlers;
  const auto token = call.token;
  switch (call.route.method) {
    case Method::kCreateRoom:
      return run<CreateRoomRequest>(call, [&](auto& r) { return h::create_room(r, context); });
    case Method::kGetRoom:
      return run<GetRoomRequest>(call, [&](auto& r) { return h::get_room(r, context); });
    case Method::kDeleteRoom:
      return run<DeleteRoomRequest>(call,
                                    [&](auto& r) { return h::delete_room(r, token, context); });
    case Method::kCreateServer:
      return run<CreateServerRequest>(call,
                                      [&](auto& r) { return h::create_server(r, token, context); });
    case Method::kGetServer:
      return run<GetServerRequest>(call, [&](auto& r) { return h::get_server(r, token, context); });
    case Method::kDeleteServer:
      return run<DeleteServerRequest>(call,
                                      [&](auto& r) { return h::delete_server(r, token, context); });
    case Method::kListServers:
      return run<ListServersRequest>(call, [&](auto& r) { return h::list_servers(r, context); });
    case Method::kCreateService:
      return run<CreateServiceRequest>(
          call, [&](auto& r) { return h::create_service(r, token, context); });
    case Method::kUpdateService:
      return run<UpdateServiceRequest>(
          call, [&](auto& r) { return h::update_service(r, token, context); });
    case Method::kDeleteService:
      return run<DeleteServiceRequest>(
          call, [&](auto& r) { return h::delete_service(r, token, context); });
    case Method::kCreateKnock:
      return run<CreateKnockRequest>(call, [&](auto& r) { return h::create_knock(r, context); });
    case Method::kGetKnock:
      return run<GetKnockRequest>(call, [&](auto& r) { return h::get_knock(r, token, context); });
    case Method::kListKnocks:
      return run<ListKnocksRequest>(call,
                                    [&](auto& r) { return h::list_knocks(r, token, context); });
    case Method::kUpdateKnock:
      return run<UpdateKnockRequest>(call,
                                     [&](auto& r) { return h::update_knock(r, token, context); });
    case Method::kDeleteKnock:
      return run<DeleteKnockRequest>(call,
                                     [&](auto& r) { return h::delete_knock(r, token, context); });
    case Method::kHealth:
    case Method::kMetrics:
      break;  // served by the session, which owns the counters
  }
  return Reply::failure(ApiError{core::ErrorCode::kInternal, "no handler for this route"});
}

}  // namespace peernet::http
