#include "camera/camera_service.h"

#include <algorithm>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "camera.pb.h"

namespace peernet::camera {
namespace {

/// The largest snapshot a viewer takes: an 8K JPEG at high quality stays well below.
constexpr std::size_t kMaxSnapshotBytes = std::size_t{32} * 1024 * 1024;
/// Bad requests a channel may make before it is closed.
constexpr int kMaxBadRequests = 16;
/// A snapshot is refused while this much is still queued on the channel.
constexpr std::uint64_t kMaxSnapshotBytesQueued = std::uint64_t{1} * 1024 * 1024;
/// How long a knock accepted by screen() holds its place among the viewers.
constexpr std::chrono::seconds kReservation{60};

std::int64_t ticks_now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

std::string error_message(std::string_view text) {
  return nlohmann::json{{"type", "error"}, {"message", text}}.dump();
}

}  // namespace

CameraService::CameraService(CameraSource& source, std::size_t max_viewers)
    : source_(source),
      max_viewers_(max_viewers),
      snapshot_thread_([this](const std::stop_token& stop) { run(stop); }) {}

CameraService::~CameraService() { stop(); }

void CameraService::stop() {
  snapshot_thread_.request_stop();
  wake_.notify_all();
  if (snapshot_thread_.joinable()) {
    snapshot_thread_.join();
  }
}

Service CameraService::describe() const {
  Service service;
  service.set_protocol(std::string(kProtocol));
  service.set_version(std::string(kVersion));
  const SourceInfo& info = source_.info();
  service.SetExtension(camera::codec, info.codec);
  service.SetExtension(camera::width, info.width);
  service.SetExtension(camera::height, info.height);
  service.SetExtension(camera::frame_rate, info.frame_rate);
  service.SetExtension(camera::snapshot, true);
  return service;
}

Verdict CameraService::screen(const Knock& /*knock*/) {
  const std::lock_guard lock(mutex_);
  // Knocks accepted and not yet open hold a place too, so that a burst of knocks cannot pass
  // the limit; a place not taken within kReservation (the connection failed) is free again.
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(reserved_, [&](const auto& at) { return now - at > kReservation; });
  if (viewers_locked() + reserved_.size() >= max_viewers_) {
    return Verdict::refused("the camera has " + std::to_string(max_viewers_) +
                            " viewers, its limit");
  }
  reserved_.push_back(now);
  return Verdict::accepted_with_video(VideoOut{[this] { source_.request_keyframe(); }});
}

std::size_t CameraService::viewers() const {
  const std::lock_guard lock(mutex_);
  return viewers_locked();
}

std::size_t CameraService::viewers_locked() const {
  return static_cast<std::size_t>(
      std::count_if(connections_.begin(), connections_.end(),
                    [](const Watched& watched) { return !watched.connection.expired(); }));
}

void CameraService::attach(const std::shared_ptr<Connection>& connection, const std::string& peer) {
  auto sender = connection->video_sender();
  if (!sender) {
    spdlog::info("{}: asked for no video; only snapshots", peer);
  } else {
    source_.attach(sender);
  }
  auto heard = std::make_shared<std::atomic<std::int64_t>>(ticks_now());
  {
    const std::lock_guard lock(mutex_);
    std::erase_if(connections_,
                  [](const Watched& watched) { return watched.connection.expired(); });
    connections_.push_back({connection, heard, peer});
    if (!reserved_.empty()) {
      reserved_.pop_front();  // the place its knock held
    }
  }
  connection->on_channel([this, peer, heard](const std::shared_ptr<Channel>& channel) {
    if (channel->label() != kChannelLabel) {
      spdlog::info("{}: closing a channel of another protocol", peer);
      channel->close();
      return;
    }
    const std::weak_ptr<Channel> weak = channel;
    {
      // Held until it closes: a channel nobody holds stops delivering messages.
      const std::lock_guard lock(mutex_);
      channels_.push_back(channel);
    }
    channel->on_close([this, weak] {
      const std::lock_guard lock(mutex_);
      std::erase_if(channels_, [&](const auto& held) { return weak.lock() == held; });
    });
    auto bad = std::make_shared<int>(0);
    channel->on_message(
        [this, weak, bad, peer, heard](std::span<const std::byte> bytes, bool text) {
          auto open = weak.lock();
          if (!open) {
            return;
          }
          heard->store(ticks_now());
          std::string kind;
          if (text) {
            const auto message = nlohmann::json::parse(
                std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                nullptr, false);
            if (message.is_object() && message.contains("type") && message["type"].is_string()) {
              kind = message["type"].get<std::string>();
            }
          }
          if (kind == "snapshot" && answer(weak)) {
            return;
          }
          if (kind == "ping") {
            return;
          }
          open->send_text(error_message(kind.empty() ? "expected a JSON object with a \"type\""
                                        : kind == "snapshot" ? "a snapshot is already on its way"
                                                             : "unknown request type: " + kind));
          if (++*bad >= kMaxBadRequests) {
            spdlog::info("{}: closing a channel after {} bad requests", peer, *bad);
            open->close();
          }
        });
  });
  // The connection stays open for as long as the peer keeps it: libpeernet holds it; when it
  // closes, its sender reports closed and the source lets it go.
  auto held = connection;
  connection->on_closed([this, held](const Error& /*why*/) mutable {
    const std::lock_guard lock(mutex_);
    std::erase_if(connections_,
                  [&](const Watched& watched) { return watched.connection.lock() == held; });
    // A connection that ends takes its channels with it, without a close callback for each.
    std::erase_if(channels_, [](const auto& channel) { return !channel->is_open(); });
    held.reset();
  });
}

bool CameraService::answer(const std::weak_ptr<Channel>& channel) {
  const std::lock_guard lock(mutex_);
  const auto same = [&](const std::weak_ptr<Channel>& queued) {
    return !queued.owner_before(channel) && !channel.owner_before(queued);
  };
  if (std::any_of(snapshot_queue_.begin(), snapshot_queue_.end(), same)) {
    return false;
  }
  snapshot_queue_.push_back(channel);
  wake_.notify_all();
  return true;
}

void CameraService::run(const std::stop_token& stop) {
  auto next_check = std::chrono::steady_clock::now() + std::chrono::seconds{1};
  while (!stop.stop_requested()) {
    if (std::chrono::steady_clock::now() >= next_check) {
      close_silent();  // on its own clock: snapshots asked for in a loop do not put it off
      next_check = std::chrono::steady_clock::now() + std::chrono::seconds{1};
    }
    std::weak_ptr<Channel> next;
    {
      std::unique_lock lock(mutex_);
      if (!wake_.wait_until(lock, stop, next_check, [this] { return !snapshot_queue_.empty(); })) {
        continue;
      }
      next = snapshot_queue_.front();
    }
    send_snapshot(next);
    const std::lock_guard lock(mutex_);
    snapshot_queue_.pop_front();
  }
}

void CameraService::send_snapshot(const std::weak_ptr<Channel>& to) {
  auto channel = to.lock();
  if (!channel) {
    return;
  }
  // A viewer that asks and does not read would grow the channel's buffer without end.
  if (channel->buffered_amount() > kMaxSnapshotBytesQueued) {
    channel->send_text(error_message("the last snapshot is still on its way"));
    return;
  }
  const auto jpeg = source_.snapshot();
  if (!jpeg) {
    channel->send_text(error_message("no frame to take a snapshot of yet"));
    return;
  }
  channel->send_text(nlohmann::json{{"type", "snapshot"}, {"bytes", jpeg->size()}}.dump());
  for (std::size_t at = 0; at < jpeg->size(); at += Channel::kMaxMessageBytes) {
    const std::size_t size = std::min(Channel::kMaxMessageBytes, jpeg->size() - at);
    if (!channel->send(std::span(*jpeg).subspan(at, size))) {
      return;
    }
  }
}

void CameraService::close_silent() {
  const auto limit = ticks_now() - std::chrono::steady_clock::duration(kSilenceLimit).count();
  std::vector<std::pair<std::shared_ptr<Connection>, std::string>> silent;
  {
    const std::lock_guard lock(mutex_);
    std::erase_if(connections_, [&](const Watched& watched) {
      if (watched.heard->load() >= limit) {
        return false;
      }
      if (auto connection = watched.connection.lock()) {
        silent.emplace_back(std::move(connection), watched.peer);
      }
      return true;
    });
  }
  // Outside the lock: close() waits for the client's thread, whose callbacks take it.
  for (const auto& [connection, peer] : silent) {
    spdlog::info("{}: nothing heard for {} s; closing", peer, kSilenceLimit.count());
    connection->close();
  }
  if (silent.empty()) {
    return;
  }
  std::vector<std::shared_ptr<Channel>> held;
  {
    const std::lock_guard lock(mutex_);
    held = channels_;
  }
  std::vector<Channel*> closed;
  for (const auto& channel : held) {
    if (!channel->is_open()) {
      closed.push_back(channel.get());
    }
  }
  const std::lock_guard lock(mutex_);
  std::erase_if(channels_, [&](const auto& channel) {
    return std::find(closed.begin(), closed.end(), channel.get()) != closed.end();
  });
}

KeepAlive::KeepAlive(std::shared_ptr<Channel> channel)
    : thread_([channel = std::move(channel)](const std::stop_token& stop) {
        std::mutex mutex;
        std::condition_variable_any tick;
        std::unique_lock lock(mutex);
        while (!tick.wait_for(lock, stop, kPingInterval, [] { return false; })) {
          if (stop.stop_requested() || !channel->send_text(R"({"type":"ping"})")) {
            return;
          }
        }
      }) {}

std::vector<std::byte> fetch_snapshot(Channel& channel, std::chrono::milliseconds timeout) {
  struct Inbox {
    std::mutex mutex;
    std::condition_variable changed;
    std::optional<std::size_t> expected;
    std::vector<std::byte> jpeg;
    std::optional<Error> failure;
    bool done = false;
  };
  auto inbox = std::make_shared<Inbox>();
  channel.on_message([inbox](std::span<const std::byte> bytes, bool text) {
    const std::lock_guard lock(inbox->mutex);
    if (inbox->done) {
      return;
    }
    if (text) {
      const auto message = nlohmann::json::parse(
          std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), nullptr,
          false);
      const auto type = message.is_object() ? message.value("type", std::string{}) : "";
      if (type == "snapshot" && message.contains("bytes") &&
          message["bytes"].is_number_unsigned() && !inbox->expected) {
        const auto size = message["bytes"].get<std::uint64_t>();
        if (size == 0 || size > kMaxSnapshotBytes) {
          inbox->failure = Error{Errc::kInvalid, "the camera announced a snapshot of " +
                                                     std::to_string(size) + " bytes"};
        } else {
          inbox->expected = static_cast<std::size_t>(size);
        }
      } else if (type == "error") {
        inbox->failure =
            Error{Errc::kRefused, "the camera said: " + message.value("message", std::string{})};
      } else {
        inbox->failure = Error{Errc::kInvalid, "the camera sent an unexpected message"};
      }
    } else if (inbox->expected && inbox->jpeg.size() + bytes.size() <= *inbox->expected) {
      inbox->jpeg.insert(inbox->jpeg.end(), bytes.begin(), bytes.end());
    } else {
      inbox->failure = Error{Errc::kInvalid, "the camera sent more than it announced"};
    }
    inbox->done =
        inbox->failure.has_value() || (inbox->expected && inbox->jpeg.size() == *inbox->expected);
    inbox->changed.notify_all();
  });
  channel.on_close([inbox] {
    const std::lock_guard lock(inbox->mutex);
    if (!inbox->done) {
      inbox->failure = Error{Errc::kClosed, "the camera closed the channel"};
      inbox->done = true;
      inbox->changed.notify_all();
    }
  });
  if (!channel.send_text(R"({"type":"snapshot"})")) {
    throw Error{Errc::kClosed, "the camera's channel is not open"};
  }
  std::unique_lock lock(inbox->mutex);
  if (!inbox->changed.wait_for(lock, timeout, [&] { return inbox->done; })) {
    inbox->done = true;
    throw Error{Errc::kNoAnswer, "no snapshot within " + std::to_string(timeout.count()) + " ms"};
  }
  if (inbox->failure) {
    throw *inbox->failure;
  }
  return std::move(inbox->jpeg);
}

}  // namespace peernet::camera
