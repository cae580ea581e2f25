#include "signaling/signaling_client.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

namespace peernet::lib {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using Completion = std::function<void(Result<std::string>)>;

constexpr std::string_view kDefaultPort = "8470";
constexpr std::string_view kServicePath = "/peernet.PeerNetService/";
constexpr std::string_view kMediaType = "application/proto";
constexpr std::chrono::milliseconds kDefaultTimeout{10'000};
/// Idle kept-alive connections held for reuse; more than a few would only pin daemon sockets.
constexpr std::size_t kMaxIdleConnections = 4;
/// Far beyond any peernetd response; a bigger one is refused rather than buffered.
constexpr std::uint64_t kMaxResponseBytes = std::uint64_t{16} * 1024 * 1024;
/// How much of a non-JSON error body goes into a message.
constexpr std::size_t kMaxExcerpt = 200;
constexpr std::size_t kSha256HexDigits = 64;

// ---- URL parsing ----------------------------------------------------------------------------

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
}

/// The host as it goes into a URL or a Host header: IPv6 addresses in brackets.
std::string authority(const DaemonAddress& address) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return fmt::format("{}{}{}:{}", v6 ? "[" : "", address.host, v6 ? "]" : "", address.port);
}

// ---- Messages -------------------------------------------------------------------------------

/// At most kMaxExcerpt bytes of `text`, with control characters blanked, for an error message.
std::string excerpt(std::string_view text) {
  std::string out(text.substr(0, kMaxExcerpt));
  std::replace_if(
      out.begin(), out.end(), [](char c) { return std::iscntrl(static_cast<unsigned char>(c)); },
      ' ');
  if (text.size() > kMaxExcerpt) {
    out += "...";
  }
  return out;
}

/// An HTTP error status from peernetd as an Error: its JSON {"code", "message"} when the body is
/// one, else the reason phrase and the start of whatever the body is (a proxy's page, say).
Error daemon_error(unsigned status, std::string_view reason, std::string_view body) {
  std::string code;
  std::string message;
  const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object()) {
    if (auto it = json.find("code"); it != json.end() && it->is_string()) {
      code = it->get<std::string>();
    }
    if (auto it = json.find("message"); it != json.end() && it->is_string()) {
      message = it->get<std::string>();
    }
  } else {
    message = excerpt(body);
  }
  if (code.empty()) {
    code = reason.empty() ? std::string(http::obsolete_reason(http::int_to_status(status)))
                          : std::string(reason);
  }
  auto text = fmt::format("peernetd: {} {}", status, code);
  if (!message.empty()) {
    text += ": " + message;
  }
  return Error{status == 404 ? Errc::kNotFound : Errc::kDaemon, text};
}

/// "ab:CD:01" or "abcd01" to "abcd01".
std::string normalize_fingerprint(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c != ':') {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

/// The SHA-256 of a certificate's DER as lowercase hex without separators; empty on failure.
std::string fingerprint_of(X509* certificate) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (certificate == nullptr || X509_digest(certificate, EVP_sha256(), digest.data(), &size) != 1) {
    return {};
  }
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += fmt::format("{:02x}", digest.at(i));
  }
  return out;
}

/// "abcd.." as peernetd logs fingerprints: "AB:CD:...".
std::string colon_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i < hex.size(); ++i) {
    if (i > 0 && i % 2 == 0) {
      out += ':';
    }
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i])));
  }
  return out;
}

/// Tokens travel in a header: anything outside visible ASCII could split or forge one.
bool is_header_safe(std::string_view token) {
  return std::all_of(token.begin(), token.end(), [](char c) { return c > ' ' && c < '\x7f'; });
}

/// Errors on a kept-alive connection that mean the daemon closed it while it was idle.
bool is_closed_connection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == ssl::error::stream_truncated;
}

/// Why reading a reply failed, in words for the caller.
std::string read_failure(const beast::error_code& ec) {
  if (ec == http::error::end_of_stream || ec == asio::error::eof ||
      ec == ssl::error::stream_truncated) {
    return "the connection was closed before a reply";
  }
  if (ec == http::error::partial_message) {
    return "the connection was closed in the middle of the reply";
  }
  if (ec == http::error::body_limit) {
    return fmt::format("the reply is larger than {} bytes", kMaxResponseBytes);
  }
  return ec.message();
}

// ---- Connection -----------------------------------------------------------------------------

/// One HTTP/1.1 connection to peernetd, plain or TLS, with its read buffer.
class Connection {
 public:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  explicit Connection(const asio::any_io_executor& executor)
      : stream_(std::in_place_type<beast::tcp_stream>, executor) {}
  Connection(const asio::any_io_executor& executor, ssl::context& tls)
      : stream_(std::in_place_type<TlsStream>, executor, tls) {}

  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); },
                      stream_);
  }
  TlsStream* tls() { return std::get_if<TlsStream>(&stream_); }
  beast::flat_buffer& buffer() { return buffer_; }

  /// Calls `f` with the stream to read and write HTTP on.
  template <class F>
  void with_stream(F&& f) {
    std::visit(std::forward<F>(f), stream_);
  }

  /// Closes the socket at once; operations in progress complete with operation_aborted. No TLS
  /// close_notify: nothing is left to protect, and waiting for it would hold the call up.
  void close() { tcp().close(); }

 private:
  std::variant<beast::tcp_stream, TlsStream> stream_;
  beast::flat_buffer buffer_;
};

class Exchange;

// ---- Client ---------------------------------------------------------------------------------

/// Everything SignalingClient does, held by shared_ptr so that exchanges in flight keep it alive
/// after the SignalingClient is gone.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::any_io_executor executor, DaemonAddress address, TlsTrust trust);
  ~Client() { drop_idle(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const DaemonAddress& address() const { return address_; }
  const std::string& url() const { return url_; }
  const asio::any_io_executor& executor() const { return executor_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  std::uint64_t requests_sent() const { return requests_sent_.load(std::memory_order_relaxed); }
  void count_request() { requests_sent_.fetch_add(1, std::memory_order_relaxed); }

  /// Sends `request` to `method` and hands `handler` the parsed response or the error.
  template <class Response>
  void call(std::string_view method, const google::protobuf::Message& request,
            std::string_view token, std::uint32_t wait_seconds,
            SignalingClient::Handler<Response> handler);
  void cancel();

  // For exchanges.
  std::unique_ptr<Connection> take_idle();
  void release(std::unique_ptr<Connection> connection);
  void drop_idle();
  std::unique_ptr<Connection> new_connection();
  void prepare_tls(Connection::TlsStream& stream) const;
  /// Why the handshake's certificate is not acceptable, or nothing when it is.
  std::optional<std::string> check_pin(Connection::TlsStream& stream) const;
  void forget(std::uint64_t id) { in_flight_.erase(id); }

 private:
  void configure_tls();
  void start(std::string_view method, const google::protobuf::Message& request,
             std::string_view token, std::uint32_t wait_seconds, Completion completion);
  void post_error(Completion completion, Error error);

  asio::any_io_executor executor_;
  DaemonAddress address_;
  TlsTrust trust_;
  std::string url_;
  std::string host_header_;
  std::chrono::milliseconds timeout_ = kDefaultTimeout;
  // The TLS context outlives the connections made with it (the pool is declared after it).
  std::optional<ssl::context> tls_;
  std::string pin_;
  /// A TlsTrust that cannot be used; every call fails with it.
  std::optional<Error> setup_error_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::map<std::uint64_t, std::weak_ptr<Exchange>> in_flight_;
  std::uint64_t next_id_ = 1;
  std::atomic<std::uint64_t> requests_sent_{0};
};

// ---- Exchange -------------------------------------------------------------------------------

/// One call: an HTTP transaction on a pooled or new connection, retried once on a new one when a
/// kept-alive connection turns out to have been closed, all within one deadline.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<Client> client, std::uint64_t id, std::string_view method,
           http::request<http::string_body> request, std::chrono::milliseconds deadline,
           Completion completion)
      : client_(std::move(client)),
        id_(id),
        method_(method),
        request_(std::move(request)),
        deadline_(deadline),
        completion_(std::move(completion)),
        timer_(client_->executor()),
        resolver_(client_->executor()) {}

  void start();
  /// Ends the exchange with `error` unless it has ended; its handler is posted.
  void abort(Error error) { finish(std::move(error), /*post=*/true); }

 private:
  void attempt();
  void do_resolve();
  void on_resolve(const beast::error_code& ec, const tcp::resolver::results_type& endpoints);
  void on_connect(const beast::error_code& ec);
  void on_handshake(const beast::error_code& ec);
  void do_write();
  void on_write(const beast::error_code& ec);
  void on_read(const beast::error_code& ec);
  void on_deadline(const beast::error_code& ec);
  void retry(const beast::error_code& ec);
  void unreachable(std::string_view reason);
  Result<std::string> interpret(http::response<http::string_body>& response) const;
  void finish(Result<std::string> result, bool post);

  std::shared_ptr<Client> client_;
  std::uint64_t id_;
  std::string method_;
  http::request<http::string_body> request_;
  std::chrono::milliseconds deadline_;
  Completion completion_;
  asio::steady_timer timer_;
  tcp::resolver resolver_;
  std::unique_ptr<Connection> connection_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool reused_ = false;
  bool retried_ = false;
  bool done_ = false;
};

void Exchange::start() {
  timer_.expires_after(deadline_);
  timer_.async_wait(
      [self = shared_from_this()](const beast::error_code& ec) { self->on_deadline(ec); });
  attempt();
}

void Exchange::attempt() {
  connection_ = client_->take_idle();
  reused_ = connection_ != nullptr;
  if (reused_) {
    do_write();
  } else {
    do_resolve();
  }
}

void Exchange::do_resolve() {
  const auto& address = client_->address();
  resolver_.async_resolve(
      address.host, address.port,
      [self = shared_from_this()](const beast::error_code& ec,
                                  const tcp::resolver::results_type& endpoints) {
        self->on_resolve(ec, endpoints);
      });
}

void Exchange::on_resolve(const beast::error_code& ec,
                          const tcp::resolver::results_type& endpoints) {
  if (done_) {
    return;
  }
  if (ec) {
    unreachable(fmt::format("cannot resolve '{}': {}", client_->address().host, ec.message()));
    return;
  }
  connection_ = client_->new_connection();
  spdlog::debug("peernetd {}: connecting to {}", method_, client_->url());
  connection_->tcp().async_connect(
      endpoints, [self = shared_from_this()](const beast::error_code& error, const tcp::endpoint&) {
        self->on_connect(error);
      });
}

void Exchange::on_connect(const beast::error_code& ec) {
  if (done_) {
    return;
  }
  if (ec) {
    unreachable(ec.message());
    return;
  }
  beast::error_code ignored;
  // Requests are small and answered at once: no reason to let Nagle hold one back.
  connection_->tcp().socket().set_option(tcp::no_delay(true), ignored);
  if (auto* tls = connection_->tls()) {
    client_->prepare_tls(*tls);
    tls->async_handshake(
        ssl::stream_base::client,
        [self = shared_from_this()](const beast::error_code& error) { self->on_handshake(error); });
    return;
  }
  do_write();
}

void Exchange::on_handshake(const beast::error_code& ec) {
  if (done_) {
    return;
  }
  auto& tls = *connection_->tls();
  if (ec) {
    std::string why = ec.message();
    const long verify = SSL_get_verify_result(tls.native_handle());
    if (verify != X509_V_OK) {
      why += fmt::format(": {}", X509_verify_cert_error_string(verify));
    }
    unreachable("TLS handshake failed: " + why);
    return;
  }
  // Checked before a single byte of the request (and its token) is sent.
  if (auto problem = client_->check_pin(tls)) {
    unreachable(*problem);
    return;
  }
  do_write();
}

void Exchange::do_write() {
  connection_->buffer().clear();
  client_->count_request();
  spdlog::trace("peernetd {}: sending on a {} connection", method_, reused_ ? "reused" : "new");
  connection_->with_stream([this](auto& stream) {
    http::async_write(stream, request_,
                      [self = shared_from_this()](const beast::error_code& ec, std::size_t) {
                        self->on_write(ec);
                      });
  });
}

void Exchange::on_write(const beast::error_code& ec) {
  if (done_) {
    return;
  }
  if (ec) {
    if (reused_ && !retried_) {
      retry(ec);
      return;
    }
    unreachable(ec.message());
    return;
  }
  parser_.emplace();
  parser_->body_limit(kMaxResponseBytes);
  connection_->with_stream([this](auto& stream) {
    http::async_read(stream, connection_->buffer(), *parser_,
                     [self = shared_from_this()](const beast::error_code& error, std::size_t) {
                       self->on_read(error);
                     });
  });
}

void Exchange::on_read(const beast::error_code& ec) {
  if (done_) {
    return;
  }
  if (ec) {
    // Only when nothing of a response came back: then the daemon cannot have answered it.
    if (reused_ && !retried_ && !parser_->got_some() && is_closed_connection(ec)) {
      retry(ec);
      return;
    }
    unreachable(read_failure(ec));
    return;
  }
  auto response = parser_->release();
  parser_.reset();
  if (response.keep_alive()) {
    client_->release(std::move(connection_));
  } else {
    connection_->close();
    connection_.reset();
  }
  spdlog::trace("peernetd {}: HTTP {}", method_, response.result_int());
  finish(interpret(response), /*post=*/false);
}

void Exchange::on_deadline(const beast::error_code& ec) {
  if (ec == asio::error::operation_aborted || done_) {
    return;
  }
  unreachable(
      fmt::format("no reply within {:.1f} s", std::chrono::duration<double>(deadline_).count()));
}

void Exchange::retry(const beast::error_code& ec) {
  spdlog::debug("peernetd {}: the kept-alive connection was closed ({}); retrying on a new one",
                method_, ec.message());
  retried_ = true;
  // No operation is pending on it: the one that failed has just completed.
  connection_->close();
  connection_.reset();
  // The other idle connections are older than this one: the daemon has closed them too.
  client_->drop_idle();
  do_resolve();
}

void Exchange::unreachable(std::string_view reason) {
  spdlog::debug("peernetd {}: {} is unreachable: {}", method_, client_->url(), reason);
  finish(Error{Errc::kUnreachable,
               fmt::format("peernetd at {} is unreachable: {}", client_->url(), reason)},
         /*post=*/false);
}

Result<std::string> Exchange::interpret(http::response<http::string_body>& response) const {
  const unsigned status = response.result_int();
  if (status != 200) {
    return daemon_error(status, response.reason(), response.body());
  }
  // A 200 that is not protobuf (a captive portal's page, say) must not parse as a message.
  const auto type = response[http::field::content_type];
  if (!type.empty() && type.find("proto") == std::string_view::npos) {
    return Error{Errc::kDaemon,
                 fmt::format("peernetd: 200 with Content-Type '{}' instead of {} for {}",
                             excerpt(type), kMediaType, method_)};
  }
  return std::move(response.body());
}

void Exchange::finish(Result<std::string> result, bool post) {
  if (done_) {
    return;
  }
  done_ = true;
  timer_.cancel();
  resolver_.cancel();
  if (connection_) {
    // Failed or abandoned mid-request: the connection's state is unknown, so it goes. Pending
    // operations complete with operation_aborted; this object lives until they have.
    connection_->close();
  }
  client_->forget(id_);
  auto completion = std::move(completion_);
  if (post) {
    asio::post(client_->executor(),
               [completion = std::move(completion), result = std::move(result)]() mutable {
                 completion(std::move(result));
               });
  } else {
    completion(std::move(result));
  }
}

// ---- Client, continued ----------------------------------------------------------------------

Client::Client(asio::any_io_executor executor, DaemonAddress address, TlsTrust trust)
    : executor_(std::move(executor)),
      address_(std::move(address)),
      trust_(std::move(trust)),
      url_(address_.url()),
      host_header_(authority(address_)) {
  if (address_.tls) {
    configure_tls();
  }
}

void Client::configure_tls() {
  tls_.emplace(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
  tls_->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  beast::error_code ec;
  if (!trust_.pin_sha256.empty()) {
    pin_ = normalize_fingerprint(trust_.pin_sha256);
    const bool hex = std::all_of(pin_.begin(), pin_.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) != 0;
    });
    if (pin_.size() != kSha256HexDigits || !hex) {
      setup_error_ = Error{Errc::kInvalid,
                           "TlsTrust.pin_sha256: not a SHA-256 fingerprint (64 hex digits, colons "
                           "optional, as peernetd logs it)"};
    }
    // The pin replaces chain and name checks; it is compared right after the handshake.
    tls_->set_verify_mode(ssl::verify_none);
    return;
  }
  if (!trust_.ca_file.empty()) {
    tls_->load_verify_file(trust_.ca_file, ec);
    if (ec) {
      setup_error_ = Error{Errc::kInvalid, fmt::format("TlsTrust.ca_file: cannot load '{}': {}",
                                                       trust_.ca_file, ec.message())};
    }
  } else {
    tls_->set_default_verify_paths(ec);
    if (ec) {
      setup_error_ = Error{Errc::kInvalid,
                           fmt::format("TLS: cannot load the system's CA store: {}", ec.message())};
    }
  }
  tls_->set_verify_mode(ssl::verify_peer);
}

void Client::prepare_tls(Connection::TlsStream& stream) const {
  SSL* handle = stream.native_handle();
  const auto& host = address_.host;
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  const bool is_ip = !ec;
  if (!is_ip) {
    // SNI carries host names only (RFC 6066), never address literals.
    SSL_set_tlsext_host_name(handle, host.c_str());
  }
  if (pin_.empty()) {
    // OpenSSL checks the name during verification and reports a mismatch as the reason.
    X509_VERIFY_PARAM* param = SSL_get0_param(handle);
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    }
  }
}

std::optional<std::string> Client::check_pin(Connection::TlsStream& stream) const {
  if (pin_.empty()) {
    return std::nullopt;
  }
  const auto seen = fingerprint_of(SSL_get0_peer_certificate(stream.native_handle()));
  if (seen == pin_) {
    return std::nullopt;
  }
  if (seen.empty()) {
    return std::string("TLS: the daemon sent no certificate to check against the pinned one");
  }
  return fmt::format("TLS: the daemon's certificate has SHA-256 fingerprint {}, not the pinned {}",
                     colon_hex(seen), colon_hex(pin_));
}

std::unique_ptr<Connection> Client::take_idle() {
  if (idle_.empty()) {
    return nullptr;
  }
  // The most recently used one: the least likely to have been closed by the daemon.
  auto connection = std::move(idle_.back());
  idle_.pop_back();
  return connection;
}

void Client::release(std::unique_ptr<Connection> connection) {
  idle_.push_back(std::move(connection));
  if (idle_.size() > kMaxIdleConnections) {
    idle_.front()->close();
    idle_.erase(idle_.begin());
  }
}

void Client::drop_idle() {
  for (auto& connection : idle_) {
    connection->close();
  }
  idle_.clear();
}

std::unique_ptr<Connection> Client::new_connection() {
  if (tls_) {
    return std::make_unique<Connection>(executor_, *tls_);
  }
  return std::make_unique<Connection>(executor_);
}

void Client::post_error(Completion completion, Error error) {
  asio::post(executor_, [completion = std::move(completion), error = std::move(error)]() mutable {
    completion(std::move(error));
  });
}

void Client::start(std::string_view method, const google::protobuf::Message& request,
                   std::string_view token, std::uint32_t wait_seconds, Completion completion) {
  if (setup_error_) {
    post_error(std::move(completion), *setup_error_);
    return;
  }
  if (!is_header_safe(token)) {
    post_error(std::move(completion),
               Error{Errc::kInvalid, "the token has characters that cannot go in an HTTP header"});
    return;
  }
  std::string body;
  if (!request.SerializeToString(&body)) {
    post_error(std::move(completion),
               Error{Errc::kInvalid, fmt::format("cannot serialize the {} request", method)});
    return;
  }
  http::request<http::string_body> message{http::verb::post,
                                           fmt::format("{}{}", kServicePath, method), 11};
  message.set(http::field::host, host_header_);
  message.set(http::field::user_agent, "libpeernet");
  message.set(http::field::content_type, kMediaType);
  message.set(http::field::accept, kMediaType);
  // What the Connect protocol asks of clients; peernetd does not insist on it, proxies may.
  message.set("Connect-Protocol-Version", "1");
  if (!token.empty()) {
    message.set(http::field::authorization, fmt::format("Bearer {}", token));
  }
  message.keep_alive(true);
  message.body() = std::move(body);
  message.prepare_payload();

  const auto deadline = timeout_ + std::chrono::seconds{wait_seconds};
  const auto id = next_id_++;
  auto exchange = std::make_shared<Exchange>(shared_from_this(), id, method, std::move(message),
                                             deadline, std::move(completion));
  in_flight_.emplace(id, exchange);
  exchange->start();
}

template <class Response>
void Client::call(std::string_view method, const google::protobuf::Message& request,
                  std::string_view token, std::uint32_t wait_seconds,
                  SignalingClient::Handler<Response> handler) {
  auto parse = [handler = std::move(handler)](Result<std::string> body) {
    if (!body) {
      handler(std::move(body).error());
      return;
    }
    Response response;
    if (!response.ParseFromString(body.value())) {
      handler(Error{Errc::kDaemon,
                    fmt::format("peernetd: 200 but the body is not a valid {} ({} bytes)",
                                Response::descriptor()->full_name(), body.value().size())});
      return;
    }
    handler(std::move(response));
  };
  start(method, request, token, wait_seconds, std::move(parse));
}

void Client::cancel() {
  // Taken whole first: aborting an exchange erases it from in_flight_.
  auto calls = std::exchange(in_flight_, {});
  for (auto& [id, weak] : calls) {
    if (auto exchange = weak.lock()) {
      exchange->abort(Error{Errc::kClosed,
                            "the call was cancelled: the signaling client was cancelled or "
                            "destroyed"});
    }
  }
  drop_idle();
}

}  // namespace

// ---- DaemonAddress --------------------------------------------------------------------------

Result<DaemonAddress> DaemonAddress::parse(std::string_view url) {
  constexpr std::string_view kExpected = "expected http://host[:port] or https://host[:port]";
  auto refuse = [url, kExpected](std::string_view problem) -> Result<DaemonAddress> {
    return Error{Errc::kInvalid,
                 fmt::format("'{}' is not a peernetd URL: {} ({})", url, problem, kExpected)};
  };
  DaemonAddress out;
  std::string_view rest;
  if (starts_with_nocase(url, "http://")) {
    rest = url.substr(std::string_view("http://").size());
  } else if (starts_with_nocase(url, "https://")) {
    out.tls = true;
    rest = url.substr(std::string_view("https://").size());
  } else if (url.find("://") == std::string_view::npos) {
    return refuse("no scheme");
  } else {
    return refuse("the scheme is neither http nor https");
  }
  if (rest.find('@') != std::string_view::npos) {
    // Not echoed: the part before '@' may be a password.
    return Error{Errc::kInvalid,
                 fmt::format("a peernetd URL takes no user information (user@) ({})", kExpected)};
  }
  if (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (const auto at = rest.find_first_of("/?#"); at != std::string_view::npos) {
    return refuse(rest[at] == '/'   ? "a path is not allowed"
                  : rest[at] == '?' ? "a query is not allowed"
                                    : "a fragment is not allowed");
  }

  std::string_view host;
  std::optional<std::string_view> port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return refuse("the IPv6 address has no closing ']'");
    }
    host = rest.substr(1, close - 1);
    beast::error_code ec;
    asio::ip::make_address_v6(std::string(host), ec);
    if (ec) {
      return refuse(fmt::format("'{}' is not an IPv6 address", host));
    }
    const auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return refuse("only ':port' may follow the IPv6 address");
      }
      port = after.substr(1);
    }
  } else {
    const auto colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos) {
      return refuse("an IPv6 address goes in brackets, as in http://[::1]:8470");
    }
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
    }
    if (host.empty()) {
      return refuse("the host is empty");
    }
    if (!std::all_of(host.begin(), host.end(), is_host_char)) {
      return refuse(fmt::format("the host '{}' has characters a host name cannot have", host));
    }
  }
  if (host.empty()) {
    return refuse("the host is empty");
  }

  out.host = std::string(host);
  if (!port) {
    out.port = std::string(kDefaultPort);
    return out;
  }
  unsigned number = 0;
  const auto* first = port->data();
  const auto* last = port->data() + port->size();
  const auto [end, error] = std::from_chars(first, last, number);
  if (port->empty() || error != std::errc{} || end != last || number < 1 || number > 65535) {
    return refuse(fmt::format("the port '{}' is not a number from 1 to 65535", *port));
  }
  out.port = std::to_string(number);
  return out;
}

std::string DaemonAddress::url() const {
  return fmt::format("{}://{}", tls ? "https" : "http", authority(*this));
}

// ---- SignalingClient ------------------------------------------------------------------------

struct SignalingClient::Impl final : Client {
  using Client::Client;
};

SignalingClient::SignalingClient(boost::asio::any_io_executor executor, DaemonAddress address,
                                 TlsTrust trust)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(address), std::move(trust))) {}

SignalingClient::~SignalingClient() { impl_->cancel(); }

const DaemonAddress& SignalingClient::address() const { return impl_->address(); }

void SignalingClient::set_timeout(std::chrono::milliseconds timeout) {
  impl_->set_timeout(timeout);
}

void SignalingClient::create_server(const CreateServerRequest& request, std::string_view token,
                                    Handler<CreateServerResponse> handler) {
  impl_->call("CreateServer", request, token, 0, std::move(handler));
}

void SignalingClient::delete_server(const DeleteServerRequest& request, std::string_view token,
                                    Handler<DeleteServerResponse> handler) {
  impl_->call("DeleteServer", request, token, 0, std::move(handler));
}

void SignalingClient::list_servers(const ListServersRequest& request,
                                   Handler<ListServersResponse> handler) {
  impl_->call("ListServers", request, {}, 0, std::move(handler));
}

void SignalingClient::update_service(const UpdateServiceRequest& request, std::string_view token,
                                     Handler<UpdateServiceResponse> handler) {
  impl_->call("UpdateService", request, token, 0, std::move(handler));
}

void SignalingClient::list_knocks(const ListKnocksRequest& request, std::string_view token,
                                  Handler<ListKnocksResponse> handler) {
  impl_->call("ListKnocks", request, token, request.wait_seconds(), std::move(handler));
}

void SignalingClient::create_knock(const CreateKnockRequest& request,
                                   Handler<CreateKnockResponse> handler) {
  impl_->call("CreateKnock", request, {}, request.wait_seconds(), std::move(handler));
}

void SignalingClient::get_knock(const GetKnockRequest& request, std::string_view token,
                                Handler<Knock> handler) {
  impl_->call("GetKnock", request, token, request.wait_seconds(), std::move(handler));
}

void SignalingClient::update_knock(const UpdateKnockRequest& request, std::string_view token,
                                   Handler<UpdateKnockResponse> handler) {
  const std::uint32_t wait = request.has_next_poll() ? request.next_poll().wait_seconds() : 0;
  impl_->call("UpdateKnock", request, token, wait, std::move(handler));
}

void SignalingClient::delete_knock(const DeleteKnockRequest& request, std::string_view token,
                                   Handler<DeleteKnockResponse> handler) {
  impl_->call("DeleteKnock", request, token, 0, std::move(handler));
}

void SignalingClient::cancel() { impl_->cancel(); }

std::uint64_t SignalingClient::requests_sent() const { return impl_->requests_sent(); }

}  // namespace peernet::lib
