#include "camera/camera_source.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <filesystem>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <linux/videodev2.h>
#include <spdlog/spdlog.h>

#include "camera/gst_util.h"
#include "common/unique_fd.h"

namespace peernet::camera {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The time stamp: a white and a black guard block, 48 bits, a black and a white guard block,
// square blocks of full white or black luma, which survive VP8 at any usable bitrate.
constexpr int kStampBits = 48;
constexpr int kStampBlocks = kStampBits + 4;
constexpr std::uint8_t kWhite = 235;
constexpr std::uint8_t kBlack = 16;
constexpr int kSmallestBlock = 8;

/// The name of a V4L2 device that captures video, or nullopt when `path` is none.
std::optional<std::string> capture_device_name(const fs::path& path) {
  const UniqueFd fd(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd) {
    return std::nullopt;
  }
  v4l2_capability caps{};
  if (::ioctl(fd.get(), VIDIOC_QUERYCAP, &caps) != 0) {
    return std::nullopt;
  }
  const std::uint32_t device_caps =
      (caps.capabilities & V4L2_CAP_DEVICE_CAPS) != 0 ? caps.device_caps : caps.capabilities;
  if ((device_caps & V4L2_CAP_VIDEO_CAPTURE) == 0) {
    return std::nullopt;  // a metadata node, or an output
  }
  return std::string(reinterpret_cast<const char*>(caps.card));
}

/// The first /dev/video* that captures, in number order.
std::optional<std::pair<fs::path, std::string>> find_camera() {
  std::vector<fs::path> nodes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/dev", ec)) {
    if (entry.path().filename().string().rfind("video", 0) == 0) {
      nodes.push_back(entry.path());
    }
  }
  std::sort(nodes.begin(), nodes.end(), [](const fs::path& a, const fs::path& b) {
    const auto an = a.string();
    const auto bn = b.string();
    return an.size() != bn.size() ? an.size() < bn.size() : an < bn;
  });
  for (const auto& node : nodes) {
    if (auto name = capture_device_name(node)) {
      return std::pair{node, *name};
    }
  }
  return std::nullopt;
}

}  // namespace

struct CameraSource::Pipeline {
  std::unique_ptr<PlayingPipeline> playing;
  GstElement* encoded = nullptr;  // the encoder's appsink, owned by the pipeline
  GstElement* last = nullptr;     // the fakesink keeping the last raw frame
  SourceInfo info;
  bool loop_file = false;

  mutable std::mutex mutex;
  std::vector<std::shared_ptr<VideoSender>> senders;
  SourceStats stats;
  Clock::time_point last_forced{};
  bool keyframe_pending = false;
  std::string failure;

  Pipeline() = default;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  /// The pipeline stops first: its threads use everything else here.
  ~Pipeline() { playing.reset(); }

  /// Under the mutex: whether to ask the encoder for a keyframe now (none went out lately);
  /// otherwise the request waits for the spacing to pass.
  bool keyframe_due_locked(Clock::time_point now) {
    if (now - last_forced < kKeyframeSpacing) {
      keyframe_pending = true;
      return false;
    }
    last_forced = now;
    keyframe_pending = false;
    ++stats.keyframes_forced;
    return true;
  }

  /// Outside the mutex: a force-key-unit event up from the appsink's pad to vp8enc, which makes
  /// the next frame a keyframe. Pushed on the pad, not sent to the element, which would take
  /// the element's state lock (held by a state change that waits for this streaming thread).
  void force_keyframe() const {
    GstPad* pad = gst_element_get_static_pad(encoded, "sink");
    gst_pad_push_event(pad,
                       gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    gst_object_unref(pad);
  }

  static GstFlowReturn on_encoded(GstElement* appsink, gpointer data) {
    auto* self = static_cast<Pipeline*>(data);
    GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(appsink));
    if (sample == nullptr) {
      return GST_FLOW_EOS;
    }
    GstBuffer* buffer = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (buffer != nullptr && gst_buffer_map(buffer, &map, GST_MAP_READ) != FALSE) {
      const VideoFrame frame{std::span(reinterpret_cast<const std::byte*>(map.data), map.size),
                             !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT)};
      std::vector<std::shared_ptr<VideoSender>> senders;
      bool force = false;
      {
        const std::lock_guard lock(self->mutex);
        ++self->stats.frames_encoded;
        self->stats.keyframes += frame.keyframe ? 1 : 0;
        force = self->keyframe_pending && self->keyframe_due_locked(Clock::now());
        senders = self->senders;
      }
      if (force) {
        self->force_keyframe();
      }
      // Outside the lock: a sender may ask for a keyframe from inside.
      std::vector<VideoSender*> closed;
      std::uint64_t sent = 0;
      for (const auto& sender : senders) {
        if (sender->send(frame)) {
          ++sent;
        } else {
          closed.push_back(sender.get());
        }
      }
      gst_buffer_unmap(buffer, &map);
      const std::lock_guard lock(self->mutex);
      self->stats.frames_sent += sent;
      std::erase_if(self->senders, [&](const auto& sender) {
        return std::find(closed.begin(), closed.end(), sender.get()) != closed.end();
      });
    }
    gst_sample_unref(sample);
    return GST_FLOW_OK;
  }

  static GstPadProbeReturn on_raw_frame(GstPad* pad, GstPadProbeInfo* info, gpointer /*data*/) {
    GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (buffer == nullptr || caps == nullptr) {
      if (caps != nullptr) {
        gst_caps_unref(caps);
      }
      return GST_PAD_PROBE_OK;
    }
    GstVideoInfo video;
    const bool known = gst_video_info_from_caps(&video, caps) != FALSE;
    gst_caps_unref(caps);
    if (!known) {
      return GST_PAD_PROBE_OK;
    }
    buffer = gst_buffer_make_writable(buffer);
    GST_PAD_PROBE_INFO_DATA(info) = buffer;
    GstVideoFrame frame;
    if (gst_video_frame_map(&frame, &video, buffer, GST_MAP_WRITE) != FALSE) {
      const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch());
      draw_time_stamp(static_cast<std::uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)),
                      GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0), GST_VIDEO_FRAME_WIDTH(&frame),
                      GST_VIDEO_FRAME_HEIGHT(&frame), static_cast<std::uint64_t>(now.count()));
      gst_video_frame_unmap(&frame);
    }
    return GST_PAD_PROBE_OK;
  }

  /// Errors end the source (failure() tells); a file that ends starts again. On the bus thread.
  void on_message(GstMessage* message) {
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_EOS && loop_file) {
      gst_element_seek_simple(
          playing->get(), GST_FORMAT_TIME,
          static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT), 0);
      return;
    }
    const std::string why = GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR
                                ? error_text(message)
                                : std::string("the video ended");
    spdlog::error("camera source {}: {}", info.description, why);
    const std::lock_guard lock(mutex);
    if (failure.empty()) {
      failure = why;
    }
  }
};

CameraSource::CameraSource(std::unique_ptr<Pipeline> pipeline) : pipeline_(std::move(pipeline)) {}
CameraSource::~CameraSource() = default;

std::unique_ptr<CameraSource> CameraSource::open(const SourceOptions& options) {
  init_gstreamer();
  require_elements({"videoconvert", "videoscale", "videorate", "vp8enc", "appsink", "tee"});
  if (options.width < 16 || options.height < 16 || options.width > 7680 || options.height > 4320 ||
      options.width % 2 != 0 || options.height % 2 != 0) {
    throw Error{Errc::kInvalid, fmt::format("{}x{} is not a picture size to encode (even numbers "
                                            "from 16x16 to 7680x4320)",
                                            options.width, options.height)};
  }
  if (options.frame_rate < 1 || options.frame_rate > 120) {
    throw Error{Errc::kInvalid, "the frame rate is from 1 to 120 per second"};
  }
  auto pipe = std::make_unique<Pipeline>();
  SourceInfo& info = pipe->info;
  info.width = options.width;
  info.height = options.height;
  info.frame_rate = options.frame_rate;

  // What feeds the chain, chosen before anything is built; device and file names are set as
  // properties below, never pasted into the description.
  std::string head;
  std::string device;
  std::string uri;
  std::string wanted = options.source;
  if (wanted == "auto") {
    if (auto camera = find_camera()) {
      wanted = camera->first.string();
    } else {
      wanted = "test";
      spdlog::info("no camera found under /dev/video*; serving the test pattern");
    }
  }
  if (wanted == "test") {
    head = "videotestsrc is-live=true pattern=smpte horizontal-speed=4";
    info.description = "test pattern";
  } else if (wanted.rfind("/dev/", 0) == 0) {
    const auto name = capture_device_name(wanted);
    if (!name) {
      throw Error{Errc::kInvalid, wanted + " is not a video capture device"};
    }
    require_elements({"v4l2src", "decodebin"});
    head = "v4l2src name=source ! decodebin";  // raw, or MJPEG decoded
    device = wanted;
    info.description = wanted + " (" + *name + ")";
  } else {
    std::error_code ec;
    const fs::path path = fs::absolute(wanted, ec);
    if (ec || !fs::is_regular_file(path, ec)) {
      throw Error{Errc::kInvalid, "no such video file: " + wanted};
    }
    require_elements({"uridecodebin", "identity"});
    gchar* text = gst_filename_to_uri(path.c_str(), nullptr);
    uri = text != nullptr ? text : "";
    g_free(text);
    // identity sync=true plays the file at its own pace, as a camera would deliver it.
    head = "uridecodebin name=source ! identity sync=true";
    info.description = path.filename().string();
    pipe->loop_file = true;
  }
  const std::string description = fmt::format(
      "{} ! videoconvert ! videoscale ! videorate ! "
      "capsfilter name=shape caps=video/x-raw,format=I420,width={},height={},framerate={}/1,"
      "pixel-aspect-ratio=1/1 ! tee name=split "
      "split. ! queue max-size-buffers=2 max-size-time=0 max-size-bytes=0 leaky=downstream ! "
      "vp8enc name=encoder deadline=1 cpu-used=8 end-usage=cbr target-bitrate={} "
      "keyframe-max-dist={} threads=2 error-resilient=default ! "
      "appsink name=encoded sync=false emit-signals=true max-buffers=4 drop=true "
      "split. ! queue max-size-buffers=1 max-size-time=0 max-size-bytes=0 leaky=downstream ! "
      "fakesink name=last sync=false async=false enable-last-sample=true",
      head, options.width, options.height, options.frame_rate,
      std::uint64_t{options.bitrate_kbps} * 1000,
      std::max<std::uint32_t>(1, options.keyframe_interval) * options.frame_rate);
  auto* raw = pipe.get();
  pipe->playing = PlayingPipeline::parse(description, "camera",
                                         [raw](GstMessage* message) { raw->on_message(message); });
  if (GstElement* source = pipe->playing->element("source")) {
    if (!device.empty()) {
      g_object_set(source, "device", device.c_str(), nullptr);
    } else {
      // Only the video is decoded and exposed: the audio would cost CPU for nothing.
      GstCaps* video = gst_caps_new_empty_simple("video/x-raw");
      g_object_set(source, "uri", uri.c_str(), "caps", video, "expose-all-streams", FALSE, nullptr);
      gst_caps_unref(video);
    }
  }
  pipe->encoded = pipe->playing->element("encoded");
  pipe->last = pipe->playing->element("last");
  g_signal_connect(pipe->encoded, "new-sample", G_CALLBACK(&Pipeline::on_encoded), pipe.get());
  if (options.stamp_time) {
    if (options.width / kStampBlocks < kSmallestBlock) {
      throw Error{Errc::kInvalid,
                  fmt::format("the time stamp needs a picture at least {} pixels wide",
                              kStampBlocks * kSmallestBlock)};
    }
    GstPad* pad = gst_element_get_static_pad(pipe->playing->element("shape"), "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &Pipeline::on_raw_frame, nullptr, nullptr);
    gst_object_unref(pad);
  }
  if (!pipe->playing->start()) {
    throw Error{Errc::kInvalid, "the camera pipeline would not start (" + info.description +
                                    "): is the device busy, or the file not a video?"};
  }
  spdlog::info("camera source: {}, VP8 {}x{} at {} fps, {} kbit/s", info.description, info.width,
               info.height, info.frame_rate, options.bitrate_kbps);
  return std::unique_ptr<CameraSource>(new CameraSource(std::move(pipe)));
}

const SourceInfo& CameraSource::info() const { return pipeline_->info; }

SourceStats CameraSource::stats() const {
  const std::lock_guard lock(pipeline_->mutex);
  return pipeline_->stats;
}

void CameraSource::attach(std::shared_ptr<VideoSender> sender) {
  const std::lock_guard lock(pipeline_->mutex);
  pipeline_->senders.push_back(std::move(sender));
}

void CameraSource::request_keyframe() {
  bool due = false;
  {
    const std::lock_guard lock(pipeline_->mutex);
    due = pipeline_->keyframe_due_locked(Clock::now());
  }
  if (due) {
    pipeline_->force_keyframe();
  }
}

std::optional<std::vector<std::byte>> CameraSource::snapshot(std::chrono::milliseconds wait) const {
  GstSample* sample = nullptr;
  const auto give_up = Clock::now() + wait;
  for (;;) {
    g_object_get(pipeline_->last, "last-sample", &sample, nullptr);
    if (sample != nullptr || Clock::now() >= give_up) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  if (sample == nullptr) {
    return std::nullopt;
  }
  GstCaps* jpeg = gst_caps_new_empty_simple("image/jpeg");
  GError* error = nullptr;
  GstSample* converted = gst_video_convert_sample(sample, jpeg, 2 * GST_SECOND, &error);
  gst_caps_unref(jpeg);
  gst_sample_unref(sample);
  if (converted == nullptr) {
    spdlog::warn("snapshot: {}", error != nullptr ? error->message : "no JPEG encoder");
    g_clear_error(&error);
    return std::nullopt;
  }
  std::optional<std::vector<std::byte>> out;
  GstBuffer* buffer = gst_sample_get_buffer(converted);
  GstMapInfo map;
  if (buffer != nullptr && gst_buffer_map(buffer, &map, GST_MAP_READ) != FALSE) {
    const auto* bytes = reinterpret_cast<const std::byte*>(map.data);
    out.emplace(bytes, bytes + map.size);
    gst_buffer_unmap(buffer, &map);
  }
  gst_sample_unref(converted);
  return out;
}

std::string CameraSource::failure() const {
  const std::lock_guard lock(pipeline_->mutex);
  return pipeline_->failure;
}

void draw_time_stamp(std::uint8_t* luma, int stride, int width, int height,
                     std::uint64_t unix_millis) {
  const int block = width / kStampBlocks;
  if (block < kSmallestBlock || height < block) {
    return;
  }
  for (int index = 0; index < kStampBlocks; ++index) {
    bool white = false;
    if (index == 0 || index == kStampBlocks - 1) {
      white = true;
    } else if (index >= 2 && index < 2 + kStampBits) {
      white = ((unix_millis >> (kStampBits - 1 - (index - 2))) & 1U) != 0;
    }
    for (int row = 0; row < block; ++row) {
      std::fill_n(luma + static_cast<std::ptrdiff_t>(row) * stride +
                      static_cast<std::ptrdiff_t>(index) * block,
                  block, white ? kWhite : kBlack);
    }
  }
}

std::uint64_t read_time_stamp(const std::uint8_t* luma, int stride, int width, int height) {
  const int block = width / kStampBlocks;
  if (block < kSmallestBlock || height < block) {
    return 0;
  }
  // The middle half of each block, away from edges the encoder blurs.
  const auto white = [&](int index) {
    int sum = 0;
    int count = 0;
    for (int row = block / 4; row < block - block / 4; ++row) {
      for (int column = block / 4; column < block - block / 4; ++column) {
        sum += luma[static_cast<std::ptrdiff_t>(row) * stride +
                    static_cast<std::ptrdiff_t>(index) * block + column];
        ++count;
      }
    }
    return count > 0 && sum / count > (kWhite + kBlack) / 2;
  };
  if (!white(0) || white(1) || white(kStampBlocks - 2) || !white(kStampBlocks - 1)) {
    return 0;
  }
  std::uint64_t value = 0;
  for (int bit = 0; bit < kStampBits; ++bit) {
    value = (value << 1U) | (white(2 + bit) ? 1U : 0U);
  }
  return value;
}

}  // namespace peernet::camera
