#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "integration/http_client.h"
#include "peernet.pb.h"

namespace peernet::testing {

/// The RPCs of PeerNetService.
enum class Rpc {
  kCreateRoom,
  kGetRoom,
  kDeleteRoom,
  kCreateServer,
  kGetServer,
  kDeleteServer,
  kListServers,
  kCreateService,
  kDeleteService,
  kUpdateService,
  kCreateKnock,
  kDeleteKnock,
  kGetKnock,
  kListKnocks,
  kUpdateKnock,
};

std::string_view rpc_name(Rpc rpc);

/// How requests are encoded and which encoding the reply is expected in.
struct Wire {
  std::string name;
  /// Sent as Content-Type (also on requests without a body); empty sends none.
  std::string content_type;
  /// Sent as Accept; empty sends none.
  std::string accept;
  /// The Content-Type the daemon must answer with.
  std::string reply_type;
};

/// Whether the daemon reads `content_type` as binary protobuf (anything else here is JSON).
bool is_binary(std::string_view content_type);

/// A reply: the HTTP response and, for a success, the decoded message.
template <typename Message>
struct Answer {
  Response http;
  Message message;
  /// The success reply parsed in the encoding its Content-Type named.
  bool decoded = false;
};

/// Calls PeerNetService methods over HTTP, REST style (the routes of docs/routes.md) or Connect
/// style (POST /peernet.PeerNetService/<Method>), in one Wire's encoding.
class PeerNetApi {
 public:
  enum class Style { kRest, kConnect };

  PeerNetApi(HttpClient& client, Style style, Wire wire)
      : client_(client), style_(style), wire_(std::move(wire)) {}

  /// Calls `rpc` with `request` (its id fields name the thing acted on) and `token`.
  template <typename Reply>
  Answer<Reply> call(Rpc rpc, const google::protobuf::Message& request,
                     std::string_view token = {}) {
    Answer<Reply> answer;
    answer.http = send(rpc, request, token);
    answer.decoded = decode_reply(answer.http, answer.message);
    return answer;
  }

  /// The status of a successful create: 201 in REST, 200 in Connect.
  int created_status() const { return style_ == Style::kRest ? 201 : 200; }
  const Wire& wire() const { return wire_; }
  Style style() const { return style_; }

 private:
  Response send(Rpc rpc, const google::protobuf::Message& request, std::string_view token);
  Response send_rest(Rpc rpc, const google::protobuf::Message& request, const Headers& headers);
  std::string encode(const google::protobuf::Message& message) const;
  bool decode_reply(const Response& response, google::protobuf::Message& message) const;

  HttpClient& client_;
  Style style_;
  Wire wire_;
};

/// Escapes a path segment or query value.
std::string url_escape(std::string_view text);

}  // namespace peernet::testing
