#pragma once

// The serving side's picture: one capture and one VP8 encoder for every viewer. Each encoded
// frame goes to every attached VideoSender; a viewer that joins asks for a keyframe, and gets
// it at once instead of waiting for the next one the encoder would make by itself.
//
//   source -> convert/scale/rate -> I420 WxH@fps -> tee -> vp8enc -> appsink (to the senders)
//                                                      \-> last frame (for snapshots)

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <peernet/peernet.h>

namespace peernet::camera {

/// Where the picture comes from.
struct SourceOptions {
  /// "auto" (the first /dev/video* that captures, else the test pattern), "test" (GStreamer's
  /// test pattern, moving), a V4L2 device ("/dev/video0"), or a video file (played in a loop).
  std::string source = "auto";
  std::uint32_t width = 640;
  std::uint32_t height = 480;
  std::uint32_t frame_rate = 30;
  /// VP8 target bitrate.
  std::uint32_t bitrate_kbps = 1500;
  /// The longest run without a keyframe, in seconds. A viewer that joins, or a recorder that
  /// starts a file, asks for one at once, so this only bounds recovery from lost packets.
  std::uint32_t keyframe_interval = 2;
  /// Draws the wall-clock time into each frame (a row of black and white blocks a viewer reads
  /// back with read_time_stamp): for measuring end-to-end latency.
  bool stamp_time = false;
};

/// What the source turned out to be, for the service's extension fields and the log.
struct SourceInfo {
  std::string description;  ///< "test pattern", "/dev/video0 (HD Webcam)", "clip.mkv"
  std::string codec = "VP8";
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  std::uint32_t frame_rate = 0;
};

/// Counters for the log and the tests.
struct SourceStats {
  std::uint64_t frames_encoded = 0;
  /// Frames handed to viewers' tracks: frames_encoded times the viewers, when one encoding
  /// serves them all.
  std::uint64_t frames_sent = 0;
  std::uint64_t keyframes = 0;
  std::uint64_t keyframes_forced = 0;
};

class CameraSource {
 public:
  /// Builds and starts the pipeline. Throws Error (kInvalid) naming what is missing: no such
  /// device, no encoder, a file GStreamer cannot play.
  static std::unique_ptr<CameraSource> open(const SourceOptions& options);
  ~CameraSource();
  CameraSource(const CameraSource&) = delete;
  CameraSource& operator=(const CameraSource&) = delete;

  const SourceInfo& info() const;
  SourceStats stats() const;

  /// Frames go to `sender` from now on, until it reports itself closed. Any thread.
  void attach(std::shared_ptr<VideoSender> sender);
  /// Asks the encoder for a keyframe soon. Requests within kKeyframeSpacing of the last forced
  /// keyframe are folded into one, so that many viewers (or a peer flooding PLIs) cannot make
  /// every frame a keyframe. Any thread.
  void request_keyframe();
  /// The current frame as a JPEG; nullopt when there is none within `wait` (a source that
  /// just started). Any thread; blocks for the encoding (tens of milliseconds).
  std::optional<std::vector<std::byte>> snapshot(
      std::chrono::milliseconds wait = std::chrono::seconds{2}) const;
  /// A fatal error of the pipeline (the camera unplugged), once one happened; empty otherwise.
  std::string failure() const;

  static constexpr std::chrono::milliseconds kKeyframeSpacing{250};

 private:
  struct Pipeline;
  explicit CameraSource(std::unique_ptr<Pipeline> pipeline);
  std::unique_ptr<Pipeline> pipeline_;
};

/// Draws `unix_millis` into an I420 luma plane as 48 blocks of black and white along the top.
void draw_time_stamp(std::uint8_t* luma, int stride, int width, int height,
                     std::uint64_t unix_millis);
/// Reads back what draw_time_stamp drew, or 0 when the frame carries no stamp (a frame too
/// small, or one whose guard blocks are wrong).
std::uint64_t read_time_stamp(const std::uint8_t* luma, int stride, int width, int height);

}  // namespace peernet::camera
