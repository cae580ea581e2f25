#include "sensors/sensor_service.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <span>
#include <stdexcept>
#include <utility>
#include <variant>

#include <spdlog/spdlog.h>

namespace peernet::sensors {
namespace {

/// Keep at most this much queued in a channel; refill when it falls to the low mark.
constexpr std::uint64_t kHighWater = std::uint64_t{1} << 20;
constexpr std::uint64_t kLowWater = std::uint64_t{256} << 10;
/// Live readings a subscriber has not taken yet; past this it is too slow and is let go.
constexpr std::size_t kMaxBacklogBytes = std::size_t{4} << 20;
/// History is encoded this many readings at a time, as the channel drains.
constexpr std::size_t kSliceReadings = 1000;
/// Channels served at once, over all connections.
constexpr std::size_t kMaxSessions = 64;

Millis system_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string text_of(std::span<const std::byte> message) {
  return {reinterpret_cast<const char*>(message.data()), message.size()};
}

}  // namespace

/// One "sensors" channel: its subscription, and what is still to be sent on it in order:
/// the history (encoded a slice at a time as the channel drains), "history-end", then live.
/// Channel calls happen with no lock held: from another thread they wait for the client's.
class SensorSession : public std::enable_shared_from_this<SensorSession> {
 public:
  SensorSession(SensorService& service, std::shared_ptr<Channel> channel, std::string peer,
                const Connection* connection)
      : service_(service),
        channel_(std::move(channel)),
        peer_(std::move(peer)),
        connection_(connection) {}

  void start() {
    std::weak_ptr<SensorSession> weak = weak_from_this();
    channel_->set_buffered_amount_low_threshold(kLowWater);
    channel_->on_buffered_amount_low([weak] {
      if (auto self = weak.lock()) {
        self->pump();
      }
    });
    channel_->on_message([weak](std::span<const std::byte> message, bool text) {
      if (auto self = weak.lock()) {
        self->on_message(message, text);
      }
    });
    channel_->on_close([weak] {
      if (auto self = weak.lock()) {
        self->mark_closed();
      }
    });
  }

  bool closed() const noexcept { return closed_; }
  void mark_closed() noexcept { closed_ = true; }
  const Connection* connection() const noexcept { return connection_; }
  const std::string& peer() const noexcept { return peer_; }

  /// Under the service's lock: what the subscriber will get, history first.
  void begin(std::vector<std::string> filter, std::string hello, std::vector<Reading> raw,
             std::vector<Rollup> rollups, Resolution resolution, bool live) {
    const std::lock_guard lock(mutex_);
    filter_ = std::move(filter);
    out_.push_back(std::move(hello));
    raw_ = std::move(raw);
    rollups_ = std::move(rollups);
    resolution_ = resolution;
    history_pending_ = true;
    live_ = live;
  }

  /// Under the service's lock, from the reading thread: one round for a live subscriber.
  void push_live(const std::vector<Reading>& readings) {
    const std::lock_guard lock(mutex_);
    if (!live_ || closed_) {
      return;
    }
    std::vector<Reading> wanted;
    for (const Reading& reading : readings) {
      if (filter_.empty() || std::ranges::find(filter_, reading.sensor) != filter_.end()) {
        wanted.push_back(reading);
      }
    }
    for (std::string& message : encode_readings(wanted, true)) {
      backlog_bytes_ += message.size();
      backlog_.push_back(std::move(message));
    }
    if (backlog_bytes_ > kMaxBacklogBytes) {
      backlog_.clear();
      backlog_bytes_ = 0;
      live_ = false;
      too_slow_ = true;
    }
  }

  /// Sends what is queued while the channel has room; one thread at a time sends, the others
  /// leave the work to it.
  void pump() {
    {
      const std::lock_guard lock(mutex_);
      if (pumping_ || closed_) {
        return;
      }
      pumping_ = true;
    }
    for (;;) {
      std::string message;
      bool give_up = false;
      {
        const std::lock_guard lock(mutex_);
        give_up = too_slow_;
        if (!give_up && !next(message)) {
          pumping_ = false;
          return;
        }
      }
      if (give_up) {
        spdlog::warn("{}: not taking its readings; closing its channel", peer_);
        mark_closed();
        channel_->close();
        return;
      }
      if (channel_->buffered_amount() > kHighWater) {
        {
          const std::lock_guard lock(mutex_);
          out_.push_front(std::move(message));
          pumping_ = false;
        }
        // The channel may have drained before the flag was down, its callback finding the pump
        // busy: look again.
        if (channel_->buffered_amount() > kLowWater) {
          return;
        }
        const std::lock_guard lock(mutex_);
        if (pumping_) {
          return;
        }
        pumping_ = true;
        continue;
      }
      if (!channel_->send_text(message)) {
        mark_closed();
        return;
      }
    }
  }

 private:
  /// The next message to send, in order; false when there is none. Under mutex_.
  bool next(std::string& message) {
    if (out_.empty() && history_pending_) {
      if (!raw_.empty() || !rollups_.empty()) {
        const std::size_t available = raw_.empty() ? rollups_.size() : raw_.size();
        const std::size_t count = std::min(available - position_, kSliceReadings);
        std::vector<std::string> encoded =
            raw_.empty()
                ? encode_rollups(resolution_, std::span(rollups_).subspan(position_, count))
                : encode_readings(std::span(raw_).subspan(position_, count), false);
        std::ranges::move(encoded, std::back_inserter(out_));
        position_ += count;
        if (position_ == available) {
          raw_ = {};
          rollups_ = {};
          position_ = 0;
        }
      }
      if (raw_.empty() && rollups_.empty()) {
        out_.push_back(encode(HistoryEnd{}));
        history_pending_ = false;
      }
    }
    if (out_.empty() && !history_pending_ && !backlog_.empty()) {
      message = std::move(backlog_.front());
      backlog_.pop_front();
      backlog_bytes_ -= message.size();
      return true;
    }
    if (out_.empty()) {
      return false;
    }
    message = std::move(out_.front());
    out_.pop_front();
    return true;
  }

  void on_message(std::span<const std::byte> message, bool text) {
    if (!text) {
      refuse("bad-request", "the sensor protocol sends text messages only");
      return;
    }
    Message decoded;
    try {
      decoded = decode(text_of(message));
    } catch (const WireError& error) {
      refuse("bad-request", error.what());
      return;
    }
    const auto* request = std::get_if<Subscribe>(&decoded);
    if (request == nullptr) {
      refuse("bad-request", "only \"subscribe\" is asked of a sensor server");
      return;
    }
    if (subscribed_) {
      refuse("bad-request", "this channel is subscribed already; open another to ask again");
      return;
    }
    for (const std::string& id : request->sensors) {
      const auto& known = service_.sensors();
      if (std::ranges::none_of(known, [&](const SensorInfo& s) { return s.id == id; })) {
        refuse("not-found", "no sensor \"" + id + "\" here");
        return;
      }
    }
    subscribed_ = true;
    service_.subscribe(*this, *request);
    pump();
  }

  void refuse(const std::string& code, const std::string& why) {
    spdlog::info("{}: refused a request: {}", peer_, why);
    {
      const std::lock_guard lock(mutex_);
      out_.push_back(encode(Failure{code, why}));
    }
    pump();
  }

  SensorService& service_;
  const std::shared_ptr<Channel> channel_;
  const std::string peer_;
  const Connection* const connection_;
  std::atomic<bool> closed_ = false;
  bool subscribed_ = false;  // the client's thread only

  std::mutex mutex_;
  bool pumping_ = false;
  std::deque<std::string> out_;
  std::vector<std::string> filter_;
  std::vector<Reading> raw_;
  std::vector<Rollup> rollups_;
  Resolution resolution_ = Resolution::kRaw;
  std::size_t position_ = 0;
  bool history_pending_ = false;
  bool live_ = false;
  bool too_slow_ = false;
  std::deque<std::string> backlog_;
  std::size_t backlog_bytes_ = 0;
};

SensorService::SensorService(std::vector<std::unique_ptr<Source>> sources, History& history,
                             Options options)
    : history_(history), options_(std::move(options)) {
  if (sources.empty()) {
    throw std::invalid_argument("a sensor service needs at least one sensor");
  }
  if (options_.interval <= 0) {
    throw std::invalid_argument("the interval between reads must be positive");
  }
  if (!options_.now) {
    options_.now = system_now;
  }
  for (auto& source : sources) {
    sensors_.push_back(source->info());
    sources_.push_back({std::move(source), false});
  }
}

SensorService::~SensorService() { stop(); }

void SensorService::start() {
  if (reader_.joinable()) {
    return;
  }
  reader_ = std::thread([this] {
    using std::chrono::milliseconds;
    std::unique_lock lock(wake_mutex_);
    while (!stopping_) {
      const Millis now = options_.now();
      const Millis next = (now / options_.interval + 1) * options_.interval;
      // The wall clock may jump; sleeping on the steady clock for the difference does not.
      wake_.wait_for(lock, milliseconds(next - now), [this] { return stopping_; });
      if (stopping_) {
        break;
      }
      lock.unlock();
      read_round(std::max(next, options_.now()));
      lock.lock();
    }
  });
}

void SensorService::stop() {
  {
    const std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (reader_.joinable()) {
    reader_.join();
  }
}

std::vector<Reading> SensorService::read_round(Millis now) {
  std::vector<Reading> readings;
  readings.reserve(sources_.size());
  for (Tracked& tracked : sources_) {
    const SensorInfo& info = tracked.source->info();
    ReadResult result = tracked.source->read(now);
    if (!result.value && !tracked.stale) {
      spdlog::warn("sensor {} ({}) is stale: {}", info.id, info.name, result.error);
    } else if (result.value && tracked.stale) {
      spdlog::info("sensor {} ({}) reads again", info.id, info.name);
    }
    tracked.stale = !result.value;
    readings.push_back({info.id, now, result.value});
  }
  std::vector<std::shared_ptr<SensorSession>> live;
  {
    const std::lock_guard lock(mutex_);
    for (const Reading& reading : readings) {
      history_.add(reading);
    }
    std::erase_if(sessions_, [](const auto& session) { return session->closed(); });
    live = sessions_;
    for (const auto& session : live) {
      session->push_live(readings);
    }
  }
  for (const auto& session : live) {
    session->pump();
  }
  // Forgetting what is past its keep time (and syncing the files) is an hourly chore.
  if (now - last_expiry_ >= kExpiryPeriod) {
    last_expiry_ = now;
    history_.expire(now);
  }
  return readings;
}

void SensorService::subscribe(SensorSession& session, const Subscribe& request) {
  Hello hello{{}, options_.interval};
  for (const SensorInfo& sensor : sensors_) {
    if (request.sensors.empty() ||
        std::ranges::find(request.sensors, sensor.id) != request.sensors.end()) {
      hello.sensors.push_back(sensor);
    }
  }
  const std::lock_guard lock(mutex_);
  std::vector<Reading> raw;
  std::vector<Rollup> rollups;
  Resolution resolution = Resolution::kRaw;
  if (request.history) {
    resolution = request.history->resolution;
    if (resolution == Resolution::kRaw) {
      raw = history_.raw(request.history->from, request.history->to, request.sensors);
    } else {
      rollups =
          history_.rollups(resolution, request.history->from, request.history->to, request.sensors);
    }
  }
  spdlog::info("{}: subscribed to {} sensors, {} {} of history{}", session.peer(),
               hello.sensors.size(), raw.empty() ? rollups.size() : raw.size(),
               raw.empty() && !rollups.empty() ? "rollups" : "readings",
               request.live ? ", then live" : "");
  session.begin(request.sensors, encode(hello), std::move(raw), std::move(rollups), resolution,
                request.live);
}

void SensorService::attach(const std::shared_ptr<Connection>& connection, const std::string& peer) {
  std::erase_if(connections_, [](const auto& open) { return !open->is_open(); });
  connections_.push_back(connection);
  const Connection* key = connection.get();
  // A connection that fails closes its channels without their close callbacks.
  connection->on_closed([this, key](const Error&) {
    const std::lock_guard lock(mutex_);
    for (const auto& session : sessions_) {
      if (session->connection() == key) {
        session->mark_closed();
      }
    }
  });
  connection->on_channel([this, peer, key](const std::shared_ptr<Channel>& channel) {
    if (channel->label() != kChannelLabel) {
      spdlog::info(R"({}: closing a channel labelled "{}", not "{}")", peer, channel->label(),
                   kChannelLabel);
      channel->close();
      return;
    }
    auto session = std::make_shared<SensorSession>(*this, channel, peer, key);
    {
      const std::lock_guard lock(mutex_);
      std::erase_if(sessions_, [](const auto& s) { return s->closed(); });
      if (sessions_.size() >= kMaxSessions) {
        spdlog::warn("{}: {} channels are served already; closing this one", peer, kMaxSessions);
        session.reset();
      } else {
        sessions_.push_back(session);
      }
    }
    if (!session) {
      channel->close();
      return;
    }
    session->start();
  });
}

std::size_t SensorService::subscribers() const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(
      std::ranges::count_if(sessions_, [](const auto& session) { return !session->closed(); }));
}

}  // namespace peernet::sensors
