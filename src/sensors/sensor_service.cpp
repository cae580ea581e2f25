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
/// History is read and encoded this many readings at a time, as the channel drains (more than
/// a round of reads of every sensor History can hold, so that a slice always moves on).
constexpr std::size_t kSliceReadings = 2048;
/// Channels served at once: over all connections, and per connection.
constexpr std::size_t kMaxSessions = 16;
constexpr std::size_t kMaxSessionsPerConnection = 4;
/// A channel that has not subscribed this long after it opened is closed.
constexpr auto kSubscribeWithin = std::chrono::seconds{10};
/// Bad requests a channel may make; the next one closes it.
constexpr int kMaxRefusals = 16;

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
  /// True for a channel that opened long ago and never subscribed.
  bool idle(std::chrono::steady_clock::time_point now) const noexcept {
    return !subscribed_ && now - opened_ > kSubscribeWithin;
  }
  void close() {
    mark_closed();
    channel_->close();
  }
  const Connection* connection() const noexcept { return connection_; }
  const std::string& peer() const noexcept { return peer_; }

  /// Under the service's lock: what the subscriber will get, history first. Raw history,
  /// [raw_from, raw_to), is read from `history` a slice at a time as the channel drains.
  void begin(std::vector<std::string> filter, std::string hello, const History* history,
             Millis raw_from, Millis raw_to, std::vector<Rollup> rollups, Resolution resolution,
             bool live) {
    const std::lock_guard lock(mutex_);
    filter_ = std::move(filter);
    out_.push_back(std::move(hello));
    history_ = history;
    raw_from_ = raw_from;
    raw_to_ = raw_to;
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
      fill_history();
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

  /// Queues the next slice of history, or "history-end" after the last. Under mutex_.
  void fill_history() {
    if (history_ != nullptr && raw_from_ < raw_to_) {
      std::vector<Reading> slice =
          history_->raw(raw_from_, raw_to_, filter_, kSliceReadings, History::Keep::kOldest);
      if (slice.size() == kSliceReadings) {
        // The readings of the slice's last moment may go on past it: they start the next one.
        raw_from_ = slice.back().time;
        std::erase_if(slice, [&](const Reading& r) { return r.time == raw_from_; });
      } else {
        raw_from_ = raw_to_;
      }
      if (!slice.empty()) {
        std::ranges::move(encode_readings(slice, false), std::back_inserter(out_));
      }
      if (raw_from_ < raw_to_) {
        return;
      }
    }
    if (position_ < rollups_.size()) {
      const std::size_t count = std::min(rollups_.size() - position_, kSliceReadings);
      std::ranges::move(encode_rollups(resolution_, std::span(rollups_).subspan(position_, count)),
                        std::back_inserter(out_));
      position_ += count;
      return;
    }
    rollups_ = {};
    out_.push_back(encode(HistoryEnd{}));
    history_pending_ = false;
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
    if (++refusals_ > kMaxRefusals) {
      spdlog::warn("{}: {} bad requests; closing its channel", peer_, kMaxRefusals);
      close();
      return;
    }
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
  const std::chrono::steady_clock::time_point opened_ = std::chrono::steady_clock::now();
  std::atomic<bool> closed_ = false;
  std::atomic<bool> subscribed_ = false;  // written on the client's thread only
  int refusals_ = 0;                      // the client's thread only

  std::mutex mutex_;
  bool pumping_ = false;
  std::deque<std::string> out_;
  std::vector<std::string> filter_;
  const History* history_ = nullptr;
  Millis raw_from_ = 0;
  Millis raw_to_ = 0;
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
    options_.now = wall_clock;
  }
  for (auto& source : sources) {
    sensors_.push_back(source->info());
    sources_.push_back({std::move(source), false, std::nullopt});
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
    if (tracked.last_read && now - *tracked.last_read < tracked.source->min_period()) {
      continue;  // it would only repeat what it said last time, as if new
    }
    tracked.last_read = now;
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
  std::vector<std::shared_ptr<SensorSession>> idle;
  {
    const std::lock_guard lock(mutex_);
    for (const Reading& reading : readings) {
      if (!history_.add(reading) && !clock_warned_) {
        clock_warned_ = true;
        spdlog::warn(
            "a reading of {} at {} ms is not newer than its last one: did the clock go "
            "back? Live readings go on; history skips these",
            reading.sensor, reading.time);
      }
    }
    last_round_ = now;
    std::erase_if(sessions_, [](const auto& session) { return session->closed(); });
    const auto steady = std::chrono::steady_clock::now();
    for (const auto& session : sessions_) {
      (session->idle(steady) ? idle : live).push_back(session);
    }
    for (const auto& session : live) {
      session->push_live(readings);
    }
  }
  for (const auto& session : idle) {
    spdlog::info("{}: opened a channel and asked nothing for {} s; closing it", session->peer(),
                 std::chrono::seconds(kSubscribeWithin).count());
    session->close();
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
  // History up to the last round recorded; every round after it reaches the session live.
  const Millis cut = last_round_.value_or(options_.now());
  Millis raw_from = 0;
  Millis raw_to = 0;
  std::vector<Rollup> rollups;
  Resolution resolution = Resolution::kRaw;
  if (request.history) {
    resolution = request.history->resolution;
    if (resolution == Resolution::kRaw) {
      raw_from = request.history->from;
      raw_to = std::min(request.history->to, cut + 1);
    } else {
      rollups =
          history_.rollups(resolution, request.history->from, request.history->to, request.sensors);
    }
  }
  spdlog::info("{}: subscribed to {} sensors, {} history{}", session.peer(), hello.sensors.size(),
               request.history ? resolution_name(resolution) : "no",
               request.live ? ", then live" : "");
  session.begin(request.sensors, encode(hello), &history_, raw_from, raw_to, std::move(rollups),
                resolution, request.live);
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
      const auto of_this_peer =
          std::ranges::count_if(sessions_, [key](const auto& s) { return s->connection() == key; });
      if (sessions_.size() >= kMaxSessions ||
          static_cast<std::size_t>(of_this_peer) >= kMaxSessionsPerConnection) {
        spdlog::warn("{}: {} channels are served already ({} per peer); closing this one", peer,
                     sessions_.size(), kMaxSessionsPerConnection);
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
