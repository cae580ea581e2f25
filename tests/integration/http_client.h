#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace google::protobuf {
class Message;
}

namespace peernet::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

/// An HTTP response as the tests look at it.
struct Response {
  int status = 0;
  Headers headers;
  std::string body;

  /// The first header of that name (case-insensitive), empty when there is none.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  /// The body parsed as JSON; a JSON string "<not JSON: ...>" when it is not.
  nlohmann::json json() const;
  /// Parses the body as a binary protobuf message with peernet::codec::decode.
  bool decode_proto(google::protobuf::Message& message) const;
};

/// A synchronous HTTP/1.1 client on one kept-alive connection to 127.0.0.1:port (re-opened when
/// the daemon closes it). Every operation gives up after `timeout`, so a hung daemon fails the
/// test instead of hanging it. Not thread-safe: one client per thread.
class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::seconds{20});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  /// Sends one request and reads its response. Throws std::runtime_error on a network error.
  Response request(std::string_view verb, std::string_view target, std::string_view body = {},
                   const Headers& headers = {});
  /// A JSON body (no Content-Type header unless given in `headers`).
  Response json(std::string_view verb, std::string_view target, const nlohmann::json& body,
                const Headers& headers = {});
  /// A binary protobuf body, encoded with peernet::codec::encode.
  Response proto(std::string_view verb, std::string_view target,
                 const google::protobuf::Message& body, const Headers& headers = {});

  /// Requests sent so far on this client (each one an HTTP transaction).
  std::size_t requests_sent() const;
  /// Drops the connection, as a client that goes away does.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A bare TCP connection to 127.0.0.1:port, for bytes that are not a well-formed request and for
/// clients that leave in the middle of a request.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  void send(std::string_view bytes);
  /// Everything the daemon sends until it closes the connection or `timeout` passes.
  std::string read_until_close(std::chrono::milliseconds timeout = std::chrono::seconds{5});
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Sends `bytes` on a fresh connection and returns the daemon's raw reply, read until it closes.
std::string raw_exchange(std::uint16_t port, std::string_view bytes);
/// Splits a raw HTTP/1.1 reply (status line, headers, body) into a Response.
Response parse_raw_response(std::string_view raw);

/// The Authorization header for a bearer token.
std::pair<std::string, std::string> bearer(std::string_view token);

}  // namespace peernet::testing
