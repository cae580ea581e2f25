#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "peernet.pb.h"
#include "result.h"

namespace peernet::lib {

/// Where peernetd is, from a URL: "http://host[:port]" or "https://host[:port]" (port 8470 when
/// absent; IPv6 hosts in brackets). A path, query, user or anything else is refused.
struct DaemonAddress {
  std::string host;
  std::string port;
  bool tls = false;

  static Result<DaemonAddress> parse(std::string_view url);
  /// Back to "http://host:port", for messages.
  std::string url() const;
};

/// How to trust an https:// peernetd. With neither set, the system's CA store is used.
struct TlsTrust {
  /// A PEM file of trusted certificates (peernetd's own self-signed one, for example).
  std::string ca_file;
  /// The SHA-256 fingerprint of the daemon's certificate, as peernetd logs it (hex, colons
  /// optional, any case). When set, a certificate with this fingerprint is accepted, whoever
  /// signed it, and no other.
  std::string pin_sha256;
};

/// peernetd's API, asynchronous, over HTTP/1.1 with binary protobuf (the Connect unary routes,
/// `POST /peernet.PeerNetService/<Method>`, `Content-Type: application/proto`).
///
/// Everything runs on `executor`, which must be single-threaded (an io_context run by one thread,
/// or a strand); every handler is called exactly once, on it, and never from inside the call
/// that started the request. Connections are kept alive and reused; a long-poll holds one for its
/// duration, so concurrent calls each get their own. A request on a kept-alive connection that
/// the daemon closed in the meantime is retried once on a new one.
///
/// Errors: a daemon that cannot be reached (refused, unresolvable, TLS failure, no reply within
/// the call's deadline) is Errc::kUnreachable with a message naming the URL and the reason; an
/// HTTP error is Errc::kNotFound for 404 and Errc::kDaemon otherwise, with peernetd's own
/// message ("peernetd: 409 already_exists: server 'cam': ...").
class SignalingClient {
 public:
  template <class T>
  using Handler = std::function<void(Result<T>)>;

  SignalingClient(boost::asio::any_io_executor executor, DaemonAddress address,
                  TlsTrust trust = {});
  /// Cancels what is in flight: pending handlers are called with Errc::kClosed.
  ~SignalingClient();
  SignalingClient(const SignalingClient&) = delete;
  SignalingClient& operator=(const SignalingClient&) = delete;

  const DaemonAddress& address() const;

  /// How long a call may take beyond its long-poll wait (default 10 s).
  void set_timeout(std::chrono::milliseconds timeout);

  /// `token` may be empty for the calls that need none; it is sent as `Authorization: Bearer`.
  void create_server(const CreateServerRequest& request, std::string_view token,
                     Handler<CreateServerResponse> handler);
  void delete_server(const DeleteServerRequest& request, std::string_view token,
                     Handler<DeleteServerResponse> handler);
  void list_servers(const ListServersRequest& request, Handler<ListServersResponse> handler);
  void update_service(const UpdateServiceRequest& request, std::string_view token,
                      Handler<UpdateServiceResponse> handler);
  void list_knocks(const ListKnocksRequest& request, std::string_view token,
                   Handler<ListKnocksResponse> handler);
  void create_knock(const CreateKnockRequest& request, Handler<CreateKnockResponse> handler);
  void get_knock(const GetKnockRequest& request, std::string_view token, Handler<Knock> handler);
  void update_knock(const UpdateKnockRequest& request, std::string_view token,
                    Handler<UpdateKnockResponse> handler);
  void delete_knock(const DeleteKnockRequest& request, std::string_view token,
                    Handler<DeleteKnockResponse> handler);

  /// Cancels every call in flight (handlers get Errc::kClosed) and closes idle connections.
  void cancel();

  /// HTTP requests sent so far (each one an HTTP transaction, retries included).
  std::uint64_t requests_sent() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace peernet::lib
