#include "cli/camera_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "camera.pb.h"
#include "camera/camera_service.h"
#include "camera/camera_source.h"
#include "camera/retention.h"
#include "camera/viewer.h"
#include "cli/serving.h"

namespace peernet::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Serving

struct ServeArgs {
  std::string source = "auto";
  std::string size = "640x480";
  std::uint32_t fps = 30;
  std::uint32_t bitrate = 1500;
  std::uint32_t keyframe_interval = 2;
  std::size_t max_viewers = camera::CameraService::kDefaultMaxViewers;
  bool stamp = false;
  std::string name;
  std::string id;
  std::string state_dir;
};

/// "640x480" as two numbers.
std::pair<std::uint32_t, std::uint32_t> size_flag(const std::string& text) {
  unsigned width = 0;
  unsigned height = 0;
  char end = 0;
  if (std::sscanf(text.c_str(), "%ux%u%c", &width, &height, &end) != 2) {
    throw CLI::ValidationError("--size", "\"" + text + "\" is not WIDTHxHEIGHT (640x480)");
  }
  return {width, height};
}

int serve(const GlobalOptions& global, const ServeArgs& args) {
  block_stop_signals();  // before any thread starts
  camera::SourceOptions options;
  options.source = args.source;
  std::tie(options.width, options.height) = size_flag(args.size);
  options.frame_rate = args.fps;
  options.bitrate_kbps = args.bitrate;
  options.keyframe_interval = args.keyframe_interval;
  options.stamp_time = args.stamp;
  if (args.bitrate < 50 || args.bitrate > 50'000) {
    throw CLI::ValidationError("--bitrate", "must be from 50 to 50000 kbit/s");
  }
  if (args.keyframe_interval < 1 || args.keyframe_interval > 600) {
    throw CLI::ValidationError("--keyframe-interval", "must be from 1 to 600 seconds");
  }
  if (args.max_viewers < 1 || args.max_viewers > 64) {
    throw CLI::ValidationError("--max-viewers", "must be from 1 to 64");
  }
  const auto source = camera::CameraSource::open(options);
  camera::CameraService service(*source, args.max_viewers);

  const std::string host = host_name();
  const std::string display_name =
      !args.name.empty() ? args.name : (host.empty() ? std::string("camera") : host);
  const std::string id =
      !args.id.empty() ? args.id : default_server_id("camera", args.name.empty() ? "" : args.name);
  Serving serving;
  serving.server.set_unique_id(id);
  serving.server.set_display_name(display_name);
  *serving.server.add_services() = service.describe();
  serving.state_dir = args.state_dir.empty() ? default_state_dir() : fs::path(args.state_dir);
  serving.owner = "camera " + id;
  serving.screen = [&service](const Knock& knock) { return service.screen(knock); };
  serving.attach = [&service](const std::shared_ptr<Connection>& connection,
                              const std::string& peer) { service.attach(connection, peer); };
  serving.failure = [&source] { return source->failure(); };
  const camera::SourceInfo& info = source->info();
  serving.banner = "serving " + printable(info.description) + " as \"" + display_name + "\" (" +
                   id + "), VP8 " + std::to_string(info.width) + "x" + std::to_string(info.height) +
                   " at " + std::to_string(info.frame_rate) + " fps,";
  int status = kOk;
  {
    Client client(global.client);
    status = run_server(client, serving);
    service.stop();  // its thread uses the client's channels
  }                  // connections closed before the service and the source go
  const auto stats = source->stats();
  spdlog::info("encoded {} frames, {} keyframes ({} asked for by viewers)", stats.frames_encoded,
               stats.keyframes, stats.keyframes_forced);
  return status;
}

// ---------------------------------------------------------------------------------------------
// Viewing

struct ViewArgs {
  std::string server;
  std::string record;
  bool record_only = false;
  bool window = false;
  bool no_window = false;
  std::string segment = "10m";
  std::string keep_age;
  std::string keep_size;
  std::string keep_free = "1G";
  std::string duration;
  std::string snapshot;
  bool measure_latency = false;
  bool stats = false;
};

bool has_display() {
  const char* x11 = std::getenv("DISPLAY");
  const char* wayland = std::getenv("WAYLAND_DISPLAY");
  return (x11 != nullptr && *x11 != '\0') || (wayland != nullptr && *wayland != '\0');
}

/// The camera's advertised picture, for the banner.
std::string describe(const Server& server) {
  for (const Service& service : server.services()) {
    if (service.protocol() == camera::kProtocol) {
      return service.GetExtension(camera::codec) + " " +
             std::to_string(service.GetExtension(camera::width)) + "x" +
             std::to_string(service.GetExtension(camera::height)) + " at " +
             std::to_string(service.GetExtension(camera::frame_rate)) + " fps";
    }
  }
  return "video";
}

int take_snapshot(const GlobalOptions& global, const ViewArgs& args) {
  Client client(global.client);
  const Server server = choose_server(client, std::string(camera::kProtocol),
                                      std::string(camera::kVersion), args.server, "--server");
  const auto connection =
      client.connect(server, std::string(camera::kProtocol), {std::string(camera::kChannelLabel)});
  const auto jpeg =
      camera::fetch_snapshot(*connection->channels().front(), std::chrono::seconds{15});
  const fs::path target = args.snapshot;
  const fs::path temporary = target.string() + ".peernet-new";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(jpeg.data()),
              static_cast<std::streamsize>(jpeg.size()));
    if (!out.flush()) {
      throw Error{Errc::kInvalid, "cannot write " + temporary.string()};
    }
  }
  fs::rename(temporary, target);
  std::fprintf(stderr, "peernet: saved a snapshot of \"%s\" (%zu bytes) to %s\n",
               printable(server.display_name()).c_str(), jpeg.size(), target.c_str());
  return kOk;
}

/// The connection to the camera and what feeds the viewer from it.
struct Link {
  Server server;
  std::shared_ptr<Connection> connection;
  std::unique_ptr<camera::KeepAlive> keep_alive;  // after the connection: stopped first
  Clock::time_point knocked;
};

nlohmann::json stats_json(const camera::ViewerStats& stats, std::optional<double> first_frame_ms,
                          int reconnects) {
  nlohmann::json out{{"frames_received", stats.frames_received},
                     {"frames_decoded", stats.frames_decoded},
                     {"width", stats.width},
                     {"height", stats.height},
                     {"reconnects", reconnects}};
  if (first_frame_ms) {
    out["first_frame_ms"] = *first_frame_ms;
  }
  if (!stats.latencies_ms.empty()) {
    auto sorted = stats.latencies_ms;
    std::sort(sorted.begin(), sorted.end());
    const auto at = [&](double q) {
      const auto index = static_cast<std::size_t>(q * static_cast<double>(sorted.size()));
      return sorted[std::min(sorted.size() - 1, index)];
    };
    // The middle of the first and of the last quarter of the run: latency that creeps up over
    // time (a queue that grows) shows as the second above the first.
    const auto quarter_median = [&](std::size_t from) {
      const std::size_t size = std::max<std::size_t>(1, stats.latencies_ms.size() / 4);
      std::vector<double> part(
          stats.latencies_ms.begin() + static_cast<std::ptrdiff_t>(from),
          stats.latencies_ms.begin() +
              static_cast<std::ptrdiff_t>(std::min(from + size, stats.latencies_ms.size())));
      std::nth_element(part.begin(), part.begin() + static_cast<std::ptrdiff_t>(part.size() / 2),
                       part.end());
      return part[part.size() / 2];
    };
    const std::size_t count = stats.latencies_ms.size();
    out["latency_ms"] = {
        {"p50", at(0.5)},
        {"p99", at(0.99)},
        {"max", sorted.back()},
        {"count", count},
        {"p50_first_quarter", quarter_median(0)},
        {"p50_last_quarter", quarter_median(count - std::max<std::size_t>(1, count / 4))}};
  }
  nlohmann::json segments = nlohmann::json::array();
  for (const auto& segment : stats.segments) {
    segments.push_back(segment.string());
  }
  out["segments"] = segments;
  return out;
}

int view(const GlobalOptions& global, const ViewArgs& args) {
  if (!args.snapshot.empty()) {
    return take_snapshot(global, args);
  }
  block_stop_signals();
  camera::ViewerOptions options;
  options.window = !args.record_only && !args.no_window && (args.window || has_display());
  options.decode = !args.record_only;
  options.read_stamps = args.measure_latency;
  options.segment = std::chrono::seconds(duration_flag(args.segment, "--segment") / 1000);
  if (options.segment < std::chrono::seconds{1}) {
    throw CLI::ValidationError("--segment", "must be at least 1s");
  }
  camera::RetentionRules rules;
  if (!args.record.empty()) {
    options.record_dir = args.record;
    std::error_code ec;
    fs::create_directories(options.record_dir, ec);
    if (!fs::is_directory(options.record_dir, ec)) {
      throw CLI::ValidationError("--record", "cannot make the folder " + args.record);
    }
    if (!args.keep_age.empty()) {
      rules.max_age = std::chrono::seconds(duration_flag(args.keep_age, "--keep-age") / 1000);
    }
    if (!args.keep_size.empty()) {
      rules.max_bytes = bytes_flag(args.keep_size, "--keep-size");
    }
    if (!args.keep_free.empty()) {
      rules.min_free_bytes = bytes_flag(args.keep_free, "--keep-free");
    }
  } else if (args.record_only) {
    throw CLI::ValidationError("--record-only", "needs --record FOLDER");
  }
  std::optional<Clock::time_point> stop_at;
  if (!args.duration.empty()) {
    stop_at = Clock::now() + milliseconds(duration_flag(args.duration, "--duration"));
  }

  // The viewer before the client, so that it outlives every callback that feeds it.
  std::optional<camera::Viewer> viewer;
  Client client(global.client);
  auto current = std::make_shared<std::weak_ptr<Connection>>();  // for keyframe requests
  std::optional<Link> link;
  std::string wanted = args.server;  // after the first connection, that server and no other
  std::optional<double> first_frame_ms;
  int reconnects = 0;
  std::string last_failure;
  auto retry_at = Clock::now();
  auto retention_at = Clock::now();
  std::uint64_t frames_seen = 0;
  auto last_frame = Clock::now();
  constexpr auto kSilenceLimit = std::chrono::seconds{5};
  int status = kOk;

  for (;;) {
    if (const int signal_number = poll_stop_signal(milliseconds{100}); signal_number != 0) {
      spdlog::info("signal {}: stopping", signal_number);
      break;
    }
    if (stop_at && Clock::now() >= *stop_at) {
      break;
    }
    if (viewer && !viewer->failure().empty()) {
      std::fprintf(stderr, "peernet: %s\n", viewer->failure().c_str());
      status = kFailed;
      break;
    }
    if (!options.record_dir.empty() && Clock::now() >= retention_at) {
      camera::enforce_retention(options.record_dir, rules,
                                viewer ? viewer->current_segment() : fs::path{});
      retention_at = Clock::now() + std::chrono::seconds{30};
    }
    if (!link) {
      if (Clock::now() < retry_at) {
        continue;
      }
      try {
        Link next;
        next.server = choose_server(client, std::string(camera::kProtocol),
                                    std::string(camera::kVersion), wanted, "--server");
        if (!viewer) {
          options.camera_name = next.server.display_name();
          viewer.emplace(options, [current] {
            if (auto connection = current->lock()) {
              connection->request_keyframe();
            }
          });
        }
        next.knocked = Clock::now();
        auto* target = &*viewer;
        next.connection = client.connect(
            next.server, std::string(camera::kProtocol), {std::string(camera::kChannelLabel)},
            VideoIn{[target](const VideoFrame& frame) { target->push(frame); }});
        *current = next.connection;
        next.keep_alive = std::make_unique<camera::KeepAlive>(next.connection->channels().front());
        if (wanted.empty() || reconnects == 0) {
          std::fprintf(stderr, "peernet: watching \"%s\" (%s)%s; Ctrl-C stops\n",
                       printable(next.server.display_name()).c_str(), describe(next.server).c_str(),
                       options.record_dir.empty()
                           ? ""
                           : (", recording to " + options.record_dir.string()).c_str());
        } else {
          std::fprintf(stderr, "peernet: reconnected to \"%s\"\n",
                       printable(next.server.display_name()).c_str());
        }
        wanted = next.server.unique_id();
        last_failure.clear();
        last_frame = Clock::now();
        link = std::move(next);
      } catch (const Error& error) {
        if (wanted.empty() && reconnects == 0 && !link) {
          throw;  // never connected: say why and stop
        }
        if (error.what() != last_failure) {
          last_failure = error.what();
          std::fprintf(stderr, "peernet: cannot reconnect yet: %s\n", error.what());
        }
        retry_at = Clock::now() + std::chrono::seconds{2};
        continue;
      }
    }
    const auto stats = viewer->progress();
    if (stats.frames_received != frames_seen) {
      frames_seen = stats.frames_received;
      last_frame = Clock::now();
    }
    if (!first_frame_ms && stats.first_decoded) {
      first_frame_ms =
          std::chrono::duration<double, std::milli>(*stats.first_decoded - link->knocked).count();
      spdlog::info("first frame {:.0f} ms after the knock", *first_frame_ms);
    }
    const bool closed = !link->connection->is_open();
    if (closed || Clock::now() - last_frame > kSilenceLimit) {
      std::fprintf(stderr, "peernet: lost \"%s\" (%s); reconnecting\n",
                   printable(link->server.display_name()).c_str(),
                   closed ? "the connection closed" : "no video for 5 s");
      link->connection->close();
      link.reset();
      viewer->end_stream();  // the recording so far becomes a whole file
      ++reconnects;
      retry_at = Clock::now() + std::chrono::seconds{1};
    }
  }
  if (link) {
    link->connection->close();
  }
  if (viewer) {
    viewer->end_stream();
    const auto stats = viewer->stats();
    if (args.stats) {
      std::printf("%s\n", stats_json(stats, first_frame_ms, reconnects).dump().c_str());
    }
    spdlog::info("{} frames received, {} decoded", stats.frames_received, stats.frames_decoded);
  }
  return status;
}

}  // namespace

void add_camera_command(CLI::App& app, const GlobalOptions& global, std::function<int()>& run) {
  CLI::App* camera_app =
      app.add_subcommand("camera", "live video peer to peer, recorded on the viewing side");
  camera_app->require_subcommand(1);

  auto serve_args = std::make_shared<ServeArgs>();
  CLI::App* serve_command = camera_app->add_subcommand("serve", "serve a camera in the room");
  serve_command->add_option("--source", serve_args->source,
                            "auto (the first /dev/video*, else the test pattern), test, a "
                            "device (/dev/video0) or a video file (default auto)");
  serve_command->add_option("--size", serve_args->size, "picture size (default 640x480)");
  serve_command->add_option("--fps", serve_args->fps, "frames per second (default 30)");
  serve_command->add_option("--bitrate", serve_args->bitrate, "VP8 kbit/s (default 1500)");
  serve_command->add_option("--keyframe-interval", serve_args->keyframe_interval,
                            "longest run without a keyframe, seconds (default 2)");
  serve_command->add_option("--max-viewers", serve_args->max_viewers,
                            "viewers at once (default 8)");
  serve_command->add_flag("--stamp", serve_args->stamp,
                          "draw the time into each frame (for view --measure-latency)");
  serve_command->add_option("--name", serve_args->name, "the server's name (default: host name)");
  serve_command->add_option("--id", serve_args->id,
                            "the server's id (default: camera-HOST[-NAME])");
  serve_command->add_option("--state-dir", serve_args->state_dir,
                            "where the registration token is kept");
  serve_command->callback([&run, &global, serve_args] {
    run = [&global, serve_args] { return serve(global, *serve_args); };
  });

  auto view_args = std::make_shared<ViewArgs>();
  CLI::App* view_command = camera_app->add_subcommand("view", "watch and record a camera");
  view_command->add_option("server,--server", view_args->server,
                           "the camera's id or name (default: the only one in the room)");
  view_command->add_option("--record", view_args->record, "record into this folder");
  view_command->add_flag("--record-only", view_args->record_only,
                         "record without decoding or showing (a headless recorder)");
  view_command->add_flag("--window", view_args->window, "show a window even without $DISPLAY");
  view_command->add_flag("--no-window", view_args->no_window, "decode without showing");
  view_command->add_option("--segment", view_args->segment,
                           "length of one recording file (default 10m)");
  view_command->add_option("--keep-age", view_args->keep_age,
                           "delete recordings older than this (30d)");
  view_command->add_option("--keep-size", view_args->keep_size,
                           "delete the oldest recordings beyond this total (50G)");
  view_command->add_option("--keep-free", view_args->keep_free,
                           "delete the oldest recordings to keep this much disk free "
                           "(default 1G)");
  view_command->add_option("--duration", view_args->duration, "stop after this long (1h)");
  view_command->add_option("--snapshot", view_args->snapshot,
                           "save a JPEG of the current frame to this file, and stop");
  view_command->add_flag("--measure-latency", view_args->measure_latency,
                         "read the time a --stamp camera draws (same clock on both sides)");
  view_command->add_flag("--stats", view_args->stats, "print a JSON line of figures when stopping");
  view_command->callback([&run, &global, view_args] {
    run = [&global, view_args] { return view(global, *view_args); };
  });
}

}  // namespace peernet::cli
