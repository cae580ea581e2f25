#include "integration/http_client.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "codec/codec.h"

namespace peernet::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// Runs one asynchronous operation on `io` to completion; the stream's deadline bounds it.
template <typename Start>
beast::error_code run_op(asio::io_context& io, Start&& start) {
  beast::error_code result = asio::error::would_block;
  start([&result](beast::error_code ec, std::size_t /*bytes*/ = 0) { result = ec; });
  io.restart();
  io.run();
  return result;
}

void connect_stream(asio::io_context& io, beast::tcp_stream& stream, std::uint16_t port,
                    std::chrono::milliseconds timeout) {
  stream.expires_after(timeout);
  const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
  auto ec = run_op(io, [&](auto handler) {
    stream.async_connect(endpoint, [handler](beast::error_code e) mutable { handler(e); });
  });
  if (ec) {
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + ": " + ec.message());
  }
}

}  // namespace

// ---- Response ---------------------------------------------------------------------------------

std::string Response::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return {};
}

bool Response::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return iequals(h.first, name); });
}

nlohmann::json Response::json() const {
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return "<not JSON: " + body.substr(0, 200) + ">";
  }
  return parsed;
}

bool Response::decode_proto(google::protobuf::Message& message) const {
  return codec::decode(body, codec::Encoding::kProto, message).ok();
}

// ---- HttpClient -------------------------------------------------------------------------------

struct HttpClient::Impl {
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  asio::io_context io;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::size_t sent = 0;

  void ensure_connected() {
    if (stream) {
      return;
    }
    stream = std::make_unique<beast::tcp_stream>(io);
    buffer.clear();
    connect_stream(io, *stream, port, timeout);
  }

  void drop() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream->close();
      stream.reset();
    }
  }
};

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() {
  if (impl_) {
    impl_->drop();
  }
}

HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Response HttpClient::request(std::string_view verb, std::string_view target, std::string_view body,
                             const Headers& headers) {
  auto& d = *impl_;
  d.ensure_connected();
  ++d.sent;

  bhttp::request<bhttp::string_body> req;
  req.method_string(std::string(verb));
  req.target(std::string(target));
  req.version(11);
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(d.port));
  for (const auto& [name, value] : headers) {
    req.insert(name, value);
  }
  req.body() = std::string(body);
  if (!body.empty() || verb == "POST" || verb == "PUT" || verb == "PATCH") {
    req.prepare_payload();
  }

  d.stream->expires_after(d.timeout);
  auto ec = run_op(d.io, [&](auto handler) { bhttp::async_write(*d.stream, req, handler); });
  if (ec) {
    d.drop();
    throw std::runtime_error(std::string("writing ") + std::string(verb) + " " +
                             std::string(target) + ": " + ec.message());
  }

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  parser.skip(verb == "HEAD");
  d.stream->expires_after(d.timeout);
  ec = run_op(d.io, [&](auto handler) { bhttp::async_read(*d.stream, d.buffer, parser, handler); });
  if (ec) {
    d.drop();
    throw std::runtime_error(std::string("reading the reply to ") + std::string(verb) + " " +
                             std::string(target) + ": " + ec.message());
  }
  auto& res = parser.get();
  Response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.body = std::move(res.body());
  if (!res.keep_alive()) {
    d.drop();
  }
  return out;
}

Response HttpClient::json(std::string_view verb, std::string_view target,
                          const nlohmann::json& body, const Headers& headers) {
  return request(verb, target, body.dump(), headers);
}

Response HttpClient::proto(std::string_view verb, std::string_view target,
                           const google::protobuf::Message& body, const Headers& headers) {
  return request(verb, target, codec::encode(body, codec::Encoding::kProto), headers);
}

std::size_t HttpClient::requests_sent() const { return impl_->sent; }

void HttpClient::close() { impl_->drop(); }

// ---- RawConnection ----------------------------------------------------------------------------

struct RawConnection::Impl {
  asio::io_context io;
  beast::tcp_stream stream{io};
};

RawConnection::RawConnection(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  connect_stream(impl_->io, impl_->stream, port, std::chrono::seconds{10});
}

RawConnection::~RawConnection() { close(); }

void RawConnection::send(std::string_view bytes) {
  auto& d = *impl_;
  d.stream.expires_after(std::chrono::seconds{10});
  auto ec = run_op(
      d.io, [&](auto handler) { asio::async_write(d.stream, asio::buffer(bytes), handler); });
  if (ec) {
    throw std::runtime_error("raw send: " + ec.message());
  }
}

std::string RawConnection::read_until_close(std::chrono::milliseconds timeout) {
  auto& d = *impl_;
  std::string out;
  d.stream.expires_after(timeout);
  while (true) {
    char chunk[4096];
    std::size_t got = 0;
    auto ec = run_op(d.io, [&](auto handler) {
      d.stream.async_read_some(asio::buffer(chunk),
                               [&got, handler](beast::error_code e, std::size_t n) mutable {
                                 got = n;
                                 handler(e, n);
                               });
    });
    out.append(chunk, got);
    if (ec) {
      return out;  // EOF, reset or the deadline: either way the reply is what arrived
    }
  }
}

void RawConnection::close() {
  beast::error_code ignored;
  impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  impl_->stream.close();
}

std::string raw_exchange(std::uint16_t port, std::string_view bytes) {
  RawConnection connection(port);
  connection.send(bytes);
  return connection.read_until_close();
}

Response parse_raw_response(std::string_view raw) {
  Response out;
  const auto head_end = raw.find("\r\n\r\n");
  const auto head = raw.substr(0, head_end);
  out.body =
      head_end == std::string_view::npos ? std::string() : std::string(raw.substr(head_end + 4));
  const auto line_end = head.find("\r\n");
  const auto status_line = head.substr(0, line_end);
  if (const auto space = status_line.find(' '); space != std::string_view::npos) {
    out.status = std::atoi(std::string(status_line.substr(space + 1, 3)).c_str());
  }
  auto rest = line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    const auto line = rest.substr(0, eol);
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      auto value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') {
        value.remove_prefix(1);
      }
      out.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 2);
  }
  return out;
}

std::pair<std::string, std::string> bearer(std::string_view token) {
  return {"Authorization", "Bearer " + std::string(token)};
}

}  // namespace peernet::testing
