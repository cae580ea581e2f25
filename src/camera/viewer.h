#pragma once

// The viewing side's picture: frames as they arrive over the connection, shown in a window or
// decoded and counted, and recorded as they are (no decoding, no re-encoding) into WebM files
// of a fixed length.
//
//   appsrc (VP8) -> tee -> vp8dec -> window, or counted
//                       \-> splitmuxsink (webmmux): NAME_2026-11-30_14-05-00.webm, ...

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <peernet/peernet.h>

namespace peernet::camera {

struct ViewerOptions {
  /// Show the video in a window (needs a display).
  bool window = false;
  /// Decode without showing: to count frames and read time stamps (ignored with `window`).
  bool decode = true;
  /// Read the time stamps a `stamp_time` source draws, for latency figures.
  bool read_stamps = false;
  /// Where recordings go; empty: no recording.
  std::filesystem::path record_dir;
  /// The camera's name, the first part of each recording's file name.
  std::string camera_name = "camera";
  /// How long one recording file runs before the next begins.
  std::chrono::seconds segment{600};
};

struct ViewerStats {
  std::uint64_t frames_received = 0;
  std::uint64_t frames_decoded = 0;
  std::uint32_t width = 0;  ///< of the last decoded frame
  std::uint32_t height = 0;
  /// When the first frame was decoded (knock to picture, with the time of the knock).
  std::optional<std::chrono::steady_clock::time_point> first_decoded;
  /// Milliseconds from the source's time stamp to the decoded frame, one per stamped frame (the
  /// first kMaxLatencies: nine hours at 30 fps).
  std::vector<double> latencies_ms;
  /// Every recording file started, in order.
  std::vector<std::filesystem::path> segments;
};

class Viewer {
 public:
  /// `keyframe_wanted` runs, inside push(), when frames had to be dropped (decoding or the disk
  /// fell 4 MiB behind) and the stream can only go on from a keyframe: ask the camera for one.
  Viewer(ViewerOptions options, std::function<void()> keyframe_wanted);
  ~Viewer();
  Viewer(const Viewer&) = delete;
  Viewer& operator=(const Viewer&) = delete;

  /// One frame from the connection. The pipeline starts on the first keyframe, whose header
  /// gives the picture size (at most 7680x4320); a keyframe of another size ends the stream and
  /// starts a new one, at most once per 5 s. A pipeline that cannot start sets failure().
  void push(const VideoFrame& frame);
  /// The connection ended: the recording in progress is finished as a whole file (its index
  /// written), and the next frame starts a new stream. Blocks up to a few seconds.
  void end_stream();

  ViewerStats stats() const;
  /// stats() without the latencies and segments: cheap enough to ask many times a second.
  ViewerStats progress() const;
  /// The file being written, or empty.
  std::filesystem::path current_segment() const;
  /// A fatal error of the pipeline (a disk full, no display), once one happened.
  std::string failure() const;

 private:
  struct Stream;
  void start_stream(std::uint32_t width, std::uint32_t height);

  std::function<void()> keyframe_wanted_;
  std::unique_ptr<Stream> stream_;
  struct Shared;
  std::shared_ptr<Shared> shared_;  // what the streaming threads update
};

}  // namespace peernet::camera
