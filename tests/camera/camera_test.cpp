// The camera end to end in this process: the test pattern encoded once by a CameraSource, a real
// peernetd on loopback, a serving Client with the CameraService, and viewing Clients whose
// frames go into a Viewer that decodes (and records) them, over real WebRTC video tracks.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <utility>
#include <vector>

#include <gst/pbutils/pbutils.h>
#include <gtest/gtest.h>

#include "camera.pb.h"
#include "camera/camera_service.h"
#include "camera/camera_source.h"
#include "camera/gst_util.h"
#include "camera/viewer.h"
#include "integration/daemon_process.h"
#include "peernet/peernet.h"

namespace peernet::camera {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using testing::DaemonProcess;
using testing::TempDir;

/// Waits until `done` holds, up to `timeout`.
template <class Done>
bool eventually(Done done, milliseconds timeout = seconds{15}) {
  const auto give_up = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= give_up) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds{20});
  }
  return true;
}

/// One viewing client: its connection, and a Viewer that takes its frames.
struct Watcher {
  std::unique_ptr<Viewer> viewer;  // first, so destroyed last: the client calls it until it goes
  std::unique_ptr<Client> client;
  std::shared_ptr<Connection> connection;
  std::unique_ptr<KeepAlive> keep_alive;  // after the connection: stopped first
  Clock::time_point connected_at;
};

class CameraTest : public ::testing::Test {
 protected:
  ClientOptions options() const {
    ClientOptions options;
    options.daemon = "http://127.0.0.1:" + std::to_string(daemon_.port());
    options.loopback_only = true;
    options.poll_wait = seconds{5};
    options.connect_timeout = seconds{20};
    return options;
  }

  /// Starts the camera on the test pattern and serves it as "cam".
  void serve(SourceOptions source_options,
             std::size_t max_viewers = CameraService::kDefaultMaxViewers) {
    source_ = CameraSource::open(source_options);
    service_ = std::make_unique<CameraService>(*source_, max_viewers);
    serving_ = std::make_unique<Client>(options());
    Server server;
    server.set_unique_id("cam");
    server.set_display_name("porch");
    *server.add_services() = service_->describe();
    ServeHandlers handlers;
    handlers.screen = [this](const Knock& knock) { return service_->screen(knock); };
    handlers.connection = [this](const std::shared_ptr<Connection>& connection) {
      service_->attach(connection, "viewer");
    };
    serving_->serve(server, std::move(handlers));
  }

  /// A viewing client with its Viewer; `pings` as a viewer should, unless told not to.
  Watcher watch(ViewerOptions viewer_options = {}, bool pings = true) {
    Watcher watcher;
    watcher.client = std::make_unique<Client>(options());
    // The connection is made after the viewer, whose keyframe requests need the connection:
    // the holder breaks the cycle.
    auto holder = std::make_shared<std::weak_ptr<Connection>>();
    watcher.viewer = std::make_unique<Viewer>(viewer_options, [holder] {
      if (auto connection = holder->lock()) {
        connection->request_keyframe();
      }
    });
    const auto servers = watcher.client->find(std::string(kProtocol));
    EXPECT_EQ(servers.size(), 1U);
    if (servers.empty()) {
      return watcher;
    }
    auto* viewer = watcher.viewer.get();
    watcher.connection = watcher.client->connect(
        servers[0], std::string(kProtocol), {std::string(kChannelLabel)},
        VideoIn{[viewer](const VideoFrame& frame) { viewer->push(frame); }});
    *holder = watcher.connection;
    watcher.connected_at = Clock::now();
    if (pings) {
      watcher.keep_alive = std::make_unique<KeepAlive>(watcher.connection->channels().front());
    }
    return watcher;
  }

  void TearDown() override {
    if (service_) {
      service_->stop();  // before the serving client goes: its thread uses the channels
    }
  }

  // Destroyed in reverse: clients before the service and source they call.
  DaemonProcess daemon_;
  std::unique_ptr<CameraSource> source_;
  std::unique_ptr<CameraService> service_;
  std::unique_ptr<Client> serving_;
};

SourceOptions small_pattern() {
  SourceOptions options;
  options.source = "test";
  options.width = 320;
  options.height = 240;
  options.frame_rate = 15;
  options.bitrate_kbps = 400;
  return options;
}

TEST_F(CameraTest, TheServiceAdvertisesCodecSizeAndFrameRate) {
  serve(small_pattern());
  Client looking(options());
  const auto servers = looking.find(std::string(kProtocol));
  ASSERT_EQ(servers.size(), 1U);
  ASSERT_EQ(servers[0].services_size(), 1);
  const Service& service = servers[0].services(0);
  EXPECT_EQ(service.version(), kVersion);
  EXPECT_EQ(service.GetExtension(camera::codec), "VP8");
  EXPECT_EQ(service.GetExtension(camera::width), 320U);
  EXPECT_EQ(service.GetExtension(camera::height), 240U);
  EXPECT_EQ(service.GetExtension(camera::frame_rate), 15U);
  EXPECT_TRUE(service.GetExtension(camera::snapshot));
}

TEST_F(CameraTest, AViewerDecodesFramesOfTheServedSize) {
  serve(small_pattern());
  Watcher watcher = watch();
  ASSERT_TRUE(watcher.connection);
  ASSERT_TRUE(eventually([&] { return watcher.viewer->stats().frames_decoded >= 30; }))
      << "decoded " << watcher.viewer->stats().frames_decoded << " frames of "
      << watcher.viewer->stats().frames_received << " received";
  const auto stats = watcher.viewer->stats();
  EXPECT_EQ(stats.width, 320U);
  EXPECT_EQ(stats.height, 240U);
  EXPECT_TRUE(watcher.viewer->failure().empty()) << watcher.viewer->failure();
}

/// Writes a 1 s WebM of `width`x`height` VP8 at 15 fps with a Vorbis audio track.
void write_clip(const fs::path& path) {
  init_gstreamer();
  const std::string description =
      "webmmux name=mux ! filesink location=\"" + path.string() +
      "\" videotestsrc num-buffers=15 ! video/x-raw,width=320,height=240,framerate=15/1 ! "
      "vp8enc deadline=1 ! mux. audiotestsrc num-buffers=20 ! audioconvert ! vorbisenc ! mux.";
  GError* error = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
  ASSERT_NE(pipeline, nullptr) << (error != nullptr ? error->message : "");
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* end = gst_bus_timed_pop_filtered(
      bus, 20 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(GST_MESSAGE_TYPE(end), GST_MESSAGE_EOS);
  gst_message_unref(end);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

TEST_F(CameraTest, AVideoFileWithAudioIsServedInALoopAtItsOwnPace) {
  const TempDir dir;
  const fs::path clip = dir.path() / "clip.webm";
  write_clip(clip);
  SourceOptions options = small_pattern();
  options.source = clip.string();
  serve(options);
  EXPECT_EQ(source_->info().description, "clip.webm");
  Watcher watcher = watch();
  // 15 frames a loop: three loops' worth proves it starts again, at its own pace.
  const auto start = Clock::now();
  ASSERT_TRUE(eventually([&] { return watcher.viewer->stats().frames_decoded >= 45; }))
      << "decoded " << watcher.viewer->stats().frames_decoded;
  EXPECT_GT(Clock::now() - start, seconds{2}) << "played faster than its own pace";
  EXPECT_TRUE(source_->failure().empty()) << source_->failure();
}

TEST_F(CameraTest, ANewViewerGetsAKeyframeAtOnceNotAtTheNextScheduledOne) {
  SourceOptions options = small_pattern();
  options.keyframe_interval = 30;  // left alone, the encoder would make one every 30 s
  serve(options);
  Watcher first = watch();
  ASSERT_TRUE(eventually([&] { return first.viewer->stats().frames_decoded > 0; }));
  // The second joins mid-stream, long after the first keyframe.
  std::this_thread::sleep_for(milliseconds{1500});
  Watcher second = watch();
  ASSERT_TRUE(eventually([&] { return second.viewer->stats().frames_decoded > 0; }, seconds{5}))
      << "the second viewer waited for a keyframe";
  const auto waited = Clock::now() - second.connected_at;
  EXPECT_LT(waited, seconds{2}) << "first frame after "
                                << std::chrono::duration_cast<milliseconds>(waited).count()
                                << " ms";
  EXPECT_GE(source_->stats().keyframes_forced, 2U);
}

TEST_F(CameraTest, AViewerThatAsksForAKeyframeGetsOne) {
  SourceOptions options = small_pattern();
  options.keyframe_interval = 30;
  serve(options);
  Watcher watcher = watch();
  ASSERT_TRUE(eventually([&] { return watcher.viewer->stats().frames_decoded > 0; }));
  std::this_thread::sleep_for(milliseconds{500});  // past the spacing of forced keyframes
  const auto before = source_->stats();
  watcher.connection->request_keyframe();  // an RTCP PLI, turned into a keyframe by the camera
  EXPECT_TRUE(eventually(
      [&] {
        const auto now = source_->stats();
        return now.keyframes_forced > before.keyframes_forced && now.keyframes > before.keyframes;
      },
      seconds{3}))
      << "no keyframe after the viewer's request";
}

TEST_F(CameraTest, TwoViewersAtOnceShareOneEncoder) {
  serve(small_pattern());
  Watcher first = watch();
  Watcher second = watch();
  ASSERT_TRUE(first.connection && second.connection);
  const auto source_before = source_->stats();
  const auto encoded_before = source_before.frames_encoded;
  const auto decoded_before =
      std::min(first.viewer->stats().frames_decoded, second.viewer->stats().frames_decoded);
  const auto start = Clock::now();
  std::this_thread::sleep_for(seconds{3});
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const auto encoded = source_->stats().frames_encoded - encoded_before;
  EXPECT_LE(static_cast<double>(encoded), 15 * elapsed * 1.2)
      << "frames were encoded more than once";
  // Each encoded frame went to both viewers' tracks.
  const auto sent = source_->stats().frames_sent - source_before.frames_sent;
  EXPECT_GE(static_cast<double>(sent), 1.9 * static_cast<double>(encoded));
  EXPECT_LE(sent, 2 * encoded + 2);
  EXPECT_GE(static_cast<double>(encoded), 15 * elapsed * 0.6);
  for (const Watcher* watcher : {&first, &second}) {
    const auto decoded = watcher->viewer->stats().frames_decoded - decoded_before;
    EXPECT_GE(static_cast<double>(decoded), 15 * elapsed * 0.6) << "a viewer fell behind";
  }
  EXPECT_EQ(service_->viewers(), 2U);
}

TEST_F(CameraTest, AViewerThatLeavesFreesItsPlace) {
  serve(small_pattern());
  {
    Watcher gone = watch();
    ASSERT_TRUE(eventually([&] { return gone.viewer->stats().frames_decoded > 0; }));
  }  // the client is destroyed without a word
  ASSERT_TRUE(eventually([&] { return service_->viewers() == 0; }, kSilenceLimit + seconds{10}))
      << "the vanished viewer is still counted";
  Watcher next = watch();
  EXPECT_TRUE(eventually([&] { return next.viewer->stats().frames_decoded >= 10; }));
}

TEST_F(CameraTest, KnocksAtOnceCannotPassTheViewerLimit) {
  serve(small_pattern(), /*max_viewers=*/1);
  // Both knock before either connection is open: the first accepted holds the only place.
  std::vector<std::thread> knockers;
  std::mutex mutex;
  std::vector<std::string> refusals;
  std::vector<Watcher> watchers(2);
  for (std::size_t i = 0; i < 2; ++i) {
    knockers.emplace_back([&, i] {
      try {
        watchers[i] = watch();
      } catch (const Error& error) {
        const std::lock_guard lock(mutex);
        refusals.emplace_back(error.what());
        EXPECT_EQ(error.code(), Errc::kRefused) << error.what();
      }
    });
  }
  for (auto& knocker : knockers) {
    knocker.join();
  }
  ASSERT_EQ(refusals.size(), 1U);
  EXPECT_NE(refusals[0].find("the camera has 1 viewers, its limit"), std::string::npos)
      << refusals[0];
  EXPECT_EQ(service_->viewers(), 1U);
}

TEST_F(CameraTest, AViewerThatSaysNothingIsLetGo) {
  serve(small_pattern());
  Watcher quiet = watch({}, /*pings=*/false);
  ASSERT_TRUE(eventually([&] { return quiet.viewer->stats().frames_decoded > 0; }));
  EXPECT_EQ(service_->viewers(), 1U);
  // Video keeps coming, but the viewer never speaks on its channel: after kSilenceLimit the
  // camera closes it, as it would a viewer that vanished without a word.
  ASSERT_TRUE(eventually([&] { return service_->viewers() == 0; }, kSilenceLimit + seconds{5}));
  EXPECT_TRUE(eventually([&] { return !quiet.connection->is_open(); }, seconds{10}));
  EXPECT_GE(Clock::now() - quiet.connected_at, kSilenceLimit - seconds{1});
}

TEST_F(CameraTest, ASnapshotIsAJpegOfTheCurrentFrame) {
  serve(small_pattern());
  Watcher watcher = watch();
  ASSERT_TRUE(watcher.connection);
  const auto channels = watcher.connection->channels();
  ASSERT_EQ(channels.size(), 1U);
  const auto jpeg = fetch_snapshot(*channels[0], seconds{10});
  ASSERT_GT(jpeg.size(), 1000U);
  EXPECT_EQ(jpeg[0], std::byte{0xff});
  EXPECT_EQ(jpeg[1], std::byte{0xd8});  // start of image
  EXPECT_EQ(jpeg[jpeg.size() - 2], std::byte{0xff});
  EXPECT_EQ(jpeg[jpeg.size() - 1], std::byte{0xd9});  // end of image
  // Its frame header (SOF0: FF C0, length, precision, height, width) gives the camera's size.
  std::optional<std::pair<int, int>> size;
  for (std::size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (jpeg[i] == std::byte{0xff} && jpeg[i + 1] == std::byte{0xc0}) {
      const auto at = [&](std::size_t k) { return std::to_integer<int>(jpeg[k]); };
      size = std::pair{at(i + 7) * 256 + at(i + 8), at(i + 5) * 256 + at(i + 6)};
      break;
    }
  }
  ASSERT_TRUE(size.has_value()) << "no baseline frame header";
  EXPECT_EQ(size->first, 320);
  EXPECT_EQ(size->second, 240);

  // The channel serves one snapshot after another.
  EXPECT_GT(fetch_snapshot(*channels[0], seconds{10}).size(), 1000U);
}

/// The duration and picture size of a recording, as GStreamer's discoverer reads the file.
struct Discovered {
  double seconds = 0;
  unsigned width = 0;
  unsigned height = 0;
  std::string codec;
};

Discovered discover(const fs::path& file) {
  Discovered found;
  GError* error = nullptr;
  GstDiscoverer* discoverer = gst_discoverer_new(10 * GST_SECOND, &error);
  if (discoverer == nullptr) {
    ADD_FAILURE() << (error != nullptr ? error->message : "no discoverer");
    g_clear_error(&error);
    return found;
  }
  gchar* uri = gst_filename_to_uri(file.c_str(), nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(discoverer, uri, &error);
  g_free(uri);
  if (info == nullptr || gst_discoverer_info_get_result(info) != GST_DISCOVERER_OK) {
    ADD_FAILURE() << file
                  << " is not a playable file: " << (error != nullptr ? error->message : "unknown");
  } else {
    found.seconds = static_cast<double>(gst_discoverer_info_get_duration(info)) / GST_SECOND;
    GList* streams = gst_discoverer_info_get_video_streams(info);
    if (streams != nullptr) {
      auto* video = GST_DISCOVERER_VIDEO_INFO(streams->data);
      found.width = gst_discoverer_video_info_get_width(video);
      found.height = gst_discoverer_video_info_get_height(video);
      GstCaps* caps = gst_discoverer_stream_info_get_caps(GST_DISCOVERER_STREAM_INFO(video));
      found.codec = gst_structure_get_name(gst_caps_get_structure(caps, 0));
      gst_caps_unref(caps);
    }
    gst_discoverer_stream_info_list_free(streams);
  }
  g_clear_error(&error);
  if (info != nullptr) {
    gst_discoverer_info_unref(info);
  }
  g_object_unref(discoverer);
  return found;
}

TEST_F(CameraTest, RecordingsAreSegmentsOfTheSetLengthThatPlay) {
  // A keyframe every second: a file is cut at the keyframe nearest its length, so each runs
  // within a second of it.
  SourceOptions options = small_pattern();
  options.keyframe_interval = 1;
  serve(options);
  const TempDir dir;
  ViewerOptions viewer_options;
  viewer_options.decode = false;
  viewer_options.record_dir = dir.path();
  viewer_options.camera_name = "porch";
  viewer_options.segment = seconds{3};
  Watcher watcher = watch(viewer_options);
  ASSERT_TRUE(
      eventually([&] { return watcher.viewer->stats().segments.size() >= 3; }, seconds{30}));
  watcher.viewer->end_stream();  // finishes the third file properly
  const auto segments = watcher.viewer->stats().segments;
  ASSERT_GE(segments.size(), 3U);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    SCOPED_TRACE(segments[i].string());
    EXPECT_TRUE(
        std::regex_match(segments[i].filename().string(),
                         std::regex(R"(porch_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d(-\d+)?\.webm)")));
    const Discovered found = discover(segments[i]);
    EXPECT_EQ(found.codec, "video/x-vp8");
    EXPECT_EQ(found.width, 320U);
    EXPECT_EQ(found.height, 240U);
    if (i + 1 < segments.size()) {  // the whole ones; the last ended when we stopped
      EXPECT_GT(found.seconds, 1.9);
      EXPECT_LT(found.seconds, 4.5);
    }
  }
}

TEST_F(CameraTest, LatencyFromCaptureToDecodedFrameIsMeasuredAndSmall) {
  SourceOptions options = small_pattern();
  options.width = 640;
  options.height = 480;
  options.stamp_time = true;
  serve(options);
  ViewerOptions viewer_options;
  viewer_options.read_stamps = true;
  Watcher watcher = watch(viewer_options);
  ASSERT_TRUE(eventually([&] { return watcher.viewer->stats().latencies_ms.size() >= 30; }))
      << "stamps read on " << watcher.viewer->stats().latencies_ms.size() << " of "
      << watcher.viewer->stats().frames_decoded << " frames";
  auto latencies = watcher.viewer->stats().latencies_ms;
  std::sort(latencies.begin(), latencies.end());
  const double median = latencies[latencies.size() / 2];
  EXPECT_GT(median, 0.0) << "a stamp from the future: misread";
  EXPECT_LT(median, 1000.0);
  std::printf("capture to decoded frame: median %.1f ms over %zu frames\n", median,
              latencies.size());
}

}  // namespace
}  // namespace peernet::camera
