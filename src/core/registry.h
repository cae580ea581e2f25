#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/api_error.h"
#include "core/clock.h"
#include "peernet.pb.h"

namespace peernet::core {

class Registry;

/// Called once when a watched thing changes or disappears. It runs on whatever thread made the
/// change, after the registry's lock is released, so it must only schedule work (post).
using Waker = std::function<void()>;

/// A pending long-poll's interest in a change. Dropping it cancels the interest; while a watch on
/// a server's knocks exists, the server counts as alive.
class Watch {
 public:
  Watch() = default;
  Watch(Registry* registry, std::uint64_t id) : registry_(registry), id_(id) {}
  Watch(Watch&& other) noexcept;
  Watch& operator=(Watch&& other) noexcept;
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  ~Watch();

  bool active() const { return registry_ != nullptr; }

 private:
  void reset();
  Registry* registry_ = nullptr;
  std::uint64_t id_ = 0;
};

/// A server registration's outcome: created, or refreshed by its owner.
struct Registered {
  CreateServerResponse response;
  bool created = false;
};

/// A knock as one side sees it, plus the server it belongs to.
struct KnockUpdate {
  Knock knock;
  std::string server;
};

/// Counts for /metrics.
struct RegistryStats {
  std::size_t rooms = 0;
  std::size_t servers = 0;
  std::size_t knocks = 0;
  std::size_t watches = 0;
  std::uint64_t servers_expired = 0;
  std::uint64_t knocks_expired = 0;
};

/// The state of peernetd: rooms, servers, services and knocks, with their tokens and lifetimes.
/// The in-memory registry is the embedded default; another backend (a store shared by several
/// daemons) implements the same interface. Every method is safe to call from any thread.
/// Tokens are passed as presented by the client (empty when none was); each method checks them.
class Registry {
 public:
  virtual ~Registry() = default;

  virtual Result<CreateRoomResponse> create_room(const Room& room) = 0;
  virtual Result<Room> get_room(std::string_view room) = 0;
  virtual Status delete_room(std::string_view room, std::string_view token) = 0;

  virtual Result<Registered> register_server(const Server& server, std::string_view token) = 0;
  virtual Result<Server> get_server(std::string_view server, std::string_view token) = 0;
  virtual Status delete_server(std::string_view server, std::string_view token) = 0;
  virtual Result<ListServersResponse> list_servers(const ListServersRequest& request) = 0;

  /// Adds a service; fails if the server already has one with that protocol.
  virtual Result<Service> create_service(std::string_view server, std::string_view token,
                                         const Service& service) = 0;
  /// Creates or replaces the service with that protocol.
  virtual Result<Service> put_service(std::string_view server, std::string_view token,
                                      const Service& service) = 0;
  virtual Status delete_service(std::string_view server, std::string_view token,
                                std::string_view protocol) = 0;

  virtual Result<CreateKnockResponse> create_knock(std::string_view server, const Knock& knock) = 0;
  /// The knock as the caller's side sees it: only what the other side added after `since`
  /// (everything when `since` is 0).
  virtual Result<Knock> get_knock(std::string_view knock, std::string_view token,
                                  std::uint64_t since) = 0;
  virtual Result<KnockUpdate> update_knock(std::string_view knock, std::string_view token,
                                           const UpdateKnockRequest& update) = 0;
  virtual Status delete_knock(std::string_view knock, std::string_view token) = 0;
  /// The server's open knocks with what the connecting sides added after `since`. Counts as the
  /// server's heartbeat.
  virtual Result<ListKnocksResponse> list_knocks(std::string_view server, std::string_view token,
                                                 std::uint64_t since) = 0;

  /// Wakes `waker` when a knock on `server` is created or changed by its knocker after `since`,
  /// or when the server goes away. Fires at once if that already happened.
  virtual Result<Watch> watch_knocks(std::string_view server, std::string_view token,
                                     std::uint64_t since, Waker waker) = 0;
  /// Wakes `waker` when the other side changes the knock after `since`, or when it goes away.
  virtual Result<Watch> watch_knock(std::string_view knock, std::string_view token,
                                    std::uint64_t since, Waker waker) = 0;

  /// Forgets what is past its deadline at `now`. The only way anything expires.
  virtual void expire(Clock::SteadyTime now) = 0;
  /// The earliest deadline, when there is one.
  virtual std::optional<Clock::SteadyTime> next_deadline() const = 0;
  /// Called (outside the lock) whenever the earliest deadline moves earlier, so a timer can be
  /// re-armed.
  virtual void on_deadline_change(std::function<void()> listener) = 0;

  virtual RegistryStats stats() const = 0;

  /// A number that changes whenever any list_servers() answer may have changed: a server
  /// registered, re-registered or gone, a service added, changed or removed, a room created or
  /// deleted. Read it before listing; a listing kept with the number it was read under is
  /// current while the number stays the same.
  virtual std::uint64_t listings_version() const = 0;

 protected:
  friend class Watch;
  virtual void unwatch(std::uint64_t id) = 0;
};

}  // namespace peernet::core
