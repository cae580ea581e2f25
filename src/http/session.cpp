#include "http/session.h"

#include <array>
#include <cctype>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/server.h"

namespace peernet::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using core::ApiError;

constexpr std::size_t kFirstRead = 4096;

}  // namespace

template <class Stream>
HttpSession<Stream>::HttpSession(Stream&& stream, std::shared_ptr<ServerShared> shared,
                                 std::string client, beast::flat_buffer buffer)
    : stream_(std::move(stream)),
      buffer_(std::move(buffer)),
      shared_(std::move(shared)),
      client_(std::move(client)),
      wait_timer_(stream_.get_executor()) {
  shared_->metrics.connection_opened();
}

template <class Stream>
HttpSession<Stream>::~HttpSession() {
  if (!client_.empty()) {
    shared_->clients.disconnect(client_, std::chrono::steady_clock::now());
  }
  shared_->metrics.connection_closed();
  shared_->forget(this);
}

template <class Stream>
void HttpSession<Stream>::start() {
  asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
    // The long-poll's peer watch peeks at the socket after a readiness event, and such an event
    // can be stale (its bytes already read by a speculative read). A blocking socket would then
    // hold an event-loop thread until the client sends or leaves; a non-blocking one says
    // "would block" and the watch is simply re-armed. Asynchronous I/O is unaffected.
    beast::error_code ignored;
    self->tcp().socket().non_blocking(true, ignored);
    if constexpr (kTls) {
      // The detector has read the start of the ClientHello: the handshake goes on from there.
      self->tcp().expires_after(self->shared_->limits.request_timeout);
      // Beast 1.81 constrains this handler by the unbuffered signature, void(error_code), while
      // it calls it with (error_code, bytes used): a variadic lambda fits both.
      self->stream_.async_handshake(asio::ssl::stream_base::server, self->buffer_.data(),
                                    [self](beast::error_code ec, auto... used) {
                                      if (ec) {
                                        spdlog::debug("TLS handshake failed: {}", ec.message());
                                        self->close();
                                        return;
                                      }
                                      self->buffer_.consume((std::size_t{0} + ... + used));
                                      self->do_read();
                                    });
    } else {
      self->do_read();
    }
  });
}

template <class Stream>
void HttpSession<Stream>::shutdown() {
  stopping_ = true;
  if (wait_) {
    end_wait();
    send_error(ApiError{core::ErrorCode::kUnavailable,
                        "peernetd is shutting down; poll again shortly", std::chrono::seconds{1}},
               true);
  } else if (!writing_) {
    close();
  }
}

template <class Stream>
void HttpSession<Stream>::do_read() {
  if (stopping_ || closed_) {
    close();
    return;
  }
  parser_ = std::make_unique<bhttp::request_parser<bhttp::string_body>>();
  parser_->body_limit(shared_->limits.max_body_bytes);
  parser_->header_limit(static_cast<std::uint32_t>(shared_->limits.max_header_bytes));
  auto read_request = [this] {
    // From the first byte on, the whole request must arrive within request_timeout.
    tcp().expires_after(shared_->limits.request_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&HttpSession::on_read, this->shared_from_this()));
  };
  if (buffer_.size() > 0) {
    read_request();
    return;
  }
  // An idle kept-alive connection may wait idle_timeout for its next request.
  tcp().expires_after(shared_->limits.idle_timeout);
  stream_.async_read_some(
      buffer_.prepare(kFirstRead),
      [self = this->shared_from_this(), read_request](beast::error_code ec, std::size_t n) {
        self->buffer_.commit(n);
        if (ec) {
          self->on_read(ec, 0);
          return;
        }
        read_request();
      });
}

template <class Stream>
void HttpSession<Stream>::on_read(beast::error_code ec, std::size_t /*bytes*/) {
  if (closed_) {
    // The session was shut down after the read completed but before this ran (a parser with a
    // whole request buffered completes without touching the closed socket).
    return;
  }
  if (ec) {
    // An unparsable request gets a plain error, not the previous request's shape (HEAD, Allow).
    shape_ = ReplyShape{};
  }
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
    close();
    return;
  }
  if (ec == bhttp::error::body_limit) {
    send_error({core::ErrorCode::kPayloadTooLarge,
                fmt::format("body: over the limit of {} bytes (max_body_bytes)",
                            shared_->limits.max_body_bytes)},
               true);
    return;
  }
  if (ec == bhttp::error::header_limit) {
    send_error({core::ErrorCode::kHeadersTooLarge,
                fmt::format("header block: over the limit of {} bytes (max_header_bytes)",
                            shared_->limits.max_header_bytes)},
               true);
    return;
  }
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
    send_error(ApiError::malformed(fmt::format("malformed HTTP request: {}", ec.message())), true);
    return;
  }
  if (ec) {
    spdlog::debug("connection dropped while reading: {}", ec.message());
    close();
    return;
  }
  // The request leaves the parser, and both go once it is answered or parked: a long-poll
  // holds neither header fields nor parser state while it waits.
  HttpRequest request = parser_->release();
  parser_.reset();
  process(request);
}

template <class Stream>
void HttpSession<Stream>::process(HttpRequest& request) {
  if (!client_.empty()) {
    const auto wait = shared_->clients.take(client_, std::chrono::steady_clock::now());
    if (wait.count() > 0) {
      shape_ = ReplyShape{};
      shape_.version = request.version();
      shape_.keep_alive = request.keep_alive();
      const auto& limits = shared_->limits;
      send_error(ApiError::limit(
                     fmt::format("too many requests from your address: over {} a second, {} at "
                                 "once (requests_per_second, request_burst)",
                                 limits.requests_per_second, limits.request_burst),
                     std::chrono::ceil<std::chrono::seconds>(wait)),
                 false);
      return;
    }
  }
  dispatch_outcome(answer(request, *shared_, shape_));
}

template <class Stream>
void HttpSession<Stream>::dispatch_outcome(Outcome outcome) {
  if (auto* reply = std::get_if<Reply>(&outcome)) {
    send(std::move(*reply));
  } else {
    begin_wait(std::get<Wait>(std::move(outcome)), true);
  }
}

template <class Stream>
void HttpSession<Stream>::begin_wait(Wait wait, bool first) {
  if (first && stopping_) {
    // shutdown() has run: nobody would end this wait early, so answer as it would have.
    send_error(ApiError{core::ErrorCode::kUnavailable,
                        "peernetd is shutting down; poll again shortly", std::chrono::seconds{1}},
               true);
    return;
  }
  if (first) {
    if (!shared_->metrics.poll_started(shared_->limits.max_waiters)) {
      send_error(ApiError::limit(fmt::format("{} long-polls are waiting, the daemon's limit "
                                             "(max_waiters); poll again shortly",
                                             shared_->limits.max_waiters)),
                 false);
      return;
    }
    ++wait_generation_;
    wait_.emplace(std::move(wait));
    // Parked for up to max_wait, among thousands of others: give back what only reading and
    // writing need (the read buffer is a page; the last response may hold an SDP).
    if (buffer_.size() == 0) {
      buffer_.shrink_to_fit();
    }
    std::string().swap(response_header_);
    std::string().swap(response_body_);
    // While parked, only the wait's own timer runs; the stream's deadline is for I/O.
    tcp().expires_never();
    wait_timer_.expires_after(wait_->duration);
    wait_timer_.async_wait([self = this->shared_from_this(), generation = wait_generation_](
                               beast::error_code ec) { self->on_wait_timer(ec, generation); });
    watch_peer(wait_generation_);
  } else {
    wait_->subscribe = std::move(wait.subscribe);
    wait_->resume = std::move(wait.resume);
  }
  auto waker = [weak = this->weak_from_this(), executor = stream_.get_executor(),
                generation = wait_generation_] {
    asio::post(executor, [weak, generation] {
      if (auto self = weak.lock()) {
        self->on_wake(generation);
      }
    });
  };
  auto watch = wait_->subscribe(std::move(waker));
  if (!watch) {
    end_wait();
    send_error(watch.error(), false);
    return;
  }
  watch_ = std::move(watch).value();
}

template <class Stream>
void HttpSession<Stream>::on_wake(std::uint64_t generation) {
  if (generation != wait_generation_ || !wait_) {
    return;
  }
  watch_ = core::Watch{};
  auto outcome = wait_->resume(false);
  if (auto* reply = std::get_if<Reply>(&outcome)) {
    end_wait();
    send(std::move(*reply));
  } else {
    begin_wait(std::get<Wait>(std::move(outcome)), false);
  }
}

template <class Stream>
void HttpSession<Stream>::on_wait_timer(beast::error_code ec, std::uint64_t generation) {
  if (ec || generation != wait_generation_ || !wait_) {
    return;
  }
  watch_ = core::Watch{};
  auto outcome = wait_->resume(true);
  end_wait();
  if (auto* reply = std::get_if<Reply>(&outcome)) {
    send(std::move(*reply));
  } else {
    send_error({core::ErrorCode::kInternal, "a long-poll did not answer when its wait ran out"},
               false);
  }
}

template <class Stream>
void HttpSession<Stream>::watch_peer(std::uint64_t generation) {
  tcp().socket().async_wait(asio::ip::tcp::socket::wait_read, [self = this->shared_from_this(),
                                                               generation](beast::error_code ec) {
    if (ec || generation != self->wait_generation_ || !self->wait_) {
      return;
    }
    char byte = 0;
    beast::error_code peek_ec;
    const auto n = self->tcp().socket().receive(asio::buffer(&byte, 1),
                                                asio::socket_base::message_peek, peek_ec);
    if (peek_ec == asio::error::would_block || peek_ec == asio::error::try_again) {
      self->watch_peer(generation);
      return;
    }
    if (n == 0 || peek_ec) {
      // The client went away mid-poll: drop the watch (and the server's "polling" mark).
      spdlog::debug("client left during a long-poll");
      self->end_wait();
      self->close();
    }
    // Otherwise the client pipelined its next request; it is read after this reply.
  });
}

template <class Stream>
void HttpSession<Stream>::end_wait() {
  if (!wait_) {
    return;
  }
  wait_.reset();
  watch_ = core::Watch{};
  wait_timer_.cancel();
  beast::error_code ec;
  tcp().socket().cancel(ec);  // the peer watch
  shared_->metrics.poll_ended();
}

template <class Stream>
void HttpSession<Stream>::send_error(const ApiError& error, bool close_after) {
  if (close_after) {
    shape_.keep_alive = false;
  }
  send(Reply::failure(error));
}

template <class Stream>
void HttpSession<Stream>::send(Reply reply) {
  if (closed_) {
    return;
  }
  HttpResponse response = render(std::move(reply), shape_, shape_.keep_alive && !stopping_);
  shared_->metrics.record(shape_.method_index, response.result_int());
  spdlog::debug("{} -> {}",
                shape_.method_index < kMethodCount
                    ? method_name(static_cast<Method>(shape_.method_index))
                    : std::string_view("unmatched route"),
                response.result_int());
  response_header_ = wire_header(response);
  response_body_ = std::move(response.body());
  keep_alive_after_write_ = response.keep_alive();
  do_write();
}

template <class Stream>
void HttpSession<Stream>::do_write() {
  writing_ = true;
  tcp().expires_after(shared_->limits.write_timeout);
  asio::async_write(stream_,
                    std::array{asio::buffer(response_header_), asio::buffer(response_body_)},
                    beast::bind_front_handler(&HttpSession::on_write, this->shared_from_this()));
}

template <class Stream>
void HttpSession<Stream>::on_write(beast::error_code ec, std::size_t /*bytes*/) {
  writing_ = false;
  if (ec) {
    spdlog::debug("connection dropped while writing: {}", ec.message());
    close();
    return;
  }
  if (!keep_alive_after_write_ || stopping_) {
    close();
    return;
  }
  do_read();
}

template <class Stream>
void HttpSession<Stream>::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  end_wait();
  if constexpr (kTls) {
    // Say goodbye in TLS (close_notify), briefly; the socket closes either way.
    tcp().expires_after(std::chrono::seconds{1});
    stream_.async_shutdown(
        [self = this->shared_from_this()](beast::error_code) { self->tcp().close(); });
  } else {
    beast::error_code ec;
    tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    tcp().close();
  }
}

template class HttpSession<beast::tcp_stream>;
template class HttpSession<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace peernet::http
