#pragma once

#include <cstddef>
#include <string>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "codec/codec.h"
#include "http/api.h"
#include "http/router.h"

namespace peernet::http {

struct ServerShared;

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

/// What a request decides about its response: HTTP version, encoding, style, and so on.
struct ReplyShape {
  unsigned version = 11;
  bool keep_alive = true;
  bool head = false;
  bool connect_style = false;
  /// Method as an index for the metrics; kMethodCount for an unmatched route.
  std::size_t method_index = kMethodCount;
  codec::MediaType reply_type;
  /// The Allow header of a 405.
  std::string allow;
};

/// One parsed request through routing, content negotiation, tokens and the API: the reply, or a
/// long-poll to wait on. Fills `shape` for render(). No sockets: the session and the fuzz target
/// of the request path both call it.
Outcome answer(const HttpRequest& request, ServerShared& shared, ReplyShape& shape);

/// The HTTP response for a reply; `keep_alive` is false when the connection closes after it.
HttpResponse render(Reply reply, const ReplyShape& shape, bool keep_alive);

/// The status line and header fields of `response` as they go on the wire, through the blank
/// line; the body follows them as it is. Beast's serializer does the same at several times the
/// cost, which showed in profiles of the busiest route.
std::string wire_header(const HttpResponse& response);

}  // namespace peernet::http
