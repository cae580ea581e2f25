#pragma once

// Video tracks of a webrtcbin peer. Frames come in and go out encoded: the camera encodes once
// for every viewer, and a viewer records what it receives without decoding it.
//
//   sending:   appsrc (encoded frames) -> payloader -> webrtcbin sink pad
//   receiving: webrtcbin src pad -> depayloader -> appsink (encoded frames)

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <gst/gst.h>

#include "result.h"
#include "webrtc/rtc_peer.h"

namespace peernet::lib {

/// The RTP payload type of VP8 in an SDP offer (its a=rtpmap line), or nullopt when the offer
/// carries no VP8. An answer has to use the offer's number: browsers pick their own.
std::optional<int> vp8_payload_type(std::string_view sdp);

/// The sending end of a VP8 track. push() may be called from any thread (an encoder's).
class VideoSendTrack final : public VideoSender {
 public:
  /// Adds appsrc and payloader to `pipeline` and links them to a new sink pad of `webrtc`, as
  /// a send-only transceiver. `keyframe_wanted` runs on a streaming thread when the other side
  /// asks for a keyframe (RTCP PLI or FIR).
  static Result<std::shared_ptr<VideoSendTrack>> add(GstElement* pipeline, GstElement* webrtc,
                                                     std::function<void()> keyframe_wanted);
  ~VideoSendTrack() override;
  VideoSendTrack(const VideoSendTrack&) = delete;
  VideoSendTrack& operator=(const VideoSendTrack&) = delete;

  /// Uses payload type `pt` (from the offer being answered).
  void set_payload_type(int pt);
  /// The connection is up: frames flow from the next keyframe on. Until then they are dropped,
  /// since SRTP cannot carry them and a decoder cannot start on a delta frame.
  void go_live();
  /// Queues one encoded frame (dropped while not live, or until a keyframe). False once closed.
  bool send(const VideoFrame& frame) override;
  /// Lets go of the appsrc: push() returns false from now on.
  void close();

 private:
  VideoSendTrack() = default;
  static GstPadProbeReturn on_upstream_event(GstPad* pad, GstPadProbeInfo* info, gpointer data);

  mutable std::mutex mutex_;
  GstElement* appsrc_ = nullptr;  // a reference of ours; null once closed
  GstElement* payloader_ = nullptr;
  GObject* transceiver_ = nullptr;  // the sink pad's transceiver, a reference of ours
  bool live_ = false;
  bool awaiting_keyframe_ = true;
  std::function<void()> keyframe_wanted_;
};

/// The receiving end of a VP8 track: asks for the other side's video in the offer, and hands
/// each frame it receives to `frame` (on a streaming thread).
class VideoReceiveTrack : public std::enable_shared_from_this<VideoReceiveTrack> {
 public:
  using FrameHandler = std::function<void(std::vector<std::byte> frame, bool keyframe)>;

  /// Adds a receive-only VP8 transceiver to `webrtc` (in `pipeline`); before the offer is made.
  /// The track links itself to the video pad webrtcbin makes once connected.
  static Result<std::shared_ptr<VideoReceiveTrack>> add(GstElement* pipeline, GstElement* webrtc,
                                                        FrameHandler frame);
  ~VideoReceiveTrack();
  VideoReceiveTrack(const VideoReceiveTrack&) = delete;
  VideoReceiveTrack& operator=(const VideoReceiveTrack&) = delete;

  /// Asks the sender for a keyframe (an RTCP PLI). Any thread.
  void request_keyframe();
  /// No frame is handed on after this returns.
  void close();

 private:
  VideoReceiveTrack() = default;
  static GstFlowReturn on_sample(GstElement* appsink, gpointer data);
  static void on_pad_added(GstElement* webrtc, GstPad* pad, gpointer data);
  /// webrtcbin made a src pad: links the depayloader and appsink to it. On webrtcbin's thread.
  void take_pad(GstPad* pad);

  GstElement* pipeline_ = nullptr;  // not ours: the peer's, which outlives the track's handlers

  mutable std::mutex mutex_;
  GstElement* appsink_ = nullptr;  // a reference of ours, once linked
  FrameHandler frame_;
  std::atomic<bool> closed_ = false;
};

}  // namespace peernet::lib
