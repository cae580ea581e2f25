#include "http/session.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <utility>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "http/error_reply.h"
#include "http/server.h"

namespace peernet::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using core::ApiError;

constexpr std::size_t kFirstRead = 4096;

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
  constexpr std::string_view kForm = "application/x-www-form-urlencoded";
  return content_type.substr(0, kForm.size()) == kForm;
}

}  // namespace

Session::Session(asio::ip::tcp::socket&& socket, std::shared_ptr<ServerShared> shared)
    : stream_(std::move(socket)), shared_(std::move(shared)), wait_timer_(stream_.get_executor()) {
  shared_->metrics.connection_opened();
}

Session::~Session() {
  shared_->metrics.connection_closed();
  shared_->forget(this);
}

void Session::start() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
}

void Session::shutdown() {
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

void Session::do_read() {
  if (stopping_ || closed_) {
    close();
    return;
  }
  parser_.emplace();
  parser_->body_limit(shared_->limits.max_body_bytes);
  parser_->header_limit(static_cast<std::uint32_t>(shared_->limits.max_header_bytes));
  auto read_request = [this] {
    // From the first byte on, the whole request must arrive within request_timeout.
    stream_.expires_after(shared_->limits.request_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_read, shared_from_this()));
  };
  if (buffer_.size() > 0) {
    read_request();
    return;
  }
  // An idle kept-alive connection may wait idle_timeout for its next request.
  stream_.expires_after(shared_->limits.idle_timeout);
  stream_.async_read_some(buffer_.prepare(kFirstRead), [self = shared_from_this(), read_request](
                                                           beast::error_code ec, std::size_t n) {
    self->buffer_.commit(n);
    if (ec) {
      self->on_read(ec, 0);
      return;
    }
    read_request();
  });
}

void Session::on_read(beast::error_code ec, std::size_t /*bytes*/) {
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
  process(parser_->get());
}

void Session::process(Request& request) {
  version_ = request.version();
  keep_alive_ = request.keep_alive();
  head_ = request.method() == bhttp::verb::head;
  connect_style_ = false;
  method_index_ = kMethodCount;
  reply_type_ = codec::MediaType{};

  auto route = http::route(request.method_string(), request.target());
  if (!route) {
    if (route.error().code == core::ErrorCode::kMethodNotAllowed) {
      allow_ = allowed_verbs(request.target());
    }
    send_error(route.error(), false);
    return;
  }
  method_index_ = static_cast<std::size_t>(route->method);
  connect_style_ = route->style == Style::kConnect;

  if (route->method == Method::kHealth || route->method == Method::kMetrics) {
    Reply reply;
    if (route->method == Method::kHealth) {
      reply.text = shared_->stopping.load() ? "stopping\n" : "ok\n";
      reply.status = shared_->stopping.load() ? 503 : 200;
    } else {
      reply.text = shared_->metrics.render(shared_->context.registry.stats());
      reply.text_type = "text/plain; version=0.0.4; charset=utf-8";
    }
    send(std::move(reply));
    return;
  }

  const auto content_type = request[bhttp::field::content_type];
  auto body_type = codec::media_type_of(content_type);
  if (!body_type && !connect_style_ && is_curl_form(content_type)) {
    body_type = codec::MediaType{};  // `curl -d '{...}'` labels JSON as a form; read it as JSON
  }
  if (!body_type && (!request.body().empty() || connect_style_)) {
    send_error({core::ErrorCode::kUnsupportedMediaType,
                fmt::format("Content-Type '{}' is not supported: send application/json or "
                            "application/x-protobuf (or application/proto)",
                            content_type.substr(0, 128))},
               false);
    return;
  }
  const auto request_type = body_type.value_or(codec::MediaType{});
  reply_type_ =
      connect_style_ ? request_type : codec::negotiate(request[bhttp::field::accept], request_type);

  Call call;
  call.route = std::move(route).value();
  call.body = request.body();
  call.body_encoding = request_type.encoding;
  call.token = bearer_token(request[bhttp::field::authorization]);
  dispatch_outcome(handle(call, shared_->context));
}

void Session::dispatch_outcome(Outcome outcome) {
  if (auto* reply = std::get_if<Reply>(&outcome)) {
    send(std::move(*reply));
  } else {
    begin_wait(std::get<Wait>(std::move(outcome)), true);
  }
}

void Session::begin_wait(Wait wait, bool first) {
  if (first) {
    ++wait_generation_;
    wait_.emplace(std::move(wait));
    shared_->metrics.poll_started();
    // While parked, only the wait's own timer runs; the stream's deadline is for I/O.
    stream_.expires_never();
    wait_timer_.expires_after(wait_->duration);
    wait_timer_.async_wait([self = shared_from_this(), generation = wait_generation_](
                               beast::error_code ec) { self->on_wait_timer(ec, generation); });
    watch_peer(wait_generation_);
  } else {
    wait_->subscribe = std::move(wait.subscribe);
    wait_->resume = std::move(wait.resume);
  }
  auto waker = [weak = weak_from_this(), executor = stream_.get_executor(),
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

void Session::on_wake(std::uint64_t generation) {
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

void Session::on_wait_timer(beast::error_code ec, std::uint64_t generation) {
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

void Session::watch_peer(std::uint64_t generation) {
  stream_.socket().async_wait(asio::ip::tcp::socket::wait_read, [self = shared_from_this(),
                                                                 generation](beast::error_code ec) {
    if (ec || generation != self->wait_generation_ || !self->wait_) {
      return;
    }
    char byte = 0;
    beast::error_code peek_ec;
    const auto n = self->stream_.socket().receive(asio::buffer(&byte, 1),
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

void Session::end_wait() {
  if (!wait_) {
    return;
  }
  wait_.reset();
  watch_ = core::Watch{};
  wait_timer_.cancel();
  beast::error_code ec;
  stream_.socket().cancel(ec);  // the peer watch
  shared_->metrics.poll_ended();
}

void Session::send_error(const ApiError& error, bool close_after) {
  if (close_after) {
    keep_alive_ = false;
  }
  send(Reply::failure(error));
}

void Session::send(Reply reply) {
  if (closed_) {
    return;
  }
  response_ = {};
  response_.version(version_);
  response_.set(bhttp::field::server, "peernetd");
  response_.set(bhttp::field::cache_control, "no-store");
  if (reply.error) {
    response_.result(http_status(reply.error->code));
    response_.set(bhttp::field::content_type, "application/json");
    if (reply.error->retry_after.count() > 0) {
      response_.set(bhttp::field::retry_after, std::to_string(reply.error->retry_after.count()));
    }
    if (!allow_.empty()) {
      response_.set(bhttp::field::allow, allow_);
    }
    response_.body() = error_body(*reply.error);
  } else if (reply.message) {
    response_.result(connect_style_ ? 200 : reply.status);
    response_.set(bhttp::field::content_type, reply_type_.name);
    response_.body() = codec::encode(*reply.message, reply_type_.encoding);
  } else {
    response_.result(reply.status);
    response_.set(bhttp::field::content_type, reply.text_type);
    response_.body() = std::move(reply.text);
  }
  allow_.clear();
  response_.keep_alive(keep_alive_ && !stopping_);
  response_.prepare_payload();
  if (head_) {
    response_.body().clear();  // Content-Length still tells the size a GET would get
  }
  shared_->metrics.record(method_index_, response_.result_int());
  spdlog::debug("{} -> {}", method_index_ < kMethodCount ? method_name(static_cast<Method>(method_index_))
                                                        : std::string_view("unmatched route"),
                response_.result_int());
  do_write();
}

void Session::do_write() {
  writing_ = true;
  stream_.expires_after(shared_->limits.write_timeout);
  bhttp::async_write(stream_, response_,
                     beast::bind_front_handler(&Session::on_write, shared_from_this()));
}

void Session::on_write(beast::error_code ec, std::size_t /*bytes*/) {
  writing_ = false;
  if (ec) {
    spdlog::debug("connection dropped while writing: {}", ec.message());
    close();
    return;
  }
  if (!response_.keep_alive() || stopping_) {
    close();
    return;
  }
  do_read();
}

void Session::close() {
  if (closed_) {
    return;
  }
  closed_ = true;
  end_wait();
  beast::error_code ec;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  stream_.close();
}

}  // namespace peernet::http
