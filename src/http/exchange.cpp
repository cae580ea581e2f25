#include "http/exchange.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include <fmt/format.h>

#include "http/error_reply.h"
#include "http/server.h"

namespace peernet::http {
namespace {

namespace bhttp = boost::beast::http;
using core::ApiError;

/// The bearer token of an Authorization header, empty when there is none.
std::string_view bearer_token(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) {
    return {};
  }
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) {
      return {};
    }
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && header.front() == ' ') {
    header.remove_prefix(1);
  }
  while (!header.empty() && header.back() == ' ') {
    header.remove_suffix(1);
  }
  return header;
}

bool is_curl_form(std::string_view content_type) {
  auto type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) {
    type.remove_suffix(1);
  }
  return type == "application/x-www-form-urlencoded";
}

/// Beast decodes chunked bodies and nothing else; any other transfer coding is refused rather
/// than read as if it were plain.
bool only_chunked(std::string_view transfer_encoding) {
  while (!transfer_encoding.empty() && transfer_encoding.front() == ' ') {
    transfer_encoding.remove_prefix(1);
  }
  while (!transfer_encoding.empty() && transfer_encoding.back() == ' ') {
    transfer_encoding.remove_suffix(1);
  }
  return transfer_encoding.size() == 7 &&
         std::equal(
             transfer_encoding.begin(), transfer_encoding.end(), "chunked",
             [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

Reply plain_route(Method method, ServerShared& shared) {
  Reply reply;
  if (method == Method::kHealth) {
    const bool stopping = shared.stopping.load();
    reply.text = stopping ? "stopping\n" : "ok\n";
    reply.status = stopping ? 503 : 200;
  } else {
    reply.text = shared.metrics.render(shared.context.registry.stats());
    reply.text_type = "text/plain; version=0.0.4; charset=utf-8";
  }
  return reply;
}

}  // namespace

Outcome answer(const HttpRequest& request, ServerShared& shared, ReplyShape& shape) {
  shape = ReplyShape{};
  shape.version = request.version();
  shape.keep_alive = request.keep_alive();
  shape.head = request.method() == bhttp::verb::head;

  if (request.target().size() > shared.limits.max_target_bytes) {
    return Reply::failure({core::ErrorCode::kUriTooLong,
                           fmt::format("request target: {} bytes is over the limit of {} "
                                       "(max_target_bytes)",
                                       request.target().size(), shared.limits.max_target_bytes)});
  }
  if (request.version() >= 11 && request.find(bhttp::field::host) == request.end()) {
    return Reply::failure(ApiError::malformed("Host: required in HTTP/1.1 requests"));
  }
  if (auto te = request.find(bhttp::field::transfer_encoding);
      te != request.end() && !only_chunked(te->value())) {
    return Reply::failure({core::ErrorCode::kNotImplemented,
                           fmt::format("Transfer-Encoding '{}' is not supported: send the body "
                                       "plain or chunked",
                                       std::string_view(te->value()).substr(0, 64))});
  }
  auto route = http::route(request.method_string(), request.target());
  if (!route) {
    if (route.error().code == core::ErrorCode::kMethodNotAllowed) {
      shape.allow = allowed_verbs(request.target());
    }
    return Reply::failure(std::move(route).error());
  }
  shape.method_index = static_cast<std::size_t>(route->method);
  shape.connect_style = route->style == Style::kConnect;
  if (route->method == Method::kHealth || route->method == Method::kMetrics) {
    return plain_route(route->method, shared);
  }

  const auto content_type = request[bhttp::field::content_type];
  auto body_type = codec::media_type_of(content_type);
  if (!body_type && !shape.connect_style && is_curl_form(content_type)) {
    body_type = codec::MediaType{};  // `curl -d '{...}'` labels JSON as a form; read it as JSON
  }
  if (!body_type && (!request.body().empty() || shape.connect_style)) {
    return Reply::failure({core::ErrorCode::kUnsupportedMediaType,
                           fmt::format("Content-Type '{}' is not supported: send application/json "
                                       "or application/x-protobuf (or application/proto)",
                                       content_type.substr(0, 128))});
  }
  const auto request_type = body_type.value_or(codec::MediaType{});
  shape.reply_type = shape.connect_style
                         ? request_type
                         : codec::negotiate(request[bhttp::field::accept], request_type);

  Call call;
  call.route = std::move(route).value();
  call.body = request.body();
  call.body_encoding = request_type.encoding;
  call.token = bearer_token(request[bhttp::field::authorization]);
  return handle(call, shared.context);
}

HttpResponse render(Reply reply, const ReplyShape& shape, bool keep_alive) {
  HttpResponse response;
  response.version(shape.version);
  response.set(bhttp::field::server, "peernetd");
  response.set(bhttp::field::cache_control, "no-store");
  if (reply.error) {
    response.result(http_status(reply.error->code));
    response.set(bhttp::field::content_type, "application/json");
    if (reply.error->retry_after.count() > 0) {
      response.set(bhttp::field::retry_after, std::to_string(reply.error->retry_after.count()));
    }
    if (!shape.allow.empty()) {
      response.set(bhttp::field::allow, shape.allow);
    }
    response.body() = error_body(*reply.error);
  } else if (reply.message) {
    response.result(shape.connect_style ? 200 : reply.status);
    response.set(bhttp::field::content_type, shape.reply_type.name);
    if (reply.encoded) {
      response.body() = shape.reply_type.encoding == codec::Encoding::kJson ? reply.encoded->json
                                                                            : reply.encoded->binary;
    } else {
      response.body() = codec::encode(*reply.message, shape.reply_type.encoding);
    }
  } else {
    response.result(reply.status);
    response.set(bhttp::field::content_type, reply.text_type);
    response.body() = std::move(reply.text);
  }
  response.keep_alive(keep_alive);
  response.prepare_payload();
  if (shape.head) {
    response.body().clear();  // Content-Length still tells the size a GET would get
  }
  return response;
}

std::string wire_header(const HttpResponse& response) {
  std::string out;
  out.reserve(160);
  fmt::format_to(std::back_inserter(out), "HTTP/{}.{} {} {}\r\n", response.version() / 10,
                 response.version() % 10, response.result_int(), response.reason());
  for (const auto& field : response) {
    out.append(field.name_string()).append(": ").append(field.value()).append("\r\n");
  }
  out.append("\r\n");
  return out;
}

}  // namespace peernet::http
