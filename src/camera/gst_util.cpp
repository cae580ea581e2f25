#include "camera/gst_util.h"

#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <gst/gst.h>

#include <peernet/error.h>

namespace peernet::camera {

void init_gstreamer() {
  static std::once_flag once;
  std::call_once(once, [] { gst_init(nullptr, nullptr); });
}

void require_elements(std::initializer_list<const char*> elements) {
  for (const char* name : elements) {
    GstElementFactory* factory = gst_element_factory_find(name);
    if (factory != nullptr) {
      gst_object_unref(factory);
      continue;
    }
    const std::string_view element = name;
    const char* package = "gstreamer1.0-plugins-good";
    if (element == "videoconvert" || element == "videoscale" || element == "videorate" ||
        element == "videotestsrc" || element == "appsink" || element == "appsrc" ||
        element == "uridecodebin" || element == "decodebin") {
      package = "gstreamer1.0-plugins-base";
    } else if (element == "tee" || element == "identity" || element == "queue" ||
               element == "fakesink") {
      package = "libgstreamer1.0-0";
    } else if (element == "autovideosink") {
      package = "gstreamer1.0-plugins-good and gstreamer1.0-x";
    }
    throw Error{Errc::kInvalid,
                "GStreamer has no '" + std::string(element) + "' element: install " + package};
  }
}

PlayingPipeline::PlayingPipeline(GstElement* pipeline, MessageHandler on_message)
    : pipeline_(GST_ELEMENT(gst_object_ref_sink(pipeline))), on_message_(std::move(on_message)) {}

std::unique_ptr<PlayingPipeline> PlayingPipeline::parse(const std::string& description,
                                                        const std::string& what,
                                                        MessageHandler on_message) {
  GError* error = nullptr;
  GstElement* built = gst_parse_launch(description.c_str(), &error);
  if (built == nullptr || error != nullptr) {
    const std::string why = error != nullptr ? error->message : "unknown error";
    g_clear_error(&error);
    if (built != nullptr) {
      gst_object_unref(gst_object_ref_sink(built));
    }
    throw Error{Errc::kInvalid, "GStreamer could not build the " + what + " pipeline: " + why};
  }
  return std::make_unique<PlayingPipeline>(built, std::move(on_message));
}

bool PlayingPipeline::start() {
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    return false;
  }
  thread_ = std::thread([this] { watch(); });
  return true;
}

PlayingPipeline::~PlayingPipeline() {
  stopping_ = true;
  if (thread_.joinable()) {
    thread_.join();
  }
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  gst_object_unref(pipeline_);
}

GstElement* PlayingPipeline::element(const char* name) const {
  GstElement* found = gst_bin_get_by_name(GST_BIN(pipeline_), name);
  if (found != nullptr) {
    gst_object_unref(found);  // the pipeline holds it for as long as this object lives
  }
  return found;
}

void PlayingPipeline::watch() {
  GstBus* bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline_));
  while (!stopping_) {
    GstMessage* message = gst_bus_timed_pop_filtered(
        bus, 100 * GST_MSECOND, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
    if (message != nullptr) {
      if (on_message_) {
        on_message_(message);
      }
      gst_message_unref(message);
    }
  }
  gst_object_unref(bus);
}

std::string error_text(GstMessage* message) {
  GError* error = nullptr;
  gst_message_parse_error(message, &error, nullptr);
  std::string text = error != nullptr ? error->message : "unknown error";
  g_clear_error(&error);
  return text;
}

std::optional<PictureSize> vp8_keyframe_size(std::span<const std::byte> frame) {
  // A 3-byte frame tag whose lowest bit is 0 for a keyframe, the start code 9d 01 2a, then
  // width and height as 14-bit little-endian numbers (the top 2 bits are scaling).
  if (frame.size() < 10) {
    return std::nullopt;
  }
  const auto byte = [&](std::size_t i) { return std::to_integer<std::uint32_t>(frame[i]); };
  if ((byte(0) & 1U) != 0 || byte(3) != 0x9d || byte(4) != 0x01 || byte(5) != 0x2a) {
    return std::nullopt;
  }
  const PictureSize size{(byte(6) | (byte(7) << 8U)) & 0x3fffU,
                         (byte(8) | (byte(9) << 8U)) & 0x3fffU};
  if (size.width == 0 || size.height == 0) {
    return std::nullopt;
  }
  return size;
}

}  // namespace peernet::camera
