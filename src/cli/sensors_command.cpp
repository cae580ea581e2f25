#include "cli/sensors_command.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>
#include <variant>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/serving.h"
#include "sensor.pb.h"
#include "sensors/alerts.h"
#include "sensors/config.h"
#include "sensors/history.h"
#include "sensors/sensor_feed.h"
#include "sensors/sensor_service.h"
#include "sensors/sources.h"
#include "sensors/time_text.h"
#include "sensors/wire.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX declares it nowhere

namespace peernet::cli {
namespace {

namespace fs = std::filesystem;
using sensors::Millis;

std::string format_value(const std::optional<double>& value) {
  if (!value) {
    return "-";
  }
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.1f", *value);
  return text.data();
}

/// `value` as JSON text; bytes from the other side that are not UTF-8 become U+FFFD.
std::string json_text(const nlohmann::json& value, int indent = -1) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// A figure in the fewest digits that read back exactly: "27.8", "12", "0.25".
std::string number(double value) {
  std::array<char, 32> text{};
  const auto written = std::to_chars(text.data(), text.data() + text.size(), value);
  return {text.data(), written.ptr};
}

// ---------------------------------------------------------------------------------------------
// Serving

struct ServeArgs {
  std::string sysfs = "/sys";
  bool simulate = false;
  std::string config;
  double interval = 5;
  std::string history_dir;
  std::string keep_raw = "48h";
  std::string keep_five_minutes = "30d";
  std::string keep_hours = "400d";
  std::string name;
  std::string id;
  std::string state_dir;
};

fs::path default_config_file() {
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config != nullptr && *config != '\0') {
    return fs::path(config) / "peernet" / "sensors.toml";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return fs::path(home) / ".config" / "peernet" / "sensors.toml";
  }
  return {};
}

std::vector<std::unique_ptr<sensors::Source>> find_sources(const ServeArgs& args) {
  auto sources = sensors::discover({args.sysfs, args.simulate});
  fs::path config_file = args.config;
  std::error_code ignored;
  if (config_file.empty() && fs::exists(default_config_file(), ignored)) {
    config_file = default_config_file();
  }
  if (!config_file.empty()) {
    const auto config = sensors::load_sensors_config(config_file);
    for (const std::string& id : sensors::apply_sensors_config(config, sources)) {
      spdlog::warn("{} names sensor \"{}\", which is not here", config_file.string(), id);
    }
  }
  return sources;
}

int serve(const GlobalOptions& global, const ServeArgs& args) {
  // Before any thread starts, so that every thread inherits the mask and the signal reaches us.
  block_stop_signals();
  if (!(args.interval >= 0.1 && args.interval <= 86400)) {
    throw CLI::ValidationError("--interval", "must be between 0.1 and 86400 seconds");
  }
  auto sources = find_sources(args);
  if (sources.empty()) {
    std::fprintf(stderr,
                 "peernet: no sensors found under %s (hwmon, IIO, 1-wire)\n"
                 "hint: --simulate serves two simulated sensors\n",
                 args.sysfs.c_str());
    return kFailed;
  }
  const std::string host = host_name();
  const std::string display_name =
      !args.name.empty() ? args.name : (host.empty() ? std::string("sensors") : host);
  const std::string id =
      !args.id.empty() ? args.id : default_server_id("sensors", args.name.empty() ? "" : args.name);
  const fs::path state_dir =
      args.state_dir.empty() ? default_state_dir() : fs::path(args.state_dir);

  sensors::HistoryOptions history_options;
  history_options.dir = !args.history_dir.empty() ? fs::path(args.history_dir)
                        : state_dir.empty()       ? fs::path{}
                                                  : state_dir / "sensors" / id;
  history_options.keep_raw = duration_flag(args.keep_raw, "--keep-raw");
  history_options.keep_five_minutes = duration_flag(args.keep_five_minutes, "--keep-5m");
  history_options.keep_hours = duration_flag(args.keep_hours, "--keep-1h");
  if (history_options.keep_raw < Millis{3600} * 1000) {
    throw CLI::ValidationError("--keep-raw",
                               "must be at least 1h (the hour's rollup is rebuilt "
                               "from raw readings after a restart)");
  }
  if (history_options.keep_five_minutes <= 0 || history_options.keep_hours <= 0) {
    throw CLI::ValidationError("--keep-5m/--keep-1h", "must be more than 0");
  }
  if (history_options.dir.empty()) {
    spdlog::warn(
        "history is kept in memory only: a restart loses it (give --history-dir, or set "
        "HOME or XDG_STATE_HOME)");
  }
  const auto interval = static_cast<Millis>(std::llround(args.interval * 1000));
  // Every reading of the keep time, whatever the interval (a slot is 16 bytes).
  history_options.raw_capacity =
      static_cast<std::size_t>(history_options.keep_raw / interval) + std::size_t{16};
  sensors::History history(history_options);

  sensors::SensorService service(std::move(sources), history, {interval, sensors::wall_clock});

  Serving serving;
  serving.server.set_unique_id(id);
  serving.server.set_display_name(display_name);
  Service* offered = serving.server.add_services();
  offered->set_protocol(std::string(sensors::kProtocol));
  offered->set_version(std::string(sensors::kVersion));
  for (const sensors::SensorInfo& info : service.sensors()) {
    sensor::SensorInfo* advertised = offered->AddExtension(sensor::sensors);
    advertised->set_id(info.id);
    advertised->set_kind(info.kind == sensors::Kind::kHumidity ? sensor::SENSOR_KIND_HUMIDITY
                                                               : sensor::SENSOR_KIND_TEMPERATURE);
    advertised->set_unit(info.unit);
    advertised->set_name(info.name);
    advertised->set_source(info.source);
  }
  offered->SetExtension(sensor::history_seconds,
                        static_cast<std::uint32_t>(history_options.keep_raw / 1000));
  offered->SetExtension(sensor::interval_ms, static_cast<std::uint32_t>(interval));
  serving.state_dir = state_dir;
  serving.owner = "sensors " + (history_options.dir.empty() ? id : history_options.dir.string());
  serving.attach = [&service](const std::shared_ptr<Connection>& connection,
                              const std::string& peer) { service.attach(connection, peer); };
  for (const sensors::SensorInfo& info : service.sensors()) {
    std::fprintf(stderr, "peernet: found %s: %s (%s, %s)\n", info.id.c_str(),
                 printable(info.name).c_str(), info.unit.c_str(), info.source.c_str());
  }
  serving.banner = "serving " + std::to_string(service.sensors().size()) + " sensors as \"" +
                   display_name + "\" (" + id + "), a read every " + number(args.interval) + " s,";
  service.read_round(sensors::wall_clock());
  service.start();
  Client client(global.client);
  const int status = run_server(client, serving);
  service.stop();
  return status;
}

// ---------------------------------------------------------------------------------------------
// Listing what the room has

struct ListArgs {
  bool json = false;
};

std::vector<sensors::SensorInfo> advertised_sensors(const Server& server) {
  std::vector<sensors::SensorInfo> found;
  for (const Service& service : server.services()) {
    if (service.protocol() != sensors::kProtocol) {
      continue;
    }
    for (int i = 0; i < service.ExtensionSize(sensor::sensors); ++i) {
      const sensor::SensorInfo& info = service.GetExtension(sensor::sensors, i);
      const auto kind = info.kind() == sensor::SENSOR_KIND_HUMIDITY ? sensors::Kind::kHumidity
                                                                    : sensors::Kind::kTemperature;
      found.push_back({info.id(), kind, info.unit(), info.name(), info.source()});
    }
  }
  return found;
}

int list(const GlobalOptions& global, const ListArgs& args) {
  Client client(global.client);
  const std::vector<Server> servers =
      client.find(std::string(sensors::kProtocol), std::string(sensors::kVersion));
  nlohmann::json out = nlohmann::json::array();
  for (const Server& server : servers) {
    const auto found = advertised_sensors(server);
    if (args.json) {
      nlohmann::json entry{{"server", server.unique_id()}, {"name", server.display_name()}};
      entry["sensors"] = nlohmann::json::array();
      for (const auto& info : found) {
        entry["sensors"].push_back({{"id", info.id},
                                    {"kind", sensors::kind_name(info.kind)},
                                    {"unit", info.unit},
                                    {"name", info.name},
                                    {"source", info.source}});
      }
      out.push_back(std::move(entry));
      continue;
    }
    std::printf("%s (%s)\n", printable(server.display_name()).c_str(),
                printable(server.unique_id()).c_str());
    for (const auto& info : found) {
      std::printf("  %-28s %-11s %-4s %s\n", printable(info.id).c_str(),
                  std::string(sensors::kind_name(info.kind)).c_str(), printable(info.unit).c_str(),
                  printable(info.name).c_str());
    }
  }
  if (args.json) {
    std::printf("%s\n", json_text(out, 2).c_str());
  } else if (servers.empty()) {
    std::fprintf(stderr, "peernet: no sensor server in room \"%s\"\n", global.client.room.c_str());
    return kNoSuchService;
  }
  return kOk;
}

// ---------------------------------------------------------------------------------------------
// The watching side: a connection to the chosen server, opened again when it breaks

struct RemoteArgs {
  std::string server;                ///< --server
  std::vector<std::string> sensors;  ///< --sensor: ids or names
};

/// Sensor ids for `wanted` (ids or names) among what `server` advertises; throws
/// Error(kNoSuchService) naming what is there for one that is not.
std::vector<std::string> resolve_sensors(const Server& server,
                                         const std::vector<std::string>& wanted) {
  const auto advertised = advertised_sensors(server);
  std::vector<std::string> ids;
  for (const std::string& name : wanted) {
    const auto match = std::ranges::find_if(
        advertised, [&](const auto& info) { return info.id == name || info.name == name; });
    if (match == advertised.end()) {
      std::string message = "\"" + server.display_name() + "\" has no sensor \"" + name + "\"";
      const char* separator = "; it has ";
      for (const auto& info : advertised) {
        message.append(separator).append(info.id).append(" (").append(info.name).append(")");
        separator = ", ";
      }
      throw Error(Errc::kNoSuchService, message);
    }
    ids.push_back(match->id);
  }
  return ids;
}

/// One subscription's connection.
struct Link {
  Server server;
  std::shared_ptr<Connection> connection;
  std::unique_ptr<sensors::SensorFeed> feed;
  std::vector<std::string> sensor_ids;
};

Link open_link(Client& client, const RemoteArgs& args, sensors::Subscribe request) {
  Link link;
  link.server = choose_server(client, std::string(sensors::kProtocol),
                              std::string(sensors::kVersion), args.server, "--server");
  link.sensor_ids = resolve_sensors(link.server, args.sensors);
  request.sensors = link.sensor_ids;
  link.connection = client.connect(link.server, std::string(sensors::kProtocol),
                                   {std::string(sensors::kChannelLabel)});
  link.feed = std::make_unique<sensors::SensorFeed>(link.connection, request);
  return link;
}

/// A sensor server's "error" reply.
class ServerFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Watching

struct WatchArgs {
  RemoteArgs remote;
  std::string history = "1h";
  std::vector<std::string> alerts;
  std::string on_alert;
  std::string stale_after;
  int count = 0;
  bool json = false;
};

/// Runs --on-alert commands without waiting for them; a few at a time.
class AlertCommands {
 public:
  explicit AlertCommands(std::string command) : command_(std::move(command)) {}
  ~AlertCommands() { reap(); }
  AlertCommands(const AlertCommands&) = delete;
  AlertCommands& operator=(const AlertCommands&) = delete;

  void run(const sensors::AlertEvent& event) {
    reap();
    if (command_.empty()) {
      return;
    }
    if (running_.size() >= kMaxRunning) {
      spdlog::warn("--on-alert: {} commands are still running; not starting another",
                   running_.size());
      return;
    }
    std::vector<std::string> variables = {
        "PEERNET_ALERT=" + std::string(sensors::event_type_name(event.type)),
        "PEERNET_SENSOR=" + event.sensor,
        "PEERNET_SENSOR_NAME=" + event.sensor_name,
        "PEERNET_VALUE=" + (event.value ? format_value(event.value) : std::string()),
        "PEERNET_UNIT=" + event.unit,
        "PEERNET_RULE=" + event.rule,
        "PEERNET_TIME=" + sensors::format_utc(event.time),
        "PEERNET_MESSAGE=" + event.message};
    std::vector<char*> environment;
    for (char** variable = environ; *variable != nullptr; ++variable) {
      if (std::string_view(*variable).starts_with("PEERNET_")) {
        continue;
      }
      environment.push_back(*variable);
    }
    for (std::string& variable : variables) {
      environment.push_back(variable.data());
    }
    environment.push_back(nullptr);
    std::string shell = "/bin/sh";
    std::string dash_c = "-c";
    std::array<char*, 4> argv = {shell.data(), dash_c.data(), command_.data(), nullptr};
    pid_t pid = 0;
    const int error =
        posix_spawn(&pid, shell.c_str(), nullptr, nullptr, argv.data(), environment.data());
    if (error != 0) {
      spdlog::warn("--on-alert: cannot start /bin/sh: {}", std::strerror(error));
      return;
    }
    running_.push_back(pid);
  }

  /// Collects the commands that ended (logging the ones that failed).
  void reap() {
    std::erase_if(running_, [](pid_t pid) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) != pid) {
        return false;
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        spdlog::warn("--on-alert command {} failed (status {:#x})", pid, status);
      }
      return true;
    });
  }

 private:
  static constexpr std::size_t kMaxRunning = 4;
  std::string command_;
  std::vector<pid_t> running_;
};

/// What the watcher knows of each sensor, and how it shows it: a table redrawn in place on a
/// terminal, a line per reading (or JSON object with --json) elsewhere.
class WatchView {
 public:
  WatchView(const WatchArgs& args, Millis window)
      : args_(args),
        window_(window),
        terminal_(::isatty(STDOUT_FILENO) != 0 && !args.json),
        commands_(args.on_alert),
        stale_after_(args.stale_after.empty()
                         ? std::nullopt
                         : std::optional(duration_flag(args.stale_after, "--stale-after"))) {
    for (const std::string& text : args.alerts) {
      rules_.push_back(sensors::AlertRule::parse(text));
    }
  }

  /// A new server's (or a reconnection's) list of sensors.
  void hello(const sensors::Hello& hello, const Server& server) {
    server_ = server.display_name() + " (" + server.unique_id() + ")";
    interval_ = hello.interval;
    for (const auto& info : hello.sensors) {
      auto [entry, added] = sensors_.try_emplace(info.id);
      entry->second.info = info;
      if (added) {
        order_.push_back(info.id);
      }
    }
    if (!tracker_) {
      tracker_.emplace(rules_, stale_after_.value_or(std::max<Millis>(3 * interval_, 10'000)));
    }
    dirty_ = true;
  }

  /// Readings: `live` ones are shown as they come; history fills the window quietly (alerts it
  /// raises that still hold at its end are shown by history_end()).
  void readings(const std::vector<sensors::Reading>& readings, bool live) {
    if (live && !readings.empty()) {
      clock_offset_ = sensors::wall_clock() - readings.front().time;
    }
    for (const sensors::Reading& reading : readings) {
      auto found = sensors_.find(reading.sensor);
      if (found == sensors_.end() || reading.time <= found->second.newest) {
        continue;  // not announced, or seen already (history overlapping after a reconnect)
      }
      Watched& watched = found->second;
      watched.newest = reading.time;
      watched.window.push_back(reading);
      while (!watched.window.empty() && watched.window.front().time < reading.time - window_) {
        watched.window.pop_front();
      }
      const bool quiet = !live && !history_done_;
      if (!quiet && !terminal_) {
        print_line(watched, reading);
      }
      for (sensors::AlertEvent& event : tracker_->feed(watched.info, reading)) {
        if (quiet) {
          held_[event.sensor + "\n" + event.rule] = std::move(event);
        } else {
          alert(event);
        }
      }
    }
    dirty_ = true;
  }

  void history_end() {
    history_done_ = true;
    for (auto& [key, event] : held_) {
      if (event.type == sensors::AlertEvent::Type::kRaised ||
          event.type == sensors::AlertEvent::Type::kStale) {
        alert(event);
      }
    }
    held_.clear();
    dirty_ = true;
  }

  /// Time passing with nothing arriving: sensors go stale. `now` is this machine's clock; the
  /// readings carry the server's, so the difference seen at the last live round is taken off
  /// (a box without a real-time clock may be minutes off).
  void tick(Millis now) {
    if (!tracker_ || !history_done_) {
      return;  // the history being replayed is old by nature, not stale
    }
    for (const sensors::AlertEvent& event : tracker_->tick(now - clock_offset_)) {
      alert(event);
    }
  }

  /// A line about the connection; `text` may carry what the other side sent.
  void note(const std::string& text) {
    if (terminal_) {
      remember(format_clock(sensors::wall_clock()) + " " + printable(text));
    } else {
      std::fprintf(stderr, "peernet: %s\n", printable(text).c_str());
    }
  }

  void draw() {
    commands_.reap();
    if (!terminal_ || !dirty_) {
      return;
    }
    dirty_ = false;
    std::string out;
    if (lines_drawn_ > 0) {
      out += "\x1b[" + std::to_string(lines_drawn_) + "F\x1b[J";  // back to the top, clear
    }
    std::vector<std::string> lines;
    lines.push_back(printable(server_) + ", a read every " +
                    number(static_cast<double>(interval_) / 1000) + " s");
    lines.push_back(pad("SENSOR", 26) + pad("VALUE", 12) + pad("TREND", 6) + pad("MIN", 8) +
                    pad("MAX", 8) + "UPDATED");
    for (const std::string& id : order_) {
      const Watched& watched = sensors_.at(id);
      std::optional<double> low;
      std::optional<double> high;
      for (const auto& reading : watched.window) {
        if (reading.value) {
          low = std::min(low.value_or(*reading.value), *reading.value);
          high = std::max(high.value_or(*reading.value), *reading.value);
        }
      }
      std::string value = "-";
      std::string updated = "-";
      std::optional<double> slope;
      if (!watched.window.empty()) {
        const sensors::Reading& last = watched.window.back();
        value =
            last.value ? format_value(last.value) + " " + printable(watched.info.unit) : "stale";
        updated = format_clock(last.time);
        const Millis since = last.time - kTrendSpan;
        slope = sensors::slope_per_hour(std::vector<sensors::Reading>(
            std::ranges::find_if(watched.window,
                                 [since](const auto& r) { return r.time >= since; }),
            watched.window.end()));
      }
      const double steady = watched.info.kind == sensors::Kind::kHumidity ? 2.0 : 0.5;
      lines.push_back(pad(printable(watched.info.name), 26) + pad(value, 12) +
                      pad(std::string(sensors::trend_arrow(slope, steady)), 6) +
                      pad(format_value(low), 8) + pad(format_value(high), 8) + updated);
    }
    if (!recent_events_.empty()) {
      lines.emplace_back();
      for (const std::string& event : recent_events_) {
        lines.push_back(event);
      }
    }
    for (const std::string& line : lines) {
      out += line + "\n";
    }
    lines_drawn_ = lines.size();
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }

 private:
  static constexpr Millis kTrendSpan = Millis{30} * 60 * 1000;
  static constexpr std::size_t kEventsShown = 6;

  struct Watched {
    sensors::SensorInfo info;
    std::deque<sensors::Reading> window;
    Millis newest = INT64_MIN;
  };

  static std::string format_clock(Millis time) { return sensors::format_local_clock(time); }

  /// `text` padded with spaces to `width` characters (UTF-8 aware, truncated when longer).
  static std::string pad(const std::string& text, std::size_t width) {
    std::string out;
    std::size_t shown = 0;
    for (std::size_t i = 0; i < text.size();) {
      std::size_t length = 1;
      const auto lead = static_cast<unsigned char>(text[i]);
      if (lead >= 0xf0) {
        length = 4;
      } else if (lead >= 0xe0) {
        length = 3;
      } else if (lead >= 0xc0) {
        length = 2;
      }
      if (shown + 1 >= width) {
        break;
      }
      out.append(text, i, length);
      i += length;
      ++shown;
    }
    out.append(width - shown, ' ');
    return out;
  }

  void print_line(const Watched& watched, const sensors::Reading& reading) {
    if (args_.json) {
      nlohmann::json line{{"time", sensors::format_utc(reading.time)},
                          {"sensor", reading.sensor},
                          {"name", watched.info.name},
                          {"value", reading.value ? nlohmann::json(*reading.value) : nullptr},
                          {"unit", watched.info.unit},
                          {"quality", sensors::quality_name(reading.quality())}};
      std::printf("%s\n", json_text(line).c_str());
    } else {
      std::printf("%s %s %s %s %s\n", sensors::format_utc(reading.time).c_str(),
                  reading.sensor.c_str(), format_value(reading.value).c_str(),
                  printable(watched.info.unit).c_str(),
                  std::string(sensors::quality_name(reading.quality())).c_str());
    }
    std::fflush(stdout);
  }

  void alert(const sensors::AlertEvent& event) {
    if (terminal_) {
      remember(format_clock(event.time) + " " + printable(event.message));
    } else if (args_.json) {
      nlohmann::json line{{"time", sensors::format_utc(event.time)},
                          {"alert", sensors::event_type_name(event.type)},
                          {"sensor", event.sensor},
                          {"message", event.message}};
      std::printf("%s\n", json_text(line).c_str());
    } else {
      std::printf("%s %s\n", sensors::format_utc(event.time).c_str(),
                  printable(event.message).c_str());
    }
    std::fflush(stdout);
    commands_.run(event);
    dirty_ = true;
  }

  void remember(std::string line) {
    recent_events_.push_back(std::move(line));
    if (recent_events_.size() > kEventsShown) {
      recent_events_.pop_front();
    }
    dirty_ = true;
  }

  const WatchArgs& args_;
  Millis window_;
  bool terminal_;
  AlertCommands commands_;
  std::optional<Millis> stale_after_;
  std::vector<sensors::AlertRule> rules_;
  std::optional<sensors::AlertTracker> tracker_;
  std::map<std::string, sensors::AlertEvent> held_;
  std::map<std::string, Watched> sensors_;
  std::vector<std::string> order_;
  std::string server_;
  Millis interval_ = 0;
  Millis clock_offset_ = 0;  // this machine's clock minus the server's, as last seen
  bool history_done_ = false;
  bool dirty_ = false;
  std::size_t lines_drawn_ = 0;
  std::deque<std::string> recent_events_;
};

int watch(const GlobalOptions& global, const WatchArgs& args) {
  const Millis window = duration_flag(args.history, "--history");
  WatchView view(args, window);  // checks the alert rules before anything connects
  Client client(global.client);
  std::optional<Link> link;
  RemoteArgs remote = args.remote;  // after the first connection, that server and no other
  std::string last_failure;         // why reconnecting fails, said once per reason
  Millis newest = sensors::wall_clock() - window;  // what the next subscription asks history from
  bool connected_once = false;
  int rounds = 0;
  auto retry_at = std::chrono::steady_clock::now();
  // A server that vanished without closing (killed, unplugged) says nothing: after three reads'
  // worth of silence the link counts as lost, long before ICE would notice.
  auto last_heard = std::chrono::steady_clock::now();
  std::chrono::milliseconds silence_limit{10'000};
  for (;;) {
    if (!link) {
      if (std::chrono::steady_clock::now() < retry_at) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        view.tick(sensors::wall_clock());
        view.draw();
        continue;
      }
      try {
        sensors::Subscribe request;
        request.history = sensors::HistoryRequest{
            newest + 1, sensors::wall_clock() + Millis{86'400'000}, sensors::Resolution::kRaw};
        link = open_link(client, remote, request);
        last_heard = std::chrono::steady_clock::now();
        if (connected_once) {
          view.note("reconnected to " + link->server.display_name());
        }
        connected_once = true;
        remote.server = link->server.unique_id();
        last_failure.clear();
      } catch (const Error& error) {
        if (!connected_once) {
          throw;  // nothing to watch: say why and stop
        }
        if (error.what() != last_failure) {
          last_failure = error.what();
          view.note("cannot reconnect yet: " + last_failure);
        }
        retry_at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        continue;
      }
    }
    try {
      const auto message = link->feed->next(std::chrono::seconds(1));
      if (!message && std::chrono::steady_clock::now() - last_heard > silence_limit) {
        throw Error(Errc::kClosed,
                    "nothing heard for " + std::to_string(silence_limit.count() / 1000) + " s");
      }
      if (message) {
        last_heard = std::chrono::steady_clock::now();
        if (const auto* hello = std::get_if<sensors::Hello>(&*message)) {
          view.hello(*hello, link->server);
          silence_limit =
              std::chrono::milliseconds(std::max<Millis>(3 * hello->interval + 2000, 5000));
        } else if (const auto* readings = std::get_if<sensors::Readings>(&*message)) {
          view.readings(readings->readings, readings->live);
          for (const auto& reading : readings->readings) {
            newest = std::max(newest, reading.time);
          }
          if (readings->live && args.count > 0 && ++rounds >= args.count) {
            view.draw();
            return kOk;
          }
        } else if (std::holds_alternative<sensors::HistoryEnd>(*message)) {
          view.history_end();
        } else if (const auto* failure = std::get_if<sensors::Failure>(&*message)) {
          throw ServerFailure("the sensor server refused: " + failure->message);
        }
      }
    } catch (const Error& error) {
      view.note("lost " + link->server.display_name() + " (" + error.what() + "); reconnecting");
      link.reset();
    } catch (const sensors::WireError& error) {
      view.note("the sensor server broke the protocol (" + std::string(error.what()) +
                "); reconnecting");
      link.reset();
      retry_at = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    view.tick(sensors::wall_clock());
    view.draw();
  }
}

// ---------------------------------------------------------------------------------------------
// Exporting a range

struct ExportArgs {
  RemoteArgs remote;
  std::string from = "-24h";
  std::string to = "now";
  std::string resolution = "raw";
  std::string format = "csv";
  std::string output;
  int timeout = 30;
};

/// A CSV field: quoted when it holds a comma, quote or line break.
std::string csv(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) {
    return field;
  }
  std::string quoted = "\"";
  for (const char c : field) {
    quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return quoted + "\"";
}

/// Writes rows as they arrive (a long range never sits in memory whole), as CSV or as a JSON
/// array of objects; names and units from the server's list of sensors.
class ExportWriter {
 public:
  ExportWriter(std::ostream& out, bool json, bool raw) : out_(out), json_(json) {
    if (json_) {
      out_ << "[";
    } else {
      out_ << (raw ? "time,sensor,name,value,unit,quality\n"
                   : "start,sensor,name,min,mean,max,count,stale,unit\n");
    }
  }

  void sensors(const std::vector<sensors::SensorInfo>& sensors) {
    for (const auto& sensor : sensors) {
      names_[sensor.id] = {sensor.name, sensor.unit};
    }
  }

  void write(const sensors::Reading& r) {
    const auto& [name, unit] = names_[r.sensor];
    const std::string quality(sensors::quality_name(r.quality()));
    if (json_) {
      object({{"time", sensors::format_utc(r.time)},
              {"sensor", r.sensor},
              {"name", name},
              {"value", r.value ? nlohmann::json(*r.value) : nullptr},
              {"unit", unit},
              {"quality", quality}});
    } else {
      out_ << sensors::format_utc(r.time) << ',' << csv(r.sensor) << ',' << csv(name) << ','
           << (r.value ? number(*r.value) : std::string()) << ',' << csv(unit) << ',' << quality
           << '\n';
    }
    ++rows_;
  }

  void write(const sensors::Rollup& r) {
    const auto& [name, unit] = names_[r.sensor];
    if (json_) {
      object({{"start", sensors::format_utc(r.start)},
              {"sensor", r.sensor},
              {"name", name},
              {"min", r.min},
              {"mean", r.mean},
              {"max", r.max},
              {"count", r.count},
              {"stale", r.stale},
              {"unit", unit}});
    } else {
      out_ << sensors::format_utc(r.start) << ',' << csv(r.sensor) << ',' << csv(name) << ','
           << number(r.min) << ',' << number(r.mean) << ',' << number(r.max) << ',' << r.count
           << ',' << r.stale << ',' << csv(unit) << '\n';
    }
    ++rows_;
  }

  void finish() {
    if (json_) {
      out_ << (rows_ == 0 ? "]\n" : "\n]\n");
    }
    out_.flush();
  }

  std::size_t rows() const noexcept { return rows_; }

 private:
  void object(const nlohmann::json& row) {
    out_ << (rows_ == 0 ? "\n " : ",\n ") << json_text(row);
  }

  std::ostream& out_;
  bool json_;
  std::size_t rows_ = 0;
  std::map<std::string, std::pair<std::string, std::string>> names_;
};

/// Subscribes to `range` without live readings and writes what comes until "history-end".
void fetch(Client& client, const ExportArgs& args, const sensors::HistoryRequest& range,
           ExportWriter& writer) {
  sensors::Subscribe request;
  request.history = range;
  request.live = false;
  Link link = open_link(client, args.remote, request);
  for (;;) {
    const auto message = link.feed->next(std::chrono::seconds(args.timeout));
    if (!message) {
      throw Error(Errc::kClosed,
                  "the sensor server sent nothing for " + std::to_string(args.timeout) + " s");
    }
    if (const auto* hello = std::get_if<sensors::Hello>(&*message)) {
      writer.sensors(hello->sensors);
    } else if (const auto* readings = std::get_if<sensors::Readings>(&*message)) {
      for (const auto& reading : readings->readings) {
        writer.write(reading);
      }
    } else if (const auto* rollups = std::get_if<sensors::Rollups>(&*message)) {
      for (const auto& rollup : rollups->rows) {
        writer.write(rollup);
      }
    } else if (std::holds_alternative<sensors::HistoryEnd>(*message)) {
      link.connection->close();
      return;
    } else if (const auto* failure = std::get_if<sensors::Failure>(&*message)) {
      throw ServerFailure("the sensor server refused: " + printable(failure->message));
    }
  }
}

int export_range(const GlobalOptions& global, const ExportArgs& args) {
  const Millis now = sensors::wall_clock();
  const auto from = sensors::parse_time(args.from, now);
  const auto to = sensors::parse_end_time(args.to, now);
  if (!from) {
    throw CLI::ValidationError("--from", "\"" + args.from + "\" is not a time (see --help)");
  }
  if (!to) {
    throw CLI::ValidationError("--to", "\"" + args.to + "\" is not a time (see --help)");
  }
  if (*from >= *to) {
    throw CLI::ValidationError("--from", "is not before --to");
  }
  const sensors::HistoryRequest range{*from, *to, *sensors::resolution_from_name(args.resolution)};
  const bool json = args.format == "json";
  const bool raw = args.resolution == "raw";
  Client client(global.client);
  if (args.output.empty() || args.output == "-") {
    ExportWriter writer(std::cout, json, raw);
    fetch(client, args, range, writer);
    writer.finish();
    return kOk;
  }
  // Whole or not at all: a file named as asked only once it is complete.
  const fs::path temporary = args.output + ".peernet-new";
  std::size_t rows = 0;
  try {
    std::ofstream out(temporary, std::ios::trunc);
    ExportWriter writer(out, json, raw);
    fetch(client, args, range, writer);
    writer.finish();
    rows = writer.rows();
    if (!out) {
      throw std::runtime_error("cannot write " + temporary.string());
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  fs::rename(temporary, args.output);
  std::fprintf(stderr, "peernet: %zu %s written to %s\n", rows, raw ? "readings" : "rollups",
               args.output.c_str());
  return kOk;
}

void add_remote_options(CLI::App& command, RemoteArgs& args) {
  command.add_option("--server", args.server,
                     "the sensor server (its name or id) when the room has several");
  command.add_option("--sensor", args.sensors, "a sensor (its id or name); repeat for more")
      ->take_all();
}

}  // namespace

void add_sensors_command(CLI::App& app, const GlobalOptions& global, std::function<int()>& run) {
  CLI::App* sensors_app =
      app.add_subcommand("sensors", "temperature and humidity, live and with history");
  sensors_app->require_subcommand(1);

  auto serve_args = std::make_shared<ServeArgs>();
  CLI::App* serve_command =
      sensors_app->add_subcommand("serve", "serve this machine's sensors in the room");
  serve_command->add_option("--sysfs", serve_args->sysfs, "where sysfs is (default /sys)");
  serve_command->add_flag("--simulate", serve_args->simulate,
                          "add two simulated sensors (for a demo, or a machine without any)");
  serve_command->add_option("--config", serve_args->config,
                            "names and offsets (default ~/.config/peernet/sensors.toml)");
  serve_command->add_option("--interval", serve_args->interval,
                            "seconds between two reads (default 5)");
  serve_command->add_option("--history-dir", serve_args->history_dir,
                            "where history is kept (default STATE-DIR/sensors/ID)");
  serve_command->add_option("--keep-raw", serve_args->keep_raw,
                            "how long every reading is kept (default 48h, at least 1h)");
  serve_command->add_option("--keep-5m", serve_args->keep_five_minutes,
                            "how long 5-minute min/mean/max are kept (default 30d)");
  serve_command->add_option("--keep-1h", serve_args->keep_hours,
                            "how long hourly min/mean/max are kept (default 400d)");
  serve_command->add_option("--name", serve_args->name, "the server's name (default: host name)");
  serve_command->add_option("--id", serve_args->id,
                            "the server's id (default: sensors-HOST[-NAME])");
  serve_command->add_option("--state-dir", serve_args->state_dir,
                            "where the registration's token and history are kept "
                            "(default $XDG_STATE_HOME/peernet)");
  serve_command->callback([&run, &global, serve_args] {
    run = [&global, serve_args] { return serve(global, *serve_args); };
  });

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list_command =
      sensors_app->add_subcommand("ls", "list the room's sensor servers and their sensors");
  list_command->add_flag("--json", list_args->json, "print JSON");
  list_command->callback([&run, &global, list_args] {
    run = [&global, list_args] { return list(global, *list_args); };
  });

  auto watch_args = std::make_shared<WatchArgs>();
  CLI::App* watch_command = sensors_app->add_subcommand("watch", "show live readings");
  add_remote_options(*watch_command, watch_args->remote);
  watch_command->add_option("--history", watch_args->history,
                            "history to fetch first, for min, max and trend (default 1h)");
  watch_command
      ->add_option("--alert", watch_args->alerts,
                   "SENSOR>VALUE or SENSOR<VALUE[,hysteresis=H][,for=DURATION]; repeat "
                   "for more (SENSOR: id, name, temperature or humidity)")
      ->take_all();
  watch_command->add_option("--on-alert", watch_args->on_alert,
                            "a shell command run on every alert, with PEERNET_ALERT, "
                            "PEERNET_SENSOR, PEERNET_VALUE, PEERNET_MESSAGE, ... set");
  watch_command->add_option("--stale-after", watch_args->stale_after,
                            "how long without a good reading before a sensor counts as stale "
                            "(default 3 reads, at least 10s)");
  watch_command->add_option("--count", watch_args->count, "stop after this many rounds of reads")
      ->check(CLI::PositiveNumber);
  watch_command->add_flag("--json", watch_args->json, "a JSON object per reading and alert");
  watch_command->callback([&run, &global, watch_args] {
    run = [&global, watch_args] { return watch(global, *watch_args); };
  });

  auto export_args = std::make_shared<ExportArgs>();
  CLI::App* export_command =
      sensors_app->add_subcommand("export", "write a range of history as CSV or JSON");
  add_remote_options(*export_command, export_args->remote);
  export_command->add_option("--from", export_args->from,
                             "start: -24h, 2026-11-29, 2026-11-29T08:00, ...Z, @SECONDS "
                             "(default -24h)");
  export_command->add_option("--to", export_args->to, "end, as --from (default now)");
  export_command
      ->add_option("--resolution", export_args->resolution,
                   "raw, 5m or 1h (min, mean, max per bucket; default raw)")
      ->check(CLI::IsMember({"raw", "5m", "1h"}));
  export_command->add_option("--format", export_args->format, "csv or json (default csv)")
      ->check(CLI::IsMember({"csv", "json"}));
  export_command->add_option("-o,--output", export_args->output, "the file (default stdout)");
  export_command->callback([&run, &global, export_args] {
    run = [&global, export_args] { return export_range(global, *export_args); };
  });
}

}  // namespace peernet::cli
