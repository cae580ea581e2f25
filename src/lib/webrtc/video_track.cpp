#include "webrtc/video_track.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <utility>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video-event.h>
#include <spdlog/spdlog.h>

#include "webrtc/glib_owned.h"

#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>

namespace peernet::lib {
namespace {

/// The payload type webrtcbin's offers use for the one codec they carry.
constexpr int kDefaultPayloadType = 96;

/// At most this much encoded video waits in a sender's appsrc, when the network is slower than
/// the encoder (about 2.8 s at 1.5 Mbit/s). Beyond it, frames are dropped until a keyframe, and
/// one is asked for: dropping single frames would leave the viewer decoding garbage.
constexpr guint64 kSendQueueBytes = guint64{512} * 1024;

GstCaps* vp8_rtp_caps(int pt) {
  return gst_caps_new_simple("application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name",
                             G_TYPE_STRING, "VP8", "payload", G_TYPE_INT, pt, "clock-rate",
                             G_TYPE_INT, 90000, nullptr);
}

/// A weak reference to a track, as GLib user data (glib_owned), freed by GLib's destroy notify.
template <class Track>
struct WeakTrack {
  explicit WeakTrack(std::weak_ptr<Track> t) : track(std::move(t)) {}
  std::weak_ptr<Track> track;
};

}  // namespace

std::optional<int> vp8_payload_type(std::string_view sdp) {
  // a=rtpmap:<payload type> VP8/90000
  constexpr std::string_view kRtpmap = "a=rtpmap:";
  for (std::size_t at = sdp.find(kRtpmap); at != std::string_view::npos;
       at = sdp.find(kRtpmap, at + 1)) {
    const std::string_view rest = sdp.substr(at + kRtpmap.size());
    int pt = -1;
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), pt);
    if (error != std::errc{} || pt < 0 || pt > 127) {
      continue;
    }
    std::string_view encoding = rest.substr(static_cast<std::size_t>(end - rest.data()));
    encoding.remove_prefix(std::min(encoding.find_first_not_of(' '), encoding.size()));
    if (encoding.size() >= 4 && g_ascii_strncasecmp(encoding.data(), "VP8/", 4) == 0) {
      return pt;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<VideoSendTrack>> VideoSendTrack::add(GstElement* pipeline,
                                                            GstElement* webrtc,
                                                            std::function<void()> keyframe_wanted) {
  std::shared_ptr<VideoSendTrack> track(new VideoSendTrack);
  track->keyframe_wanted_ = std::move(keyframe_wanted);

  GstElement* appsrc = gst_element_factory_make("appsrc", nullptr);
  GstElement* payloader = gst_element_factory_make("rtpvp8pay", nullptr);
  if (appsrc == nullptr || payloader == nullptr) {
    if (appsrc != nullptr) {
      gst_object_unref(gst_object_ref_sink(appsrc));
    }
    if (payloader != nullptr) {
      gst_object_unref(gst_object_ref_sink(payloader));
    }
    return Error{Errc::kInvalid,
                 "GStreamer has no appsrc or rtpvp8pay: install gstreamer1.0-plugins-good"};
  }
  GstCaps* caps = gst_caps_new_empty_simple("video/x-vp8");
  // Live, stamped with the pipeline's clock as each frame arrives; never blocking the encoder.
  g_object_set(appsrc, "caps", caps, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp",
               TRUE, "block", FALSE, nullptr);
  gst_caps_unref(caps);
  // 15-bit picture ids, as browsers send them; lets a receiver tell which frame a loss hit.
  g_object_set(payloader, "pt", kDefaultPayloadType, "picture-id-mode", 2, nullptr);
  gst_bin_add_many(GST_BIN(pipeline), appsrc, payloader, nullptr);  // the bin takes them
  if (gst_element_link(appsrc, payloader) == FALSE) {
    return Error{Errc::kInvalid, "cannot link appsrc to rtpvp8pay"};
  }
  GstCaps* rtp_caps = vp8_rtp_caps(kDefaultPayloadType);
  GstPadTemplate* templ =
      gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(webrtc), "sink_%u");
  GstPad* sink = gst_element_request_pad(webrtc, templ, nullptr, rtp_caps);
  GstPad* source = gst_element_get_static_pad(payloader, "src");
  const bool linked = sink != nullptr && gst_pad_link(source, sink) == GST_PAD_LINK_OK;
  if (sink != nullptr) {
    g_object_get(sink, "transceiver", &track->transceiver_, nullptr);
    gst_object_unref(sink);
  }
  gst_object_unref(source);
  if (!linked || track->transceiver_ == nullptr) {
    gst_caps_unref(rtp_caps);
    return Error{Errc::kInvalid, "webrtcbin would not take a video track"};
  }
  g_object_set(track->transceiver_, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY,
               "codec-preferences", rtp_caps, nullptr);
  gst_caps_unref(rtp_caps);

  // webrtcbin turns a PLI or FIR into a force-key-unit event that travels up to the appsrc.
  GstPad* out = gst_element_get_static_pad(appsrc, "src");
  gst_pad_add_probe(out, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, &VideoSendTrack::on_upstream_event,
                    glib_owned<WeakTrack<VideoSendTrack>>(track),
                    &glib_release<WeakTrack<VideoSendTrack>>);
  gst_object_unref(out);

  track->appsrc_ = GST_ELEMENT(gst_object_ref(appsrc));
  track->payloader_ = payloader;
  gst_element_sync_state_with_parent(payloader);
  gst_element_sync_state_with_parent(appsrc);
  return track;
}

VideoSendTrack::~VideoSendTrack() {
  close();
  if (transceiver_ != nullptr) {
    g_object_unref(transceiver_);
  }
}

void VideoSendTrack::set_payload_type(int pt) {
  const std::lock_guard lock(mutex_);
  if (appsrc_ == nullptr) {
    return;
  }
  g_object_set(payloader_, "pt", pt, nullptr);
  GstCaps* caps = vp8_rtp_caps(pt);
  g_object_set(transceiver_, "codec-preferences", caps, nullptr);
  gst_caps_unref(caps);
}

void VideoSendTrack::go_live() {
  const std::lock_guard lock(mutex_);
  live_ = true;
  awaiting_keyframe_ = true;
}

bool VideoSendTrack::send(const VideoFrame& video) {
  const std::span<const std::byte> frame = video.data;
  const bool keyframe = video.keyframe;
  std::function<void()> wanted;
  {
    const std::lock_guard lock(mutex_);
    if (appsrc_ == nullptr) {
      return false;
    }
    if (!live_ || frame.empty() || (awaiting_keyframe_ && !keyframe)) {
      return true;
    }
    if (gst_app_src_get_current_level_bytes(GST_APP_SRC(appsrc_)) > kSendQueueBytes) {
      if (!awaiting_keyframe_) {
        wanted = keyframe_wanted_;  // asked once per stall, outside the lock
      }
      awaiting_keyframe_ = true;
    } else {
      awaiting_keyframe_ = false;
      GstBuffer* buffer = gst_buffer_new_memdup(frame.data(), frame.size());
      if (!keyframe) {
        GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
      }
      const GstFlowReturn flow = gst_app_src_push_buffer(GST_APP_SRC(appsrc_), buffer);
      return flow == GST_FLOW_OK || flow == GST_FLOW_FLUSHING;
    }
  }
  if (wanted) {
    wanted();
  }
  return true;
}

void VideoSendTrack::close() {
  const std::lock_guard lock(mutex_);
  if (appsrc_ != nullptr) {
    gst_object_unref(appsrc_);
    appsrc_ = nullptr;
    payloader_ = nullptr;
  }
}

GstPadProbeReturn VideoSendTrack::on_upstream_event(GstPad* /*pad*/, GstPadProbeInfo* info,
                                                    gpointer data) {
  GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
  if (event == nullptr || !gst_video_event_is_force_key_unit(event)) {
    return GST_PAD_PROBE_OK;
  }
  if (auto track = static_cast<WeakTrack<VideoSendTrack>*>(data)->track.lock()) {
    std::function<void()> wanted;
    {
      const std::lock_guard lock(track->mutex_);
      if (track->appsrc_ != nullptr) {
        wanted = track->keyframe_wanted_;
      }
    }
    if (wanted) {
      wanted();
    }
  }
  return GST_PAD_PROBE_DROP;  // appsrc has nothing to do with it
}

// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<VideoReceiveTrack>> VideoReceiveTrack::add(GstElement* pipeline,
                                                                  GstElement* webrtc,
                                                                  FrameHandler frame) {
  std::shared_ptr<VideoReceiveTrack> track(new VideoReceiveTrack);
  track->frame_ = std::move(frame);
  track->pipeline_ = pipeline;
  GstCaps* caps = vp8_rtp_caps(kDefaultPayloadType);
  GstWebRTCRTPTransceiver* transceiver = nullptr;
  g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY,
                        caps, &transceiver);
  gst_caps_unref(caps);
  if (transceiver == nullptr) {
    return Error{Errc::kInvalid, "webrtcbin would not add a video transceiver"};
  }
  gst_object_unref(transceiver);
  // Connected for the element's life; the handler holds the track weakly.
  g_signal_connect_data(webrtc, "pad-added", G_CALLBACK(&VideoReceiveTrack::on_pad_added),
                        glib_owned<WeakTrack<VideoReceiveTrack>>(track),
                        &glib_release_closure<WeakTrack<VideoReceiveTrack>>, GConnectFlags{});
  return track;
}

VideoReceiveTrack::~VideoReceiveTrack() {
  close();
  if (appsink_ != nullptr) {
    gst_object_unref(appsink_);
  }
}

void VideoReceiveTrack::on_pad_added(GstElement* /*webrtc*/, GstPad* pad, gpointer data) {
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) {
    return;  // one of the sink pads requested for sending
  }
  if (auto track = static_cast<WeakTrack<VideoReceiveTrack>*>(data)->track.lock()) {
    track->take_pad(pad);
  }
}

void VideoReceiveTrack::take_pad(GstPad* pad) {
  if (closed_) {
    return;
  }
  {
    const std::lock_guard lock(mutex_);
    if (appsink_ != nullptr) {
      spdlog::debug("a second video stream from the other side is ignored");
      return;
    }
  }
  GstElement* depayloader = gst_element_factory_make("rtpvp8depay", nullptr);
  GstElement* appsink = gst_element_factory_make("appsink", nullptr);
  if (depayloader == nullptr || appsink == nullptr) {
    spdlog::warn("GStreamer has no rtpvp8depay or appsink: install gstreamer1.0-plugins-good");
    if (depayloader != nullptr) {
      gst_object_unref(gst_object_ref_sink(depayloader));
    }
    if (appsink != nullptr) {
      gst_object_unref(gst_object_ref_sink(appsink));
    }
    return;
  }
  // Lost packets, or a frame that cannot be decoded: ask the sender for a keyframe (a PLI),
  // and hand on nothing broken until it comes.
  g_object_set(depayloader, "request-keyframe", TRUE, "wait-for-keyframe", TRUE, nullptr);
  // Frames go on as they arrive: the viewer paces them, not this sink. Nothing is kept here.
  g_object_set(appsink, "sync", FALSE, "async", FALSE, "emit-signals", TRUE, "max-buffers", 8,
               "drop", TRUE, nullptr);
  g_signal_connect_data(appsink, "new-sample", G_CALLBACK(&VideoReceiveTrack::on_sample),
                        glib_owned<WeakTrack<VideoReceiveTrack>>(weak_from_this()),
                        &glib_release_closure<WeakTrack<VideoReceiveTrack>>, GConnectFlags{});
  gst_bin_add_many(GST_BIN(pipeline_), depayloader, appsink, nullptr);
  gst_element_link(depayloader, appsink);
  gst_element_sync_state_with_parent(appsink);
  gst_element_sync_state_with_parent(depayloader);
  GstPad* sink = gst_element_get_static_pad(depayloader, "sink");
  const bool linked = gst_pad_link(pad, sink) == GST_PAD_LINK_OK;
  gst_object_unref(sink);
  if (!linked) {
    spdlog::warn("cannot link the received video to rtpvp8depay");
    return;
  }
  const std::lock_guard lock(mutex_);
  appsink_ = GST_ELEMENT(gst_object_ref(appsink));
}

void VideoReceiveTrack::request_keyframe() {
  GstElement* appsink = nullptr;
  {
    const std::lock_guard lock(mutex_);
    if (appsink_ == nullptr || closed_) {
      return;
    }
    appsink = GST_ELEMENT(gst_object_ref(appsink_));
  }
  // Upstream from the sink's pad (not the element: that takes its state lock), the RTP session
  // turns it into a PLI to the sender.
  GstPad* pad = gst_element_get_static_pad(appsink, "sink");
  gst_pad_push_event(pad,
                     gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  gst_object_unref(pad);
  gst_object_unref(appsink);
}

void VideoReceiveTrack::close() {
  closed_ = true;
  const std::lock_guard lock(mutex_);  // waits for a frame being handed on
  frame_ = nullptr;
}

GstFlowReturn VideoReceiveTrack::on_sample(GstElement* appsink, gpointer data) {
  GstSample* sample = gst_app_sink_pull_sample(GST_APP_SINK(appsink));
  if (sample == nullptr) {
    return GST_FLOW_EOS;
  }
  auto track = static_cast<WeakTrack<VideoReceiveTrack>*>(data)->track.lock();
  GstBuffer* buffer = gst_sample_get_buffer(sample);
  if (track && !track->closed_ && buffer != nullptr) {
    GstMapInfo map;
    if (gst_buffer_map(buffer, &map, GST_MAP_READ) != FALSE) {
      const auto* bytes = reinterpret_cast<const std::byte*>(map.data);
      std::vector<std::byte> frame(bytes, bytes + map.size);
      gst_buffer_unmap(buffer, &map);
      const bool keyframe = !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
      const std::lock_guard lock(track->mutex_);
      if (track->frame_) {
        track->frame_(std::move(frame), keyframe);
      }
    }
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

}  // namespace peernet::lib
