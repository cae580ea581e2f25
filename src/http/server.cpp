#include "http/server.h"

#include <array>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/exchange.h"
#include "http/session.h"

namespace peernet::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

namespace {

using core::ApiError;

constexpr std::chrono::milliseconds kAcceptBackoff{100};

/// The key of the per-client limits for a connection: its address, IPv4 clients of a dual-stack
/// socket written as IPv4; empty when the limits do not apply (loopback, unless asked).
std::string client_key(const tcp::socket& socket, bool limit_loopback) {
  boost::system::error_code ec;
  auto address = socket.remote_endpoint(ec).address();
  if (ec) {
    return {};
  }
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  if (address.is_loopback() && !limit_loopback) {
    return {};
  }
  return address.to_string();
}

/// Creates a session of type `S` on `stream` and starts it, unless the server is stopping.
template <class S, class Stream>
void start_session(const std::shared_ptr<ServerShared>& shared, Stream&& stream, std::string client,
                   beast::flat_buffer buffer) {
  auto session = std::make_shared<S>(std::forward<Stream>(stream), shared, std::move(client),
                                     std::move(buffer));
  if (shared->adopt(session)) {
    session->start();
  }
}

/// Reads the first bytes of a connection to tell TLS from plain HTTP, then hands it to the
/// right session. Its time is bounded by idle_timeout; a connection it drops is uncounted.
class Detector : public std::enable_shared_from_this<Detector> {
 public:
  Detector(tcp::socket&& socket, std::shared_ptr<ServerShared> shared, std::string client)
      : stream_(std::move(socket)), shared_(std::move(shared)), client_(std::move(client)) {}
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;
  ~Detector() {
    if (!client_.empty()) {
      shared_->clients.disconnect(client_, std::chrono::steady_clock::now());
    }
  }

  void run() {
    stream_.expires_after(shared_->limits.idle_timeout);
    beast::async_detect_ssl(
        stream_, buffer_,
        [self = shared_from_this()](beast::error_code ec, bool tls) { self->on_detect(ec, tls); });
  }

 private:
  void on_detect(beast::error_code ec, bool tls) {
    if (ec) {
      return;  // closed or silent: nothing to serve
    }
    if (tls) {
      start_session<TlsSession>(
          shared_, beast::ssl_stream<beast::tcp_stream>(std::move(stream_), *shared_->tls),
          std::exchange(client_, {}), std::move(buffer_));
      return;
    }
    if (shared_->tls_mode == TlsMode::kRequired) {
      shared_->refuse(stream_.socket(),
                      ApiError::malformed("this peernetd takes HTTPS only: use https:// (tls_mode "
                                          "is required)"));
      return;
    }
    start_session<PlainSession>(shared_, std::move(stream_), std::exchange(client_, {}),
                                std::move(buffer_));
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<ServerShared> shared_;
  std::string client_;
};

}  // namespace

void ServerShared::refuse(tcp::socket& socket, const core::ApiError& error) {
  metrics.refused();
  // A best-effort answer on a fresh socket, without waiting: it fits in the socket's buffer.
  ReplyShape shape;
  shape.keep_alive = false;
  const HttpResponse response = render(Reply::failure(error), shape, false);
  const std::string head = wire_header(response);
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  asio::write(socket, std::array{asio::buffer(head), asio::buffer(response.body())}, ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void ServerShared::forget(const Session* session) {
  std::lock_guard lock(mutex);
  sessions.erase(session);
}

bool ServerShared::adopt(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(mutex);
  if (stopping) {
    return false;
  }
  sessions.emplace(session.get(), session);
  return true;
}

HttpServer::HttpServer(asio::io_context& io, core::Registry& registry, HttpLimits limits,
                       TlsMode tls_mode, std::shared_ptr<asio::ssl::context> tls)
    : io_(io),
      shared_(std::make_shared<ServerShared>(registry, limits)),
      acceptor_(asio::make_strand(io)),
      accept_backoff_(acceptor_.get_executor()) {
  shared_->tls_mode = tls == nullptr ? TlsMode::kOff : tls_mode;
  shared_->tls = std::move(tls);
}

HttpServer::~HttpServer() = default;

boost::system::error_code HttpServer::listen(const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) {
    return ec;
  }
  if (endpoint.address().is_v6()) {
    // "::" serves IPv4 clients too where the system allows it.
    boost::system::error_code ignored;
    acceptor_.set_option(asio::ip::v6_only(false), ignored);
  }
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    acceptor_.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (!ec) {
    port_ = acceptor_.local_endpoint(ec).port();
  }
  if (ec) {
    acceptor_.close();
  }
  return ec;
}

void HttpServer::start() {
  asio::post(acceptor_.get_executor(), [this] { do_accept(); });
}

void HttpServer::do_accept() {
  acceptor_.async_accept(asio::make_strand(io_),
                         boost::beast::bind_front_handler(&HttpServer::on_accept, this));
}

void HttpServer::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) {
    return;  // stopped
  }
  if (ec) {
    // Out of file descriptors and the like: keep serving the connections we have and try
    // again shortly, rather than spinning on an error that will not clear at once.
    spdlog::warn("accept failed: {}; retrying in {} ms", ec.message(), kAcceptBackoff.count());
    accept_backoff_.expires_after(kAcceptBackoff);
    accept_backoff_.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) {
        do_accept();
      }
    });
    return;
  }
  if (session_count() >= shared_->limits.max_connections) {
    spdlog::warn("refusing a connection: {} open, the limit (max_connections)",
                 shared_->limits.max_connections);
    shared_->refuse(socket,
                    {core::ErrorCode::kUnavailable,
                     fmt::format("peernetd has {} connections open, its limit (max_connections)",
                                 shared_->limits.max_connections),
                     std::chrono::seconds{1}});
    do_accept();
    return;
  }
  std::string client = client_key(socket, shared_->limits.limit_loopback);
  if (!client.empty() && !shared_->clients.connect(client, std::chrono::steady_clock::now())) {
    shared_->refuse(
        socket, ApiError::limit(fmt::format("{} connections from your address are open, the limit "
                                            "(max_connections_per_client)",
                                            shared_->limits.max_connections_per_client)));
    do_accept();
    return;
  }
  if (shared_->tls_mode == TlsMode::kOff) {
    start_session<PlainSession>(shared_, beast::tcp_stream(std::move(socket)), std::move(client),
                                {});
  } else {
    std::make_shared<Detector>(std::move(socket), shared_, std::move(client))->run();
  }
  do_accept();
}

void HttpServer::stop() {
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->stopping.exchange(true)) {
      return;
    }
    for (const auto& [key, weak] : shared_->sessions) {
      if (auto session = weak.lock()) {
        sessions.push_back(std::move(session));
      }
    }
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_backoff_.cancel();
  });
  for (auto& session : sessions) {
    Session* raw = session.get();
    asio::post(raw->executor(), [session = std::move(session)] { session->shutdown(); });
  }
}

std::size_t HttpServer::session_count() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->sessions.size();
}

}  // namespace peernet::http
