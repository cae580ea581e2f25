#include "sensors/sensor_feed.h"

#include <string>
#include <utility>

namespace peernet::sensors {

/// What the client's thread hands to the waiting one: texts in order, then the end.
struct SensorFeed::Inbox {
  /// A server sending faster than it is read is not followed past this many bytes.
  static constexpr std::size_t kMaxQueuedBytes = std::size_t{16} << 20;

  std::mutex mutex;
  std::condition_variable arrived;
  std::deque<std::string> texts;
  std::size_t queued_bytes = 0;
  bool closed = false;
  std::string broken;  // why the feed stopped, when the server broke the protocol

  void push(std::string text) {
    {
      const std::lock_guard lock(mutex);
      if (closed) {
        return;
      }
      if (queued_bytes + text.size() > kMaxQueuedBytes) {
        broken = "the sensor server sends faster than its readings can be taken";
        closed = true;
      } else {
        queued_bytes += text.size();
        texts.push_back(std::move(text));
      }
    }
    arrived.notify_all();
  }
  void close(std::string why = {}) {
    {
      const std::lock_guard lock(mutex);
      if (broken.empty()) {
        broken = std::move(why);
      }
      closed = true;
    }
    arrived.notify_all();
  }
};

SensorFeed::SensorFeed(std::shared_ptr<Connection> connection, const Subscribe& request)
    : connection_(std::move(connection)), inbox_(std::make_shared<Inbox>()) {
  const auto channels = connection_->channels();
  if (channels.empty()) {
    throw Error(Errc::kInvalid, "the connection has no channel for sensors");
  }
  channel_ = channels.front();
  std::weak_ptr<Inbox> weak = inbox_;
  channel_->on_message([weak](std::span<const std::byte> bytes, bool text) {
    if (auto inbox = weak.lock()) {
      if (!text) {
        inbox->close("the sensor server sent a binary message");
        return;
      }
      inbox->push({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    }
  });
  channel_->on_close([weak] {
    if (auto inbox = weak.lock()) {
      inbox->close();
    }
  });
  connection_->on_closed([weak](const Error& /*why*/) {
    if (auto inbox = weak.lock()) {
      inbox->close();
    }
  });
  if (!channel_->is_open() || !channel_->send_text(encode(request))) {
    throw Error(Errc::kClosed, "the connection to the sensor server closed");
  }
}

SensorFeed::~SensorFeed() {
  channel_->on_message({});
  channel_->on_close({});
  connection_->on_closed({});
}

std::optional<Message> SensorFeed::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(inbox_->mutex);
  if (!inbox_->arrived.wait_for(lock, timeout,
                                [&] { return !inbox_->texts.empty() || inbox_->closed; })) {
    return std::nullopt;
  }
  if (!inbox_->broken.empty()) {
    throw WireError(inbox_->broken);
  }
  if (inbox_->texts.empty()) {
    throw Error(Errc::kClosed, "the connection to the sensor server closed");
  }
  const std::string text = std::move(inbox_->texts.front());
  inbox_->texts.pop_front();
  inbox_->queued_bytes -= text.size();
  lock.unlock();
  Message message = decode(text);
  if (std::holds_alternative<Subscribe>(message)) {
    throw WireError("the sensor server sent a subscription");
  }
  return message;
}

}  // namespace peernet::sensors
