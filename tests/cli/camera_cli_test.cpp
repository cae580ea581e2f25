// `peernet camera` end to end: a real peernetd on loopback, `peernet camera serve` on the test
// pattern, `peernet camera view` in other processes, real WebRTC video between them.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/process.h"
#include "integration/daemon_process.h"

namespace peernet {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::DaemonProcess;
using testing::Outcome;
using testing::Process;
using testing::TempDir;
using testing::wait_for;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class CameraCliTest : public ::testing::Test {
 protected:
  fs::path state() const { return logs_.path() / "state"; }

  /// Starts `peernet camera serve` on a small test pattern and waits until it is registered.
  std::unique_ptr<Process> serve(const std::string& size = "320x240",
                                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"camera", "serve", "--source",    "test",          "--size",
                                  size,     "--fps", "15",          "--bitrate",     "400",
                                  "--name", "porch", "--state-dir", state().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = peernet_.start(args);
    wait_for(
        *process, [&] { return process->err().find("Ctrl-C") != std::string::npos; },
        "serve to register");
    return process;
  }

  /// The JSON line `view --stats` prints when it stops.
  static nlohmann::json stats_of(const Outcome& outcome) {
    const auto stats = nlohmann::json::parse(outcome.out, nullptr, false);
    EXPECT_TRUE(stats.is_object()) << "stdout: " << outcome.out << "\nstderr: " << outcome.err;
    return stats.is_object() ? stats : nlohmann::json::object();
  }

  DaemonProcess daemon_;
  TempDir logs_;
  testing::PeernetRunner peernet_{daemon_.port(), logs_.path()};
};

TEST_F(CameraCliTest, ViewDecodesAndRecordsSegmentsNamedByCameraAndTime) {
  auto server = serve();
  const TempDir recordings;
  const Outcome viewed =
      peernet_.run({"camera", "view", "--no-window", "--duration", "10s", "--stats", "--record",
                    recordings.path().string(), "--segment", "2s"});
  ASSERT_EQ(viewed.status, 0) << viewed.err;
  EXPECT_NE(viewed.err.find("watching \"porch\" (VP8 320x240 at 15 fps)"), std::string::npos)
      << viewed.err;
  const auto stats = stats_of(viewed);
  // 15 fps for 10 s, less the first frame's wait (seconds under a sanitizer, with the other core
  // busy).
  EXPECT_GE(stats.value("frames_decoded", 0), 60) << stats.dump();
  EXPECT_EQ(stats.value("width", 0), 320);
  EXPECT_EQ(stats.value("height", 0), 240);
  EXPECT_LT(stats.value("first_frame_ms", 1e9), 5000.0) << stats.dump();
  ASSERT_GE(stats["segments"].size(), 2U) << stats.dump();
  for (const auto& segment : stats["segments"]) {
    const fs::path path = segment.get<std::string>();
    EXPECT_EQ(path.parent_path(), recordings.path());
    EXPECT_TRUE(path.filename().string().starts_with("porch_2")) << path;
    const std::string bytes = read_file(path);
    ASSERT_GT(bytes.size(), 10'000U) << path;
    EXPECT_EQ(bytes.substr(0, 4), "\x1a\x45\xdf\xa3") << path << " is not an EBML (WebM) file";
    EXPECT_NE(bytes.find("webm"), std::string::npos) << path;
  }
}

TEST_F(CameraCliTest, ARecorderReconnectsAfterTheCameraRestarts) {
  auto server = serve();
  const TempDir recordings;
  auto viewer = peernet_.start({"camera", "view", "--record-only", "--record",
                                recordings.path().string(), "--duration", "25s", "--stats"});
  const auto segments = [&] {
    return std::distance(fs::directory_iterator(recordings.path()), fs::directory_iterator{});
  };
  ASSERT_TRUE(wait_for(
      *viewer, [&] { return segments() >= 1; }, "a first recording"));
  std::this_thread::sleep_for(seconds{2});
  server->kill_now();  // no goodbye: the viewer notices the silence
  std::this_thread::sleep_for(seconds{1});
  server = serve();
  ASSERT_TRUE(wait_for(
      *viewer, [&] { return viewer->err().find("reconnected") != std::string::npos; },
      "the viewer to reconnect"));
  ASSERT_TRUE(wait_for(
      *viewer, [&] { return segments() >= 2; }, "a recording after the restart"));
  viewer->signal(SIGTERM);
  ASSERT_EQ(viewer->wait(seconds{20}), 0) << viewer->err();
  const auto stats = nlohmann::json::parse(viewer->out(), nullptr, false);
  ASSERT_TRUE(stats.is_object()) << viewer->out();
  EXPECT_GE(stats.value("reconnects", 0), 1);
  EXPECT_EQ(stats.value("frames_decoded", -1), 0) << "--record-only decodes nothing";
  ASSERT_GE(stats["segments"].size(), 2U);
  const fs::path after = stats["segments"].back().get<std::string>();
  EXPECT_GT(fs::file_size(after), 10'000U) << "the recording after the restart is empty";
}

TEST_F(CameraCliTest, ASnapshotIsSavedAsAJpeg) {
  auto server = serve();
  const fs::path target = logs_.path() / "now.jpg";
  const Outcome saved = peernet_.run({"camera", "view", "--snapshot", target.string()});
  ASSERT_EQ(saved.status, 0) << saved.err;
  const std::string jpeg = read_file(target);
  ASSERT_GT(jpeg.size(), 1000U);
  EXPECT_EQ(jpeg.substr(0, 2), "\xff\xd8");
  EXPECT_EQ(jpeg.substr(jpeg.size() - 2), "\xff\xd9");
  EXPECT_FALSE(fs::exists(target.string() + ".peernet-new"));
}

TEST_F(CameraCliTest, LatencyIsReadFromTheTimeDrawnIntoEachFrame) {
  auto server = serve("640x480", {"--stamp"});
  const Outcome viewed = peernet_.run(
      {"camera", "view", "--no-window", "--duration", "10s", "--stats", "--measure-latency"});
  ASSERT_EQ(viewed.status, 0) << viewed.err;
  const auto stats = stats_of(viewed);
  ASSERT_TRUE(stats.contains("latency_ms")) << stats.dump();
  EXPECT_GE(stats["latency_ms"].value("count", 0), 30) << stats.dump();
  const double median = stats["latency_ms"].value("p50", -1.0);
  EXPECT_GT(median, 0.0) << stats.dump();
  EXPECT_LT(median, 500.0) << stats.dump();
}

TEST_F(CameraCliTest, TheWindowShowsTheVideoOnADisplay) {
  // Xvfb (installed by .ci/install-deps) is a display without a screen; this test owns it, by
  // PID, and names it for the viewer. -displayfd 1 prints the display number it picked.
  ASSERT_TRUE(fs::exists("/usr/bin/Xvfb")) << "Xvfb is not installed";
  Process display("/usr/bin/Xvfb",
                  {"-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "640x480x24"},
                  logs_.path() / "xvfb.out", logs_.path() / "xvfb.err");
  ASSERT_TRUE(wait_for(
      display, [&] { return display.out().find('\n') != std::string::npos; },
      "Xvfb to pick a display"));
  const std::string number = display.out().substr(0, display.out().find('\n'));
  ::setenv("DISPLAY", (":" + number).c_str(), 1);
  // An X11 window: Mesa's software OpenGL deadlocks with AddressSanitizer's thread bookkeeping
  // at exit, and the OpenGL sink gains nothing here.
  ::setenv("GST_PLUGIN_FEATURE_RANK", "glimagesink:NONE", 1);
  auto server = serve();
  const Outcome viewed =
      peernet_.run({"camera", "view", "--window", "--duration", "12s", "--stats"});
  ::unsetenv("DISPLAY");
  ASSERT_EQ(viewed.status, 0) << viewed.err;
  const auto stats = stats_of(viewed);
  EXPECT_GE(stats.value("frames_decoded", 0), 20) << stats.dump();
  EXPECT_EQ(stats.value("width", 0), 320);
}

TEST_F(CameraCliTest, MistakesGetAClearMessageAndStatus) {
  const Outcome size = peernet_.run({"camera", "serve", "--source", "test", "--size", "big"});
  EXPECT_EQ(size.status, 2) << size.err;
  EXPECT_NE(size.err.find("is not WIDTHxHEIGHT"), std::string::npos) << size.err;

  const Outcome odd = peernet_.run({"camera", "serve", "--source", "test", "--size", "641x480"});
  EXPECT_NE(odd.status, 0);
  EXPECT_NE(odd.err.find("641x480 is not a picture size"), std::string::npos) << odd.err;

  const Outcome device = peernet_.run({"camera", "serve", "--source", "/dev/null"});
  EXPECT_NE(device.status, 0);
  EXPECT_NE(device.err.find("/dev/null is not a video capture device"), std::string::npos)
      << device.err;

  const Outcome file = peernet_.run({"camera", "serve", "--source", "no-such-clip.mkv"});
  EXPECT_NE(file.status, 0);
  EXPECT_NE(file.err.find("no such video file"), std::string::npos) << file.err;

  // A file that is no video: GStreamer finds out once playing; serve says so and withdraws.
  const fs::path notes = logs_.path() / "notes.txt";
  std::ofstream(notes) << "not a video\n";
  const Outcome broken = peernet_.run(
      {"camera", "serve", "--source", notes.string(), "--state-dir", state().string()});
  EXPECT_EQ(broken.status, 1) << broken.err;
  EXPECT_NE(broken.err.find("withdrawing"), std::string::npos) << broken.err;

  const Outcome headless = peernet_.run({"camera", "view", "--record-only"});
  EXPECT_EQ(headless.status, 2) << headless.err;
  EXPECT_NE(headless.err.find("needs --record"), std::string::npos) << headless.err;

  const Outcome keep =
      peernet_.run({"camera", "view", "--record", logs_.path().string(), "--keep-size", "lots"});
  EXPECT_EQ(keep.status, 2) << keep.err;
  EXPECT_NE(keep.err.find("is not a size"), std::string::npos) << keep.err;

  const Outcome nobody = peernet_.run({"camera", "view", "--no-window", "--duration", "3s"});
  EXPECT_EQ(nobody.status, 5) << nobody.err;  // no camera in the room
}

}  // namespace
}  // namespace peernet
