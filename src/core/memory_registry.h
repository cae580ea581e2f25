#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/limits.h"
#include "core/registry.h"

namespace peernet::core {

/// The embedded registry: everything in memory behind one mutex, held only for the duration of
/// one operation (no I/O, no callbacks under it). Deadlines of servers and knocks share one
/// min-heap; an entry is re-checked when it comes due, so extending a deadline costs nothing.
class MemoryRegistry final : public Registry {
 public:
  MemoryRegistry(const Clock& clock, RegistryLimits limits);
  ~MemoryRegistry() override;
  MemoryRegistry(const MemoryRegistry&) = delete;
  MemoryRegistry& operator=(const MemoryRegistry&) = delete;

  Result<CreateRoomResponse> create_room(const Room& room) override;
  Result<Room> get_room(std::string_view room) override;
  Status delete_room(std::string_view room, std::string_view token) override;

  Result<Registered> register_server(const Server& server, std::string_view token) override;
  Result<Server> get_server(std::string_view server, std::string_view token) override;
  Status delete_server(std::string_view server, std::string_view token) override;
  Result<ListServersResponse> list_servers(const ListServersRequest& request) override;

  Result<Service> create_service(std::string_view server, std::string_view token,
                                 const Service& service) override;
  Result<Service> put_service(std::string_view server, std::string_view token,
                              const Service& service) override;
  Status delete_service(std::string_view server, std::string_view token,
                        std::string_view protocol) override;

  Result<CreateKnockResponse> create_knock(std::string_view server, const Knock& knock) override;
  Result<Knock> get_knock(std::string_view knock, std::string_view token,
                          std::uint64_t since) override;
  Result<KnockUpdate> update_knock(std::string_view knock, std::string_view token,
                                   const UpdateKnockRequest& update) override;
  Status delete_knock(std::string_view knock, std::string_view token) override;
  Result<ListKnocksResponse> list_knocks(std::string_view server, std::string_view token,
                                         std::uint64_t since) override;

  Result<Watch> watch_knocks(std::string_view server, std::string_view token, std::uint64_t since,
                             Waker waker) override;
  Result<Watch> watch_knock(std::string_view knock, std::string_view token, std::uint64_t since,
                            Waker waker) override;

  void expire(Clock::SteadyTime now) override;
  std::optional<Clock::SteadyTime> next_deadline() const override;
  void on_deadline_change(std::function<void()> listener) override;

  RegistryStats stats() const override;
  std::uint64_t listings_version() const override;

 protected:
  void unwatch(std::uint64_t id) override;

 private:
  using SteadyTime = Clock::SteadyTime;
  enum class Side { kKnocker, kServer };

  struct RoomEntry {
    std::string display_name;
    std::string token;  // empty for the default room, which cannot be deleted
    std::set<std::string> servers;
  };

  struct ServerEntry {
    std::string room;
    std::string display_name;
    std::string token;
    std::vector<Service> services;
    std::chrono::seconds ttl{0};
    SteadyTime deadline;
    SteadyTime queued = SteadyTime::max();  // when its entry in due_ comes up
    std::uint64_t seq = 0;                  // revision counter of this server's knocks
    std::uint64_t knock_rev = 0;            // last knock creation or change by a knocker
    // The server's knocks by their last change by the knocker (knocker_rev, unique within a
    // server): a poll visits only those changed after its `since`, never the finished ones
    // lingering for late candidates, however many a busy server has.
    std::map<std::uint64_t, std::string> knocks;
    std::size_t pending = 0;        // knocks not yet answered, rejected or expired
    int polls = 0;                  // long-polls in progress; a polling server does not expire
    std::uint64_t incarnation = 0;  // tells a re-registered id from the one deleted before it
  };

  struct Candidate {
    std::uint64_t rev = 0;
    IceCandidate candidate;
  };

  struct KnockEntry {
    std::string server;
    std::string token;
    std::string protocol;
    std::string version;
    std::string offer;
    std::string answer;
    std::string reason;
    KnockState state = KNOCK_STATE_PENDING;
    std::vector<Candidate> knocker_candidates;
    std::vector<Candidate> server_candidates;
    std::uint64_t created_rev = 0;
    std::uint64_t answer_rev = 0;
    std::uint64_t knocker_rev = 0;  // last change by the knocker
    std::uint64_t server_rev = 0;   // last change by the serving side (or expiry)
    Clock::SystemTime create_time;
    SteadyTime deadline;
    SteadyTime queued = SteadyTime::max();
    bool delivered = false;  // the knocker has seen the outcome
  };

  struct Due {
    SteadyTime at;
    bool is_knock = false;
    std::string id;
    bool operator>(const Due& other) const { return at > other.at; }
  };

  struct Waiter {
    std::uint64_t id = 0;
    Side side = Side::kServer;
    std::uint64_t since = 0;
    Waker waker;
  };

  struct WatchInfo {
    std::string topic;
    std::string polling_server;  // non-empty while it keeps a server alive
    std::uint64_t incarnation = 0;
  };

  /// Work that must run after the lock is released.
  struct After {
    std::vector<Waker> wakers;
    bool deadline_moved = false;
  };

  // Everything below runs with mutex_ held.
  Status authorize_server(std::string_view id, std::string_view token, ServerEntry** out);
  Result<Side> authorize_knock(std::string_view id, std::string_view token, KnockEntry** out);
  Status check_service(std::string_view field, const Service& service) const;
  Status check_candidates(std::string_view field,
                          const google::protobuf::RepeatedPtrField<IceCandidate>& candidates,
                          std::size_t already) const;
  void schedule(bool is_knock, const std::string& id, SteadyTime at, SteadyTime& queued,
                After& after);
  Server server_view(const std::string& id, const ServerEntry& entry, bool with_private) const;
  Knock knock_view(const std::string& id, const KnockEntry& entry, const ServerEntry& server,
                   Side side, std::uint64_t since) const;
  void remove_server(const std::string& id, After& after);
  void remove_knock(const std::string& id, After& after);
  void notify(const std::string& topic, After& after);
  std::uint64_t add_watch(std::string topic, Side side, std::uint64_t since, Waker waker,
                          std::string polling_server, std::uint64_t incarnation);
  void expire_server(const std::string& id, SteadyTime now, After& after);
  void expire_knock(const std::string& id, SteadyTime now, After& after);
  void mark_delivered(KnockEntry& knock, const std::string& id, After& after);
  static std::string server_topic(std::string_view id);
  static std::string knock_topic(std::string_view id);
  void run(After& after);

  const Clock& clock_;
  const RegistryLimits limits_;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, RoomEntry> rooms_;
  std::unordered_map<std::string, ServerEntry> servers_;
  std::unordered_map<std::string, KnockEntry> knocks_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  std::unordered_map<std::string, std::vector<Waiter>> waiting_;
  std::unordered_map<std::uint64_t, WatchInfo> watches_;
  std::uint64_t next_watch_id_ = 1;
  std::uint64_t next_incarnation_ = 1;
  std::uint64_t servers_expired_ = 0;
  std::uint64_t knocks_expired_ = 0;
  std::function<void()> deadline_listener_;
  /// Bumped under mutex_ by every change a room listing shows; read without it.
  std::atomic<std::uint64_t> listings_version_{0};
};

}  // namespace peernet::core
