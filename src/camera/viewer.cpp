#include "camera/viewer.h"

#include <condition_variable>
#include <utility>

#include <fmt/format.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <spdlog/spdlog.h>

#include "camera/camera_source.h"
#include "camera/gst_util.h"
#include "camera/retention.h"

namespace peernet::camera {
namespace {

namespace fs = std::filesystem;

/// Latency samples kept, at most (8 MB).
constexpr std::size_t kMaxLatencies = 1'000'000;
/// How long end_stream waits for the recording to be finished.
constexpr std::chrono::seconds kFinishTimeout{5};
/// The largest picture taken from a camera (8K); a larger header is not believed.
constexpr std::uint32_t kMaxWidth = 7680;
constexpr std::uint32_t kMaxHeight = 4320;
/// A stream restarts for a new picture size at most this often.
constexpr std::chrono::seconds kRestartSpacing{5};
/// Encoded video waiting for the decoder and the recorder, at most.
constexpr guint64 kQueueBytes = guint64{4} * 1024 * 1024;

/// A frame as a buffer of its own, flagged as GStreamer flags frames that are not keyframes.
GstBuffer* to_buffer(const VideoFrame& frame) {
  GstBuffer* buffer = gst_buffer_new_memdup(frame.data.data(), frame.data.size());
  if (!frame.keyframe) {
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  }
  return buffer;
}

}  // namespace

/// What the streaming threads update, and the viewer reads.
struct Viewer::Shared {
  ViewerOptions options;
  mutable std::mutex mutex;
  std::condition_variable ended;
  ViewerStats stats;
  fs::path current;
  std::string failure;
  bool eos = false;

  static GstPadProbeReturn on_decoded(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<Shared*>(data);
    GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    GstCaps* caps = gst_pad_get_current_caps(pad);
    GstVideoInfo video;
    const bool known = caps != nullptr && gst_video_info_from_caps(&video, caps) != FALSE;
    if (caps != nullptr) {
      gst_caps_unref(caps);
    }
    if (buffer == nullptr || !known) {
      return GST_PAD_PROBE_OK;
    }
    std::uint64_t stamp = 0;
    if (self->options.read_stamps) {
      GstVideoFrame frame;
      if (gst_video_frame_map(&frame, &video, buffer, GST_MAP_READ) != FALSE) {
        stamp =
            read_time_stamp(static_cast<const std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)),
                            GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0), GST_VIDEO_FRAME_WIDTH(&frame),
                            GST_VIDEO_FRAME_HEIGHT(&frame));
        gst_video_frame_unmap(&frame);
      }
    }
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    const std::lock_guard lock(self->mutex);
    if (self->stats.frames_decoded++ == 0) {
      self->stats.first_decoded = std::chrono::steady_clock::now();
    }
    self->stats.width = static_cast<std::uint32_t>(GST_VIDEO_INFO_WIDTH(&video));
    self->stats.height = static_cast<std::uint32_t>(GST_VIDEO_INFO_HEIGHT(&video));
    if (stamp != 0 && self->stats.latencies_ms.size() < kMaxLatencies) {
      self->stats.latencies_ms.push_back(static_cast<double>(now.count()) / 1000.0 -
                                         static_cast<double>(stamp));
    }
    return GST_PAD_PROBE_OK;
  }

  /// splitmuxsink asks for the next file's name.
  static gchar* on_format_location(GstElement* /*recorder*/, guint /*fragment*/, gpointer data) {
    auto* self = static_cast<Shared*>(data);
    const std::string base =
        recording_name(self->options.camera_name, std::chrono::system_clock::now());
    fs::path path = self->options.record_dir / base;
    std::error_code ec;
    for (int n = 2; fs::exists(path, ec) && n < 1000; ++n) {  // two streams in one second
      path =
          self->options.record_dir / fmt::format("{}-{}.webm", base.substr(0, base.size() - 5), n);
    }
    spdlog::info("recording to {}", path.string());
    const std::lock_guard lock(self->mutex);
    self->current = path;
    self->stats.segments.push_back(path);
    return g_strdup(path.c_str());
  }

  void on_message(GstMessage* message) {
    const std::lock_guard lock(mutex);
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS) {
      eos = true;
      ended.notify_all();
      return;
    }
    const std::string why = error_text(message);
    spdlog::error("video pipeline: {}", why);
    if (failure.empty()) {
      failure = why;
    }
    eos = true;  // nothing more will come out of it
    ended.notify_all();
  }
};

struct Viewer::Stream {
  std::unique_ptr<PlayingPipeline> playing;
  GstElement* appsrc = nullptr;  // the pipeline's
  PictureSize size;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool awaiting_keyframe = false;  // frames were dropped: the next to go in is a keyframe
};

Viewer::Viewer(ViewerOptions options, std::function<void()> keyframe_wanted)
    : shared_(std::make_shared<Shared>()) {
  init_gstreamer();
  shared_->options = std::move(options);
  keyframe_wanted_ = std::move(keyframe_wanted);
  require_elements({"appsrc", "tee", "queue", "vp8dec", "fakesink"});
  if (shared_->options.window) {
    require_elements({"videoconvert", "autovideosink"});
  }
  if (!shared_->options.record_dir.empty()) {
    require_elements({"splitmuxsink", "webmmux"});
  }
}

Viewer::~Viewer() { end_stream(); }

void Viewer::push(const VideoFrame& frame) {
  {
    const std::lock_guard lock(shared_->mutex);
    ++shared_->stats.frames_received;
    if (!shared_->failure.empty()) {
      return;  // the pipeline is broken: the owner stops
    }
  }
  try {
    if (frame.keyframe) {
      const auto size = vp8_keyframe_size(frame.data);
      if (!size || size->width > kMaxWidth || size->height > kMaxHeight) {
        return;  // not VP8, or larger than any camera: nothing to decode or keep
      }
      if (stream_ && !(stream_->size == *size)) {
        // A camera that keeps changing size would restart the stream (a new file each time):
        // at most once per kRestartSpacing.
        if (std::chrono::steady_clock::now() - stream_->started < kRestartSpacing) {
          return;
        }
        spdlog::info("the picture changed to {}x{}", size->width, size->height);
        end_stream();
      }
      if (!stream_) {
        start_stream(size->width, size->height);
      }
    }
    if (!stream_ || (stream_->awaiting_keyframe && !frame.keyframe)) {
      return;  // waiting for a keyframe to start on
    }
    // Decoding or the disk is behind: drop until a keyframe rather than queue without end, or
    // drop frames a decoder needs.
    if (gst_app_src_get_current_level_bytes(GST_APP_SRC(stream_->appsrc)) > kQueueBytes) {
      if (!stream_->awaiting_keyframe && keyframe_wanted_) {
        keyframe_wanted_();
      }
      stream_->awaiting_keyframe = true;
      return;
    }
    stream_->awaiting_keyframe = false;
    gst_app_src_push_buffer(GST_APP_SRC(stream_->appsrc), to_buffer(frame));
  } catch (const Error& error) {
    const std::lock_guard lock(shared_->mutex);
    spdlog::error("{}", error.what());
    shared_->failure = error.what();
  }
}

void Viewer::start_stream(std::uint32_t width, std::uint32_t height) {
  const ViewerOptions& options = shared_->options;
  std::string description = fmt::format(
      "appsrc name=in is-live=true format=time do-timestamp=true "
      "caps=video/x-vp8,width={},height={},framerate=0/1 ! tee name=split ",
      width, height);
  const bool decode = options.window || options.decode;
  if (options.window) {
    description +=
        "split. ! queue ! vp8dec name=decoder ! videoconvert ! autovideosink sync=false ";
  } else if (decode) {
    description += "split. ! queue ! vp8dec name=decoder ! fakesink sync=false async=false ";
  }
  const bool record = !options.record_dir.empty();
  if (record) {
    description += fmt::format(
        "split. ! queue ! splitmuxsink name=recorder max-size-time={} max-size-bytes=0 "
        "async-finalize=true muxer-factory=webmmux ",
        std::chrono::nanoseconds(options.segment).count());
  }
  if (!decode && !record) {
    description += "split. ! fakesink sync=false async=false";
  }
  auto stream = std::make_unique<Stream>();
  auto* shared = shared_.get();
  stream->playing = PlayingPipeline::parse(
      description, "viewing", [shared](GstMessage* message) { shared->on_message(message); });
  {
    const std::lock_guard lock(shared_->mutex);
    shared_->eos = false;
  }
  stream->appsrc = stream->playing->element("in");
  stream->size = {width, height};
  if (GstElement* decoder = stream->playing->element("decoder")) {
    GstPad* pad = gst_element_get_static_pad(decoder, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &Shared::on_decoded, shared, nullptr);
    gst_object_unref(pad);
  }
  if (GstElement* recorder = stream->playing->element("recorder")) {
    g_signal_connect(recorder, "format-location", G_CALLBACK(&Shared::on_format_location), shared);
  }
  if (!stream->playing->start()) {
    throw Error{Errc::kInvalid, options.window
                                    ? "the video window would not open: is there a display?"
                                    : "the viewing pipeline would not start"};
  }
  spdlog::info("video {}x{} started", width, height);
  stream_ = std::move(stream);
}

void Viewer::end_stream() {
  if (!stream_) {
    return;
  }
  gst_app_src_end_of_stream(GST_APP_SRC(stream_->appsrc));
  {
    std::unique_lock lock(shared_->mutex);
    if (!shared_->ended.wait_for(lock, kFinishTimeout, [this] { return shared_->eos; })) {
      spdlog::warn("the recording did not finish within {} s", kFinishTimeout.count());
    }
    shared_->current.clear();
  }
  stream_.reset();
}

ViewerStats Viewer::stats() const {
  const std::lock_guard lock(shared_->mutex);
  return shared_->stats;
}

ViewerStats Viewer::progress() const {
  const std::lock_guard lock(shared_->mutex);
  const ViewerStats& all = shared_->stats;
  ViewerStats counters;
  counters.frames_received = all.frames_received;
  counters.frames_decoded = all.frames_decoded;
  counters.width = all.width;
  counters.height = all.height;
  counters.first_decoded = all.first_decoded;
  return counters;
}

fs::path Viewer::current_segment() const {
  const std::lock_guard lock(shared_->mutex);
  return shared_->current;
}

std::string Viewer::failure() const {
  const std::lock_guard lock(shared_->mutex);
  return shared_->failure;
}

}  // namespace peernet::camera
