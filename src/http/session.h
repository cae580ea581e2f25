#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "core/registry.h"
#include "http/api.h"
#include "http/exchange.h"

namespace peernet::http {

struct ServerShared;

/// What the server needs of a session, whatever its transport: to stop it, on its strand.
class Session {
 public:
  virtual ~Session() = default;
  /// Answer a long-poll with 503, finish a write, close when idle. Call on executor().
  virtual void shutdown() = 0;
  /// The session's strand.
  virtual boost::asio::any_io_executor executor() = 0;
};

/// One client connection over plain TCP or TLS: reads a request, hands it to the API layer,
/// writes the reply, and repeats while the client keeps the connection alive. A long-poll parks
/// the session on a timer and a registry watch, while it keeps an eye on the socket so a client
/// that goes away frees what it held at once. Everything runs on the session's strand.
template <class Stream>
class HttpSession final : public Session, public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  /// `client` is the key of the per-client limits, empty when they do not apply; `buffer` holds
  /// bytes already read from the connection (by the TLS detector).
  HttpSession(Stream&& stream, std::shared_ptr<ServerShared> shared, std::string client,
              boost::beast::flat_buffer buffer);
  ~HttpSession() override;
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void start();
  void shutdown() override;
  boost::asio::any_io_executor executor() override { return stream_.get_executor(); }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, boost::beast::tcp_stream>;

  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void process(HttpRequest& request);
  void dispatch_outcome(Outcome outcome);
  void begin_wait(Wait wait, bool first);
  void on_wake(std::uint64_t generation);
  void on_wait_timer(boost::beast::error_code ec, std::uint64_t generation);
  void watch_peer(std::uint64_t generation);
  void end_wait();
  void send(Reply reply);
  void send_error(const core::ApiError& error, bool close);
  void do_write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);
  void close();
  boost::beast::tcp_stream& tcp() { return boost::beast::get_lowest_layer(stream_); }

  Stream stream_;
  boost::beast::flat_buffer buffer_;
  // Only while a request is being read: a parked long-poll holds none.
  std::unique_ptr<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  // The response being written: its header block and body, and whether the connection stays.
  std::string response_header_;
  std::string response_body_;
  bool keep_alive_after_write_ = false;
  std::shared_ptr<ServerShared> shared_;
  const std::string client_;

  // About the request being answered.
  ReplyShape shape_;

  // The long-poll in progress, if any.
  std::optional<Wait> wait_;
  core::Watch watch_;
  boost::asio::steady_timer wait_timer_;
  std::uint64_t wait_generation_ = 0;

  bool writing_ = false;
  bool stopping_ = false;
  bool closed_ = false;
};

using PlainSession = HttpSession<boost::beast::tcp_stream>;
using TlsSession = HttpSession<boost::beast::ssl_stream<boost::beast::tcp_stream>>;

}  // namespace peernet::http
