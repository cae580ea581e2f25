#include "peernet/error.h"

namespace peernet {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::kUnreachable:
      return "unreachable";
    case Errc::kDaemon:
      return "daemon-error";
    case Errc::kRoomNotFound:
      return "room-not-found";
    case Errc::kNoSuchService:
      return "no-such-service";
    case Errc::kNotFound:
      return "not-found";
    case Errc::kRefused:
      return "refused";
    case Errc::kNoAnswer:
      return "no-answer";
    case Errc::kIceFailed:
      return "ice-failed";
    case Errc::kClosed:
      return "closed";
    case Errc::kInvalid:
      return "invalid";
  }
  return "unknown";
}

}  // namespace peernet
