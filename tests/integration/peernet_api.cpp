#include "integration/peernet_api.h"

#include <array>
#include <cctype>
#include <utility>

#include "codec/codec.h"

namespace peernet::testing {
namespace {

namespace pb = google::protobuf;

constexpr std::array<std::string_view, 15> kRpcNames = {
    "CreateRoom",   "GetRoom",     "DeleteRoom",    "CreateServer",  "GetServer",
    "DeleteServer", "ListServers", "CreateService", "DeleteService", "UpdateService",
    "CreateKnock",  "DeleteKnock", "GetKnock",      "ListKnocks",    "UpdateKnock",
};

/// "?a=1&b=2" from the pairs whose value is not empty.
std::string query(std::initializer_list<std::pair<std::string_view, std::string>> params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (value.empty()) {
      continue;
    }
    out += out.empty() ? '?' : '&';
    out += name;
    out += '=';
    out += url_escape(value);
  }
  return out;
}

std::string number(bool present, std::uint64_t value) {
  return present ? std::to_string(value) : std::string();
}

}  // namespace

std::string_view rpc_name(Rpc rpc) { return kRpcNames.at(static_cast<std::size_t>(rpc)); }

bool is_binary(std::string_view content_type) {
  return content_type.find("proto") != std::string_view::npos;
}

std::string url_escape(std::string_view text) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4U]);
      out.push_back(kHex[u & 15U]);
    }
  }
  return out;
}

std::string PeerNetApi::encode(const pb::Message& message) const {
  return codec::encode(
      message, is_binary(wire_.content_type) ? codec::Encoding::kProto : codec::Encoding::kJson);
}

bool PeerNetApi::decode_reply(const Response& response, pb::Message& message) const {
  if (response.status < 200 || response.status >= 300) {
    return false;
  }
  const auto type = response.header("Content-Type");
  const auto encoding = is_binary(type) ? codec::Encoding::kProto : codec::Encoding::kJson;
  return codec::decode(response.body, encoding, message).ok();
}

Response PeerNetApi::send(Rpc rpc, const pb::Message& request, std::string_view token) {
  Headers headers;
  if (!wire_.content_type.empty()) {
    headers.emplace_back("Content-Type", wire_.content_type);
  }
  if (!wire_.accept.empty()) {
    headers.emplace_back("Accept", wire_.accept);
  }
  if (!token.empty()) {
    headers.push_back(bearer(token));
  }
  if (style_ == Style::kConnect) {
    return client_.request("POST", "/peernet.PeerNetService/" + std::string(rpc_name(rpc)),
                           encode(request), headers);
  }
  return send_rest(rpc, request, headers);
}

Response PeerNetApi::send_rest(Rpc rpc, const pb::Message& request, const Headers& headers) {
  auto& c = client_;
  switch (rpc) {
    case Rpc::kCreateRoom:
      return c.request("POST", "/rooms",
                       encode(static_cast<const CreateRoomRequest&>(request).room()), headers);
    case Rpc::kGetRoom:
      return c.request("GET",
                       "/rooms/" + url_escape(static_cast<const GetRoomRequest&>(request).room()),
                       {}, headers);
    case Rpc::kDeleteRoom:
      return c.request(
          "DELETE", "/rooms/" + url_escape(static_cast<const DeleteRoomRequest&>(request).room()),
          {}, headers);
    case Rpc::kCreateServer:
      return c.request("POST", "/servers",
                       encode(static_cast<const CreateServerRequest&>(request).server()), headers);
    case Rpc::kGetServer:
      return c.request(
          "GET", "/servers/" + url_escape(static_cast<const GetServerRequest&>(request).server()),
          {}, headers);
    case Rpc::kDeleteServer:
      return c.request(
          "DELETE",
          "/servers/" + url_escape(static_cast<const DeleteServerRequest&>(request).server()), {},
          headers);
    case Rpc::kListServers: {
      const auto& r = static_cast<const ListServersRequest&>(request);
      return c.request("GET",
                       "/rooms/" + url_escape(r.room()) + "/servers" +
                           query({{"protocol", r.protocol()}, {"version", r.version()}}),
                       {}, headers);
    }
    case Rpc::kCreateService: {
      const auto& r = static_cast<const CreateServiceRequest&>(request);
      return c.request("POST", "/servers/" + url_escape(r.server()) + "/services",
                       encode(r.service()), headers);
    }
    case Rpc::kUpdateService: {
      const auto& r = static_cast<const UpdateServiceRequest&>(request);
      return c.request(
          "PUT",
          "/servers/" + url_escape(r.server()) + "/services/" + url_escape(r.service().protocol()),
          encode(r.service()), headers);
    }
    case Rpc::kDeleteService: {
      const auto& r = static_cast<const DeleteServiceRequest&>(request);
      return c.request(
          "DELETE", "/servers/" + url_escape(r.server()) + "/services/" + url_escape(r.protocol()),
          {}, headers);
    }
    case Rpc::kCreateKnock: {
      const auto& r = static_cast<const CreateKnockRequest&>(request);
      return c.request("POST",
                       "/servers/" + url_escape(r.server()) + "/knocks" +
                           query({{"wait", number(r.has_wait_seconds(), r.wait_seconds())}}),
                       encode(r.knock()), headers);
    }
    case Rpc::kListKnocks: {
      const auto& r = static_cast<const ListKnocksRequest&>(request);
      return c.request("GET",
                       "/servers/" + url_escape(r.server()) + "/knocks" +
                           query({{"wait", number(r.has_wait_seconds(), r.wait_seconds())},
                                  {"since", number(r.has_since(), r.since())}}),
                       {}, headers);
    }
    case Rpc::kGetKnock: {
      const auto& r = static_cast<const GetKnockRequest&>(request);
      return c.request("GET",
                       "/knocks/" + url_escape(r.knock()) +
                           query({{"wait", number(r.has_wait_seconds(), r.wait_seconds())},
                                  {"since", number(r.has_since(), r.since())}}),
                       {}, headers);
    }
    case Rpc::kUpdateKnock: {
      // The path names the knock and the query carries next_poll; the body holds the rest.
      auto body = static_cast<const UpdateKnockRequest&>(request);
      const auto next = body.next_poll();
      const bool polls = body.has_next_poll();
      body.clear_knock();
      body.clear_next_poll();
      return c.request(
          "PATCH",
          "/knocks/" + url_escape(static_cast<const UpdateKnockRequest&>(request).knock()) +
              query({{"wait", number(polls && next.has_wait_seconds(), next.wait_seconds())},
                     {"since", number(polls, next.since())}}),
          encode(body), headers);
    }
    case Rpc::kDeleteKnock:
      return c.request(
          "DELETE",
          "/knocks/" + url_escape(static_cast<const DeleteKnockRequest&>(request).knock()), {},
          headers);
  }
  return {};
}

}  // namespace peernet::testing
