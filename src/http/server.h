#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "core/registry.h"
#include "http/api.h"
#include "http/client_limits.h"
#include "http/metrics.h"
#include "http/tls.h"

namespace peernet::http {

/// Limits of the HTTP front end; each is an option of peernetd.conf with this default.
struct HttpLimits {
  std::size_t max_body_bytes = 262'144;
  std::size_t max_header_bytes = 16'384;
  /// Time to receive one whole request once its first byte arrived: a client trickling bytes
  /// (slowloris) is dropped after it.
  std::chrono::seconds request_timeout{10};
  /// Longest request target (path and query).
  std::size_t max_target_bytes = 2048;
  /// Time a kept-alive connection may sit idle between requests.
  std::chrono::seconds idle_timeout{60};
  /// Time to send one response.
  std::chrono::seconds write_timeout{30};
  /// Longest long-poll; longer `wait` values are cut to it.
  std::chrono::seconds max_wait{30};
  /// Open connections at once; more are accepted and closed at once.
  std::size_t max_connections = 10'000;
  /// Open connections from one client address.
  std::size_t max_connections_per_client = 64;
  /// Requests per second from one client address, on average (0: no limit) ...
  std::size_t requests_per_second = 100;
  /// ... and in a burst.
  std::size_t request_burst = 200;
  /// Long-polls waiting at once, in the whole daemon.
  std::size_t max_waiters = 10'000;
  /// Whether the per-client limits apply to loopback clients too (local programs, a local
  /// reverse proxy, the tests).
  bool limit_loopback = false;
};

class Session;

/// What sessions share with the server that made them. Held by shared_ptr so that a session
/// destroyed late (with its io_context) never outlives it.
struct ServerShared {
  ServerShared(core::Registry& registry, const HttpLimits& http_limits)
      : limits(http_limits),
        context{registry, http_limits.max_wait, {}},
        clients(http_limits.max_connections_per_client,
                static_cast<double>(http_limits.requests_per_second),
                static_cast<double>(http_limits.request_burst)) {}

  void forget(const Session* session);
  /// Answers a connection the daemon will not serve with `error`, then closes it.
  void refuse(boost::asio::ip::tcp::socket& socket, const core::ApiError& error);
  /// False once stopping: a new session must close at once.
  bool adopt(const std::shared_ptr<Session>& session);

  const HttpLimits limits;
  Context context;
  Metrics metrics;
  ClientLimits clients;
  TlsMode tls_mode = TlsMode::kOff;
  std::shared_ptr<boost::asio::ssl::context> tls;

  mutable std::mutex mutex;
  std::atomic<bool> stopping{false};
  std::unordered_map<const Session*, std::weak_ptr<Session>> sessions;
};

/// The HTTP/1.1 front end: a listener accepting onto fresh strands and the sessions it made.
/// stop() closes the listener, answers long-polls with 503, lets in-flight responses finish and
/// closes idle connections.
class HttpServer {
 public:
  /// `tls` is the server context when `tls_mode` is not kOff.
  HttpServer(boost::asio::io_context& io, core::Registry& registry, HttpLimits limits,
             TlsMode tls_mode = TlsMode::kOff,
             std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and listens. Port 0 picks an ephemeral port; port() tells which.
  boost::system::error_code listen(const boost::asio::ip::tcp::endpoint& endpoint);
  std::uint16_t port() const { return port_; }

  /// Starts accepting. Call after listen().
  void start();
  /// Stops accepting and winds down every session (thread-safe, idempotent).
  void stop();

  /// Sessions still alive (for tests and for knowing when draining is over).
  std::size_t session_count() const;

 private:
  void do_accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  std::shared_ptr<ServerShared> shared_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_backoff_;
  std::uint16_t port_ = 0;
};

}  // namespace peernet::http
