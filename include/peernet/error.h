#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace peernet {

/// What went wrong, in terms a person can act on. Every error libpeernet reports carries one.
enum class Errc {
  kUnreachable,    ///< peernetd cannot be reached: refused, unresolvable, timed out
  kDaemon,         ///< peernetd answered with an error this library does not expect
  kRoomNotFound,   ///< the room does not exist on this peernetd
  kNoSuchService,  ///< no server in the room offers the protocol (and version) asked for
  kNotFound,       ///< a server or knock is gone: expired, deleted, or peernetd restarted
  kRefused,        ///< the serving side rejected the knock; the message has its reason
  kNoAnswer,       ///< nobody answered the knock in time
  kIceFailed,      ///< the peers found no network path to each other
  kClosed,         ///< the connection, channel or client was closed
  kInvalid,        ///< an argument the caller gave is not usable
};

/// A name for each code, for logs and messages ("unreachable", "ice-failed", ...).
std::string_view to_string(Errc code) noexcept;

/// The exception libpeernet's blocking calls throw, and what its callbacks receive.
class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace peernet
