#include "core/memory_registry.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/util/time_util.h>

#include "core/ids.h"

namespace peernet::core {
namespace {

using google::protobuf::util::TimeUtil;

constexpr std::size_t kMaxVersionLength = 64;

google::protobuf::Timestamp to_timestamp(Clock::SystemTime t) {
  return TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

Status check_text(std::string_view field, std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) {
    return ApiError::invalid(fmt::format("{}: {} bytes is over the limit of {} (max_text_bytes)",
                                         field, text.size(), max_bytes));
  }
  return ok_status();
}

ApiError no_server(std::string_view id) {
  return ApiError::not_found(
      fmt::format("server '{}' not found (never registered, deleted or expired)", id));
}

ApiError no_knock(std::string_view id) {
  return ApiError::not_found(
      fmt::format("knock '{}' not found (never created, deleted or expired)", id));
}

ApiError no_room(std::string_view id) {
  return ApiError::not_found(fmt::format("room '{}' not found", id));
}

Status check_token_present(std::string_view token) {
  if (token.empty()) {
    return ApiError::unauthenticated(
        "missing token: send the header 'Authorization: Bearer <token>'");
  }
  return ok_status();
}

bool is_open(KnockState state) {
  return state == KNOCK_STATE_PENDING || state == KNOCK_STATE_ANSWERED;
}

}  // namespace

// ---- Watch ----------------------------------------------------------------------------------

Watch::Watch(Watch&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), id_(other.id_) {}

Watch& Watch::operator=(Watch&& other) noexcept {
  if (this != &other) {
    reset();
    registry_ = std::exchange(other.registry_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

Watch::~Watch() { reset(); }

void Watch::reset() {
  if (registry_ != nullptr) {
    std::exchange(registry_, nullptr)->unwatch(id_);
  }
}

// ---- MemoryRegistry -------------------------------------------------------------------------

MemoryRegistry::MemoryRegistry(const Clock& clock, RegistryLimits limits)
    : clock_(clock), limits_(std::move(limits)) {
  if (!limits_.default_room.empty()) {
    rooms_[limits_.default_room].display_name = "Default room";
  }
}

MemoryRegistry::~MemoryRegistry() = default;

void MemoryRegistry::run(After& after) {
  for (auto& waker : after.wakers) {
    waker();
  }
  if (after.deadline_moved) {
    std::function<void()> listener;
    {
      std::lock_guard lock(mutex_);
      listener = deadline_listener_;
    }
    if (listener) {
      listener();
    }
  }
}

std::string MemoryRegistry::server_topic(std::string_view id) { return fmt::format("s/{}", id); }
std::string MemoryRegistry::knock_topic(std::string_view id) { return fmt::format("k/{}", id); }

void MemoryRegistry::schedule(bool is_knock, const std::string& id, SteadyTime at,
                              SteadyTime& queued, After& after) {
  if (at >= queued) {
    return;  // an earlier entry is queued; it re-queues itself when it finds the deadline later
  }
  const bool earliest = due_.empty() || at < due_.top().at;
  queued = at;
  due_.push(Due{at, is_knock, id});
  after.deadline_moved = after.deadline_moved || earliest;
}

Status MemoryRegistry::authorize_server(std::string_view id, std::string_view token,
                                        ServerEntry** out) {
  auto it = servers_.find(std::string(id));
  if (it == servers_.end()) {
    return no_server(id);
  }
  if (auto present = check_token_present(token); !present) {
    return present;
  }
  if (!tokens_equal(token, it->second.token)) {
    return ApiError::unauthenticated(fmt::format("the token is not server '{}''s token", id));
  }
  *out = &it->second;
  return ok_status();
}

Result<MemoryRegistry::Side> MemoryRegistry::authorize_knock(std::string_view id,
                                                             std::string_view token,
                                                             KnockEntry** out) {
  auto it = knocks_.find(std::string(id));
  if (it == knocks_.end()) {
    return no_knock(id);
  }
  if (auto present = check_token_present(token); !present) {
    return present.error();
  }
  *out = &it->second;
  if (tokens_equal(token, it->second.token)) {
    return Side::kKnocker;
  }
  const auto& server = servers_.at(it->second.server);
  if (tokens_equal(token, server.token)) {
    return Side::kServer;
  }
  return ApiError::unauthenticated(
      fmt::format("the token is neither knock '{}''s nor its server's token", id));
}

Status MemoryRegistry::check_service(std::string_view field, const Service& service) const {
  if (auto s =
          check_id(fmt::format("{}.protocol", field), service.protocol(), limits_.max_id_length);
      !s) {
    return s;
  }
  if (service.has_version() && !service.version().empty()) {
    if (auto s = check_id(fmt::format("{}.version", field), service.version(), kMaxVersionLength);
        !s) {
      return s;
    }
  }
  if (const auto size = service.ByteSizeLong(); size > limits_.max_service_bytes) {
    return ApiError::invalid(
        fmt::format("{}: {} bytes encoded is over the limit of {} (max_service_bytes)", field, size,
                    limits_.max_service_bytes));
  }
  return ok_status();
}

Status MemoryRegistry::check_candidates(
    std::string_view field, const google::protobuf::RepeatedPtrField<IceCandidate>& candidates,
    std::size_t already) const {
  if (already + candidates.size() > limits_.max_candidates_per_side) {
    return ApiError::limit(fmt::format(
        "{}: more than {} ICE candidates for one side of a knock (max_candidates_per_side)", field,
        limits_.max_candidates_per_side));
  }
  for (int i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    const auto size = c.candidate().size() + c.sdp_mid().size() + c.username_fragment().size();
    if (size > limits_.max_candidate_bytes) {
      return ApiError::invalid(
          fmt::format("{}[{}]: {} bytes is over the limit of {} (max_candidate_bytes)", field, i,
                      size, limits_.max_candidate_bytes));
    }
  }
  return ok_status();
}

// ---- rooms ----------------------------------------------------------------------------------

Result<CreateRoomResponse> MemoryRegistry::create_room(const Room& room) {
  if (auto s = check_text("room.display_name", room.display_name(), limits_.max_text_bytes); !s) {
    return s.error();
  }
  std::string id = room.unique_id();
  if (!id.empty()) {
    if (auto s = check_id("room.unique_id", id, limits_.max_id_length); !s) {
      return s.error();
    }
  }
  std::lock_guard lock(mutex_);
  if (rooms_.size() >= limits_.max_rooms) {
    return ApiError::limit(
        fmt::format("the daemon holds {} rooms, its limit (max_rooms)", limits_.max_rooms));
  }
  if (id.empty()) {
    id = random_id();
  }
  auto [it, inserted] = rooms_.try_emplace(id);
  if (!inserted) {
    return ApiError::already_exists(fmt::format("room '{}' already exists", id));
  }
  it->second.display_name = room.display_name();
  ++listings_version_;
  it->second.token = random_token();

  CreateRoomResponse response;
  response.mutable_room()->set_unique_id(id);
  if (!room.display_name().empty()) {
    response.mutable_room()->set_display_name(room.display_name());
  }
  response.set_token(it->second.token);
  return response;
}

Result<Room> MemoryRegistry::get_room(std::string_view id) {
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(std::string(id));
  if (it == rooms_.end()) {
    return no_room(id);
  }
  Room room;
  room.set_unique_id(std::string(id));
  if (!it->second.display_name.empty()) {
    room.set_display_name(it->second.display_name);
  }
  return room;
}

Status MemoryRegistry::delete_room(std::string_view id, std::string_view token) {
  After after;
  {
    std::lock_guard lock(mutex_);
    auto it = rooms_.find(std::string(id));
    if (it == rooms_.end()) {
      return no_room(id);
    }
    if (it->second.token.empty()) {
      return ApiError::invalid(
          fmt::format("room '{}' is the daemon's default room; it cannot be deleted", id));
    }
    if (auto present = check_token_present(token); !present) {
      return present;
    }
    if (!tokens_equal(token, it->second.token)) {
      return ApiError::unauthenticated(fmt::format("the token is not room '{}''s token", id));
    }
    const auto servers = std::move(it->second.servers);
    rooms_.erase(it);
    ++listings_version_;
    for (const auto& server : servers) {
      remove_server(server, after);
    }
  }
  run(after);
  return ok_status();
}

// ---- servers --------------------------------------------------------------------------------

Server MemoryRegistry::server_view(const std::string& id, const ServerEntry& entry,
                                   bool with_private) const {
  Server server;
  server.set_unique_id(id);
  if (!entry.display_name.empty()) {
    server.set_display_name(entry.display_name);
  }
  for (const auto& service : entry.services) {
    *server.add_services() = service;
  }
  if (with_private) {
    server.set_room(entry.room);
    server.set_ttl_seconds(static_cast<std::uint32_t>(entry.ttl.count()));
    const auto left = std::chrono::duration_cast<std::chrono::system_clock::duration>(
        entry.deadline - clock_.now());
    *server.mutable_expire_time() = to_timestamp(clock_.system_now() + left);
  }
  return server;
}

Result<Registered> MemoryRegistry::register_server(const Server& server, std::string_view token) {
  if (auto s = check_text("server.display_name", server.display_name(), limits_.max_text_bytes);
      !s) {
    return s.error();
  }
  if (!server.unique_id().empty()) {
    if (auto s = check_id("server.unique_id", server.unique_id(), limits_.max_id_length); !s) {
      return s.error();
    }
  }
  std::string room = server.room();
  if (room.empty()) {
    if (limits_.default_room.empty()) {
      return ApiError::invalid("server.room: required (this daemon has no default room)");
    }
    room = limits_.default_room;
  } else if (auto s = check_id("server.room", room, limits_.max_id_length); !s) {
    return s.error();
  }
  auto ttl = limits_.server_ttl_default;
  if (server.has_ttl_seconds() && server.ttl_seconds() != 0) {
    ttl = std::chrono::seconds{server.ttl_seconds()};
    if (ttl < limits_.server_ttl_min || ttl > limits_.server_ttl_max) {
      return ApiError::invalid(fmt::format("server.ttl_seconds: {} is outside the allowed {} to {}",
                                           server.ttl_seconds(), limits_.server_ttl_min.count(),
                                           limits_.server_ttl_max.count()));
    }
  }
  if (static_cast<std::size_t>(server.services_size()) > limits_.max_services_per_server) {
    return ApiError::limit(fmt::format(
        "server.services: {} services is over the limit of {} (max_services_per_server)",
        server.services_size(), limits_.max_services_per_server));
  }
  std::set<std::string_view> protocols;
  for (int i = 0; i < server.services_size(); ++i) {
    const auto& service = server.services(i);
    if (auto s = check_service(fmt::format("server.services[{}]", i), service); !s) {
      return s.error();
    }
    if (!protocols.insert(service.protocol()).second) {
      return ApiError::invalid(
          fmt::format("server.services[{}].protocol: '{}' appears twice", i, service.protocol()));
    }
  }

  After after;
  Registered result;
  {
    std::lock_guard lock(mutex_);
    auto room_it = rooms_.find(room);
    if (room_it == rooms_.end()) {
      return no_room(room);
    }
    std::string id = server.unique_id();
    ServerEntry* entry = nullptr;
    if (!id.empty()) {
      if (auto it = servers_.find(id); it != servers_.end()) {
        if (token.empty() || !tokens_equal(token, it->second.token)) {
          return ApiError::already_exists(
              fmt::format("server id '{}' is taken; re-registering it needs its token", id));
        }
        entry = &it->second;
      }
    }
    if (entry == nullptr) {
      if (servers_.size() >= limits_.max_servers) {
        return ApiError::limit(fmt::format("the daemon holds {} servers, its limit (max_servers)",
                                           limits_.max_servers));
      }
      if (room_it->second.servers.size() >= limits_.max_servers_per_room) {
        return ApiError::limit(
            fmt::format("room '{}' holds {} servers, the limit (max_servers_per_room)", room,
                        limits_.max_servers_per_room));
      }
      if (id.empty()) {
        id = random_id();
      }
      entry = &servers_[id];
      entry->token = random_token();
      entry->incarnation = next_incarnation_++;
      result.created = true;
    } else if (entry->room != room) {
      if (room_it->second.servers.size() >= limits_.max_servers_per_room) {
        return ApiError::limit(
            fmt::format("room '{}' holds {} servers, the limit (max_servers_per_room)", room,
                        limits_.max_servers_per_room));
      }
      rooms_.at(entry->room).servers.erase(id);
    }
    room_it->second.servers.insert(id);
    entry->room = room;
    entry->display_name = server.display_name();
    entry->services.assign(server.services().begin(), server.services().end());
    ++listings_version_;
    entry->ttl = ttl;
    entry->deadline = clock_.now() + ttl;
    schedule(false, id, entry->deadline, entry->queued, after);

    *result.response.mutable_server() = server_view(id, *entry, true);
    result.response.set_token(entry->token);
  }
  run(after);
  return result;
}

Result<Server> MemoryRegistry::get_server(std::string_view id, std::string_view token) {
  std::lock_guard lock(mutex_);
  ServerEntry* entry = nullptr;
  if (auto s = authorize_server(id, token, &entry); !s) {
    return s.error();
  }
  return server_view(std::string(id), *entry, true);
}

Status MemoryRegistry::delete_server(std::string_view id, std::string_view token) {
  After after;
  {
    std::lock_guard lock(mutex_);
    ServerEntry* entry = nullptr;
    if (auto s = authorize_server(id, token, &entry); !s) {
      return s;
    }
    remove_server(std::string(id), after);
  }
  run(after);
  return ok_status();
}

void MemoryRegistry::remove_server(const std::string& id, After& after) {
  auto it = servers_.find(id);
  if (it == servers_.end()) {
    return;
  }
  for (const auto& [rev, knock] : it->second.knocks) {
    knocks_.erase(knock);
    notify(knock_topic(knock), after);
  }
  if (auto room = rooms_.find(it->second.room); room != rooms_.end()) {
    room->second.servers.erase(id);
  }
  servers_.erase(it);
  ++listings_version_;
  notify(server_topic(id), after);
}

Result<ListServersResponse> MemoryRegistry::list_servers(const ListServersRequest& request) {
  if (auto s = check_id("room", request.room(), limits_.max_id_length); !s) {
    return s.error();
  }
  std::lock_guard lock(mutex_);
  auto room = rooms_.find(request.room());
  if (room == rooms_.end()) {
    return no_room(request.room());
  }
  ListServersResponse response;
  for (const auto& id : room->second.servers) {
    const auto& entry = servers_.at(id);
    if (!request.protocol().empty()) {
      const bool offers =
          std::any_of(entry.services.begin(), entry.services.end(), [&](const Service& s) {
            return s.protocol() == request.protocol() &&
                   (request.version().empty() || s.version() == request.version());
          });
      if (!offers) {
        continue;
      }
    }
    *response.add_servers() = server_view(id, entry, false);
  }
  return response;
}

// ---- services -------------------------------------------------------------------------------

Result<Service> MemoryRegistry::create_service(std::string_view server, std::string_view token,
                                               const Service& service) {
  if (auto s = check_service("service", service); !s) {
    return s.error();
  }
  std::lock_guard lock(mutex_);
  ServerEntry* entry = nullptr;
  if (auto s = authorize_server(server, token, &entry); !s) {
    return s.error();
  }
  for (const auto& existing : entry->services) {
    if (existing.protocol() == service.protocol()) {
      return ApiError::already_exists(fmt::format(
          "server '{}' already has a service '{}' (PUT replaces it)", server, service.protocol()));
    }
  }
  if (entry->services.size() >= limits_.max_services_per_server) {
    return ApiError::limit(
        fmt::format("server '{}' has {} services, the limit (max_services_per_server)", server,
                    limits_.max_services_per_server));
  }
  entry->services.push_back(service);
  ++listings_version_;
  return service;
}

Result<Service> MemoryRegistry::put_service(std::string_view server, std::string_view token,
                                            const Service& service) {
  if (auto s = check_service("service", service); !s) {
    return s.error();
  }
  std::lock_guard lock(mutex_);
  ServerEntry* entry = nullptr;
  if (auto s = authorize_server(server, token, &entry); !s) {
    return s.error();
  }
  for (auto& existing : entry->services) {
    if (existing.protocol() == service.protocol()) {
      existing = service;
      ++listings_version_;
      return service;
    }
  }
  if (entry->services.size() >= limits_.max_services_per_server) {
    return ApiError::limit(
        fmt::format("server '{}' has {} services, the limit (max_services_per_server)", server,
                    limits_.max_services_per_server));
  }
  entry->services.push_back(service);
  ++listings_version_;
  return service;
}

Status MemoryRegistry::delete_service(std::string_view server, std::string_view token,
                                      std::string_view protocol) {
  std::lock_guard lock(mutex_);
  ServerEntry* entry = nullptr;
  if (auto s = authorize_server(server, token, &entry); !s) {
    return s;
  }
  auto it = std::find_if(entry->services.begin(), entry->services.end(),
                         [&](const Service& s) { return s.protocol() == protocol; });
  if (it == entry->services.end()) {
    return ApiError::not_found(fmt::format("server '{}' has no service '{}'", server, protocol));
  }
  entry->services.erase(it);
  ++listings_version_;
  return ok_status();
}

// ---- knocks ---------------------------------------------------------------------------------

Knock MemoryRegistry::knock_view(const std::string& id, const KnockEntry& entry,
                                 const ServerEntry& server, Side side, std::uint64_t since) const {
  // A `since` from before a restart of the daemon (or of the server's registration) is newer
  // than anything here: treat it as "everything".
  if (since > server.seq) {
    since = 0;
  }
  const bool full = since == 0;
  Knock knock;
  knock.set_unique_id(id);
  knock.set_server(entry.server);
  knock.set_protocol(entry.protocol);
  if (!entry.version.empty()) {
    knock.set_version(entry.version);
  }
  knock.set_state(entry.state);
  if (!entry.reason.empty()) {
    knock.set_reason(entry.reason);
  }
  *knock.mutable_create_time() = to_timestamp(entry.create_time);
  const auto left = std::chrono::duration_cast<std::chrono::system_clock::duration>(entry.deadline -
                                                                                    clock_.now());
  *knock.mutable_expire_time() = to_timestamp(clock_.system_now() + left);
  knock.set_revision(server.seq);

  const bool mine_offer = side == Side::kKnocker;
  if (mine_offer ? full : entry.created_rev > since) {
    knock.set_offer(entry.offer);
  }
  if (!entry.answer.empty() && (mine_offer ? entry.answer_rev > since : full)) {
    knock.set_answer(entry.answer);
  }
  for (const auto& c : entry.knocker_candidates) {
    if (mine_offer ? full : c.rev > since) {
      *knock.add_ice_candidates() = c.candidate;
    }
  }
  for (const auto& c : entry.server_candidates) {
    if (mine_offer ? c.rev > since : full) {
      *knock.add_server_ice_candidates() = c.candidate;
    }
  }
  return knock;
}

Result<CreateKnockResponse> MemoryRegistry::create_knock(std::string_view server,
                                                         const Knock& knock) {
  if (auto s = check_id("knock.protocol", knock.protocol(), limits_.max_id_length); !s) {
    return s.error();
  }
  if (!knock.version().empty()) {
    if (auto s = check_id("knock.version", knock.version(), kMaxVersionLength); !s) {
      return s.error();
    }
  }
  if (knock.offer().empty()) {
    return ApiError::malformed("knock.offer: required (the connecting side's SDP offer)");
  }
  if (knock.offer().size() > limits_.max_sdp_bytes) {
    return ApiError::invalid(
        fmt::format("knock.offer: {} bytes is over the SDP limit of {} (max_sdp_bytes)",
                    knock.offer().size(), limits_.max_sdp_bytes));
  }
  if (knock.has_answer() || knock.server_ice_candidates_size() > 0) {
    return ApiError::invalid(
        "knock.answer, knock.server_ice_candidates: set by the serving side, not by a knock");
  }
  if (auto s = check_candidates("knock.ice_candidates", knock.ice_candidates(), 0); !s) {
    return s.error();
  }

  After after;
  CreateKnockResponse response;
  {
    std::lock_guard lock(mutex_);
    auto server_it = servers_.find(std::string(server));
    if (server_it == servers_.end()) {
      return no_server(server);
    }
    auto& srv = server_it->second;
    const bool offered =
        std::any_of(srv.services.begin(), srv.services.end(), [&](const Service& s) {
          return s.protocol() == knock.protocol() &&
                 (knock.version().empty() || s.version() == knock.version());
        });
    if (!offered) {
      return ApiError::not_found(fmt::format(
          "server '{}' offers no service '{}'{}", server, knock.protocol(),
          knock.version().empty() ? "" : fmt::format(" version '{}'", knock.version())));
    }
    if (srv.pending >= limits_.max_pending_knocks_per_server) {
      return ApiError::limit(fmt::format(
          "server '{}' has {} unanswered knocks, the limit (max_pending_knocks_per_server)", server,
          limits_.max_pending_knocks_per_server));
    }
    std::string id = random_id();
    auto& entry = knocks_[id];
    const auto rev = ++srv.seq;
    entry.server = std::string(server);
    entry.token = random_token();
    entry.protocol = knock.protocol();
    entry.version = knock.version();
    entry.offer = knock.offer();
    entry.created_rev = rev;
    entry.knocker_rev = rev;
    for (const auto& c : knock.ice_candidates()) {
      entry.knocker_candidates.push_back({rev, c});
    }
    entry.create_time = clock_.system_now();
    entry.deadline = clock_.now() + limits_.knock_ttl;
    schedule(true, id, entry.deadline, entry.queued, after);
    srv.knocks.emplace(rev, id);
    ++srv.pending;
    srv.knock_rev = rev;
    notify(server_topic(server), after);

    *response.mutable_knock() = knock_view(id, entry, srv, Side::kKnocker, 0);
    response.set_token(entry.token);
  }
  run(after);
  return response;
}

void MemoryRegistry::mark_delivered(KnockEntry& knock, const std::string& id, After& after) {
  if (knock.delivered || knock.state == KNOCK_STATE_PENDING) {
    return;
  }
  knock.delivered = true;
  knock.deadline = std::min(knock.deadline, clock_.now() + limits_.knock_linger);
  schedule(true, id, knock.deadline, knock.queued, after);
}

Result<Knock> MemoryRegistry::get_knock(std::string_view id, std::string_view token,
                                        std::uint64_t since) {
  After after;
  Knock knock;
  {
    std::lock_guard lock(mutex_);
    KnockEntry* entry = nullptr;
    auto side = authorize_knock(id, token, &entry);
    if (!side) {
      return std::move(side).error();
    }
    const std::string key(id);
    const auto& server = servers_.at(entry->server);
    knock = knock_view(key, *entry, server, *side, since);
    if (*side == Side::kKnocker) {
      mark_delivered(*entry, key, after);
    }
  }
  run(after);
  return knock;
}

Result<KnockUpdate> MemoryRegistry::update_knock(std::string_view id, std::string_view token,
                                                 const UpdateKnockRequest& update) {
  if (update.has_answer() && update.reject()) {
    return ApiError::invalid("answer, reject: a knock is answered or rejected, not both");
  }
  if (update.has_reason() && !update.reject()) {
    return ApiError::invalid("reason: only goes with reject");
  }
  if (update.has_answer() && update.answer().empty()) {
    return ApiError::invalid("answer: must not be empty (the serving side's SDP answer)");
  }
  if (update.answer().size() > limits_.max_sdp_bytes) {
    return ApiError::invalid(
        fmt::format("answer: {} bytes is over the SDP limit of {} (max_sdp_bytes)",
                    update.answer().size(), limits_.max_sdp_bytes));
  }
  if (auto s = check_text("reason", update.reason(), limits_.max_text_bytes); !s) {
    return s.error();
  }

  After after;
  KnockUpdate result;
  {
    std::lock_guard lock(mutex_);
    KnockEntry* entry = nullptr;
    auto side = authorize_knock(id, token, &entry);
    if (!side) {
      return std::move(side).error();
    }
    const std::string key(id);
    auto& server = servers_.at(entry->server);
    const bool is_server = *side == Side::kServer;
    auto& own = is_server ? entry->server_candidates : entry->knocker_candidates;
    if (auto s = check_candidates("ice_candidates", update.ice_candidates(), own.size()); !s) {
      return s.error();
    }
    if (update.has_next_poll() && !update.next_poll().server().empty() &&
        update.next_poll().server() != entry->server) {
      return ApiError::invalid(fmt::format("next_poll.server: '{}' is not the knock's server '{}'",
                                           update.next_poll().server().substr(0, 128),
                                           entry->server));
    }
    if (!is_server && update.has_next_poll()) {
      return ApiError::unauthenticated(
          "next_poll: only the serving side (with the server's token) polls for knocks");
    }
    if (!is_server && (update.has_answer() || update.reject())) {
      return ApiError::unauthenticated(
          "answer, reject: only the serving side (with the server's token) answers a knock");
    }
    if (!is_open(entry->state) && update.ice_candidates_size() > 0) {
      return ApiError::invalid(
          fmt::format("ice_candidates: knock '{}' is {}; it takes no more candidates", id,
                      KnockState_Name(entry->state)));
    }
    if (update.has_answer() || update.reject()) {
      if (entry->state != KNOCK_STATE_PENDING) {
        const bool same = entry->state == KNOCK_STATE_ANSWERED && update.answer() == entry->answer;
        if (!same) {
          return ApiError::invalid(
              fmt::format("knock '{}' is already {}", id, KnockState_Name(entry->state)));
        }
      }
    }
    const bool changes =
        update.ice_candidates_size() > 0 ||
        ((update.has_answer() || update.reject()) && entry->state == KNOCK_STATE_PENDING);
    if (changes) {
      const auto rev = ++server.seq;
      for (const auto& c : update.ice_candidates()) {
        own.push_back({rev, c});
      }
      if (update.has_answer() && entry->state == KNOCK_STATE_PENDING) {
        entry->answer = update.answer();
        entry->answer_rev = rev;
        entry->state = KNOCK_STATE_ANSWERED;
        --server.pending;
      } else if (update.reject() && entry->state == KNOCK_STATE_PENDING) {
        entry->state = KNOCK_STATE_REJECTED;
        entry->reason = update.reason();
        --server.pending;
      }
      if (is_server) {
        entry->server_rev = rev;
      } else {
        server.knocks.erase(entry->knocker_rev);
        server.knocks.emplace(rev, key);
        entry->knocker_rev = rev;
        server.knock_rev = rev;
        notify(server_topic(entry->server), after);
      }
      if (entry->delivered) {
        // Trickling after the outcome keeps the knock around a little longer.
        entry->deadline = std::max(entry->deadline, clock_.now() + limits_.knock_linger);
      }
      notify(knock_topic(key), after);
    }
    result.server = entry->server;
    result.knock = knock_view(key, *entry, server, *side, 0);
  }
  run(after);
  return result;
}

Status MemoryRegistry::delete_knock(std::string_view id, std::string_view token) {
  After after;
  {
    std::lock_guard lock(mutex_);
    KnockEntry* entry = nullptr;
    if (auto side = authorize_knock(id, token, &entry); !side) {
      return std::move(side).error();
    }
    remove_knock(std::string(id), after);
  }
  run(after);
  return ok_status();
}

void MemoryRegistry::remove_knock(const std::string& id, After& after) {
  auto it = knocks_.find(id);
  if (it == knocks_.end()) {
    return;
  }
  if (auto server = servers_.find(it->second.server); server != servers_.end()) {
    server->second.knocks.erase(it->second.knocker_rev);
    if (it->second.state == KNOCK_STATE_PENDING) {
      --server->second.pending;
    }
  }
  knocks_.erase(it);
  notify(knock_topic(id), after);
}

Result<ListKnocksResponse> MemoryRegistry::list_knocks(std::string_view id, std::string_view token,
                                                       std::uint64_t since) {
  After after;
  ListKnocksResponse response;
  {
    std::lock_guard lock(mutex_);
    ServerEntry* server = nullptr;
    if (auto s = authorize_server(id, token, &server); !s) {
      return s.error();
    }
    server->deadline = clock_.now() + server->ttl;
    const std::string key(id);
    schedule(false, key, server->deadline, server->queued, after);
    if (since > server->seq) {
      since = 0;
    }
    for (auto it = server->knocks.upper_bound(since); it != server->knocks.end(); ++it) {
      const auto& knock_id = it->second;
      const auto& knock = knocks_.at(knock_id);
      if (is_open(knock.state)) {
        *response.add_knocks() = knock_view(knock_id, knock, *server, Side::kServer, since);
      }
    }
    response.set_revision(server->seq);
  }
  run(after);
  return response;
}

// ---- watches --------------------------------------------------------------------------------

std::uint64_t MemoryRegistry::add_watch(std::string topic, Side side, std::uint64_t since,
                                        Waker waker, std::string polling_server,
                                        std::uint64_t incarnation) {
  const auto id = next_watch_id_++;
  waiting_[topic].push_back(Waiter{id, side, since, std::move(waker)});
  watches_.emplace(id, WatchInfo{std::move(topic), std::move(polling_server), incarnation});
  return id;
}

Result<Watch> MemoryRegistry::watch_knocks(std::string_view id, std::string_view token,
                                           std::uint64_t since, Waker waker) {
  std::unique_lock lock(mutex_);
  ServerEntry* server = nullptr;
  if (auto s = authorize_server(id, token, &server); !s) {
    return s.error();
  }
  if (since > server->seq) {
    since = 0;
  }
  if (server->knock_rev > since) {
    // Already changed: wake at once, outside the lock. The caller re-queries.
    lock.unlock();
    waker();
    return Watch{};
  }
  ++server->polls;
  return Watch{this, add_watch(server_topic(id), Side::kServer, since, std::move(waker),
                               std::string(id), server->incarnation)};
}

Result<Watch> MemoryRegistry::watch_knock(std::string_view id, std::string_view token,
                                          std::uint64_t since, Waker waker) {
  std::unique_lock lock(mutex_);
  KnockEntry* entry = nullptr;
  auto side = authorize_knock(id, token, &entry);
  if (!side) {
    return std::move(side).error();
  }
  const auto& server = servers_.at(entry->server);
  if (since > server.seq) {
    since = 0;
  }
  const auto other_rev = *side == Side::kKnocker ? entry->server_rev : entry->knocker_rev;
  if (other_rev > since) {
    lock.unlock();
    waker();
    return Watch{};
  }
  return Watch{this, add_watch(knock_topic(id), *side, since, std::move(waker), {}, 0)};
}

void MemoryRegistry::notify(const std::string& topic, After& after) {
  auto it = waiting_.find(topic);
  if (it == waiting_.end()) {
    return;
  }
  auto& list = it->second;
  const bool is_knock = topic.front() == 'k';
  const std::string_view id = std::string_view(topic).substr(2);
  auto fired = [&](const Waiter& w) {
    if (is_knock) {
      auto knock = knocks_.find(std::string(id));
      if (knock == knocks_.end()) {
        return true;
      }
      const auto rev =
          w.side == Side::kKnocker ? knock->second.server_rev : knock->second.knocker_rev;
      return rev > w.since;
    }
    auto server = servers_.find(std::string(id));
    return server == servers_.end() || server->second.knock_rev > w.since;
  };
  auto keep = std::partition(list.begin(), list.end(), [&](const Waiter& w) { return !fired(w); });
  for (auto w = keep; w != list.end(); ++w) {
    after.wakers.push_back(std::move(w->waker));
  }
  list.erase(keep, list.end());
  if (list.empty()) {
    waiting_.erase(it);
  }
}

void MemoryRegistry::unwatch(std::uint64_t id) {
  After after;
  {
    std::lock_guard lock(mutex_);
    auto it = watches_.find(id);
    if (it == watches_.end()) {
      return;
    }
    if (auto list = waiting_.find(it->second.topic); list != waiting_.end()) {
      auto& waiters = list->second;
      waiters.erase(std::remove_if(waiters.begin(), waiters.end(),
                                   [&](const Waiter& w) { return w.id == id; }),
                    waiters.end());
      if (waiters.empty()) {
        waiting_.erase(list);
      }
    }
    if (!it->second.polling_server.empty()) {
      // The end of a long-poll is the server's latest sign of life.
      auto server = servers_.find(it->second.polling_server);
      if (server != servers_.end() && server->second.incarnation == it->second.incarnation) {
        --server->second.polls;
        server->second.deadline = clock_.now() + server->second.ttl;
        schedule(false, server->first, server->second.deadline, server->second.queued, after);
      }
    }
    watches_.erase(it);
  }
  run(after);
}

// ---- expiry ---------------------------------------------------------------------------------

void MemoryRegistry::expire(SteadyTime now) {
  After after;
  {
    std::lock_guard lock(mutex_);
    while (!due_.empty() && due_.top().at <= now) {
      Due due = due_.top();
      due_.pop();
      if (due.is_knock) {
        expire_knock(due.id, now, after);
      } else {
        expire_server(due.id, now, after);
      }
    }
  }
  run(after);
}

void MemoryRegistry::expire_server(const std::string& id, SteadyTime now, After& after) {
  auto it = servers_.find(id);
  if (it == servers_.end()) {
    return;
  }
  auto& server = it->second;
  server.queued = SteadyTime::max();
  if (server.polls > 0) {
    server.deadline = std::max(server.deadline, now + server.ttl);
  }
  if (server.deadline > now) {
    schedule(false, id, server.deadline, server.queued, after);
    return;
  }
  ++servers_expired_;
  remove_server(id, after);
}

void MemoryRegistry::expire_knock(const std::string& id, SteadyTime now, After& after) {
  auto it = knocks_.find(id);
  if (it == knocks_.end()) {
    return;
  }
  auto& knock = it->second;
  knock.queued = SteadyTime::max();
  if (knock.deadline > now) {
    schedule(true, id, knock.deadline, knock.queued, after);
    return;
  }
  if (knock.state == KNOCK_STATE_PENDING) {
    // Tell the knocker, then keep the tombstone briefly so its next read says why.
    ++knocks_expired_;
    auto& server = servers_.at(knock.server);
    knock.state = KNOCK_STATE_EXPIRED;
    --server.pending;
    knock.server_rev = ++server.seq;
    knock.deadline = now + limits_.knock_linger;
    schedule(true, id, knock.deadline, knock.queued, after);
    notify(knock_topic(id), after);
    return;
  }
  remove_knock(id, after);
}

std::optional<Clock::SteadyTime> MemoryRegistry::next_deadline() const {
  std::lock_guard lock(mutex_);
  if (due_.empty()) {
    return std::nullopt;
  }
  return due_.top().at;
}

void MemoryRegistry::on_deadline_change(std::function<void()> listener) {
  std::lock_guard lock(mutex_);
  deadline_listener_ = std::move(listener);
}

RegistryStats MemoryRegistry::stats() const {
  std::lock_guard lock(mutex_);
  RegistryStats stats;
  stats.rooms = rooms_.size();
  stats.servers = servers_.size();
  stats.knocks = knocks_.size();
  stats.watches = watches_.size();
  stats.servers_expired = servers_expired_;
  stats.knocks_expired = knocks_expired_;
  return stats;
}

std::uint64_t MemoryRegistry::listings_version() const { return listings_version_.load(); }

}  // namespace peernet::core
