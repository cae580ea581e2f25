#pragma once

// What the camera's pipelines share: GStreamer started once, and a clear message when an
// element is missing instead of a pipeline that fails to build.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include <gst/gst.h>

namespace peernet::camera {

/// gst_init, once per process.
void init_gstreamer();

/// Throws Error (kInvalid) naming the first missing element and the Debian package that has it.
void require_elements(std::initializer_list<const char*> elements);

/// A pipeline that is playing, and a thread that watches its bus. Errors and end-of-stream are
/// handed to `on_message` on that thread. Destruction stops the thread, then the pipeline.
class PlayingPipeline {
 public:
  using MessageHandler = std::function<void(GstMessage* message)>;
  /// Takes `pipeline` (a floating or owned reference) and sets it playing; false from
  /// start() when GStreamer refuses.
  PlayingPipeline(GstElement* pipeline, MessageHandler on_message);
  /// A pipeline built from gst-launch's `description`; throws Error (kInvalid) saying why it
  /// could not be, as "GStreamer could not build the `what` pipeline: ...".
  static std::unique_ptr<PlayingPipeline> parse(const std::string& description,
                                                const std::string& what, MessageHandler on_message);
  ~PlayingPipeline();
  PlayingPipeline(const PlayingPipeline&) = delete;
  PlayingPipeline& operator=(const PlayingPipeline&) = delete;

  bool start();
  GstElement* get() const { return pipeline_; }
  /// The element called `name` in the pipeline (the pipeline keeps the reference).
  GstElement* element(const char* name) const;

 private:
  void watch();

  GstElement* pipeline_;
  MessageHandler on_message_;
  std::atomic<bool> stopping_ = false;
  std::thread thread_;
};

/// The text of an error message on the bus.
std::string error_text(GstMessage* message);

/// A VP8 keyframe's picture size, read from its header (RFC 6386, section 9.1); nullopt for a
/// delta frame or bytes that are not VP8.
struct PictureSize {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  bool operator==(const PictureSize&) const = default;
};
std::optional<PictureSize> vp8_keyframe_size(std::span<const std::byte> frame);

}  // namespace peernet::camera
