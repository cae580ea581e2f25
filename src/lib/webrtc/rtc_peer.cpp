#include "webrtc/rtc_peer.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nice/agent.h>
#include <spdlog/spdlog.h>

#include "webrtc/glib_owned.h"
#include "webrtc/video_track.h"

#define GST_USE_UNSTABLE_API
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

namespace peernet::lib {
namespace {

namespace asio = boost::asio;

/// SO_RCVBUF for the connection's UDP socket: the kernel doubles it, so this gives twice Linux's
/// default. At the default, bursts of SCTP packets overflow the buffer and each loss costs
/// SCTP's one-second minimum retransmission timeout; much larger buffers were measured slower.
constexpr int kReceiveBufferBytes = 212992;

/// The pacing of ICE connectivity checks (Ta) on loopback. A check and then the nominating check
/// take about three ticks of it: at libnice's default of 20 ms, some 60 ms of every connection.
/// 5 ms is the smallest pacing RFC 8445 reckons with (its appendix C); on 127.0.0.1 there is no
/// network to spare.
constexpr std::chrono::milliseconds kLoopbackPacing{5};

/// How long a closed connection's pipeline may outlive it while its channels' closing goes out.
constexpr std::chrono::milliseconds kCloseLinger{2000};

/// gst_init once per process, and a check that webrtcbin and what it needs are installed.
Status init_gstreamer() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] {
    GError* error = nullptr;
    if (gst_init_check(nullptr, nullptr, &error) == FALSE) {
      failure = std::string("GStreamer did not start: ") + (error ? error->message : "unknown");
      g_clear_error(&error);
      return;
    }
    for (const char* element : {"webrtcbin", "nicesrc", "dtlssrtpenc", "sctpenc"}) {
      GstElementFactory* factory = gst_element_factory_find(element);
      if (factory == nullptr) {
        failure = std::string("GStreamer has no '") + element +
                  "' element: install gstreamer1.0-plugins-bad and gstreamer1.0-nice";
        return;
      }
      gst_object_unref(factory);
    }
  });
  if (!failure.empty()) {
    return Error{Errc::kInvalid, failure};
  }
  return std::monostate{};
}

/// A GError's message, and the GError freed.
std::string take_message(GError* error) {
  std::string message = error != nullptr ? error->message : "unknown error";
  g_clear_error(&error);
  return message;
}

/// What every GLib callback gets as its user data: the way onto the executor and the object it
/// is about, if that still lives. Freed by GLib (through the destroy notify) once the handler is
/// disconnected and no emission runs it any more.
template <class Target>
struct Link {
  asio::any_io_executor executor;
  std::weak_ptr<Target> target;

  /// Runs `step(target)` on the executor, unless the target is gone or closed by then.
  template <class Step>
  void post(Step step) const {
    asio::post(executor, [weak = target, step = std::move(step)]() mutable {
      if (auto locked = weak.lock(); locked && !locked->is_closed()) {
        step(*locked);
      }
    });
  }

  static void destroy(gpointer data, GClosure* /*closure*/) { glib_release<Link>(data); }
};

/// Connects `callback` to `signal` of `instance` with its own Link; returns the handler id.
template <class Target>
gulong connect(gpointer instance, const char* signal, GCallback callback,
               const Link<Target>& link) {
  return g_signal_connect_data(instance, signal, callback, glib_owned<Link<Target>>(link),
                               &Link<Target>::destroy, GConnectFlags{});
}

/// Calls a copy of `callback`: a callback may replace itself (a sender that finishes inside
/// on_buffered_amount_low clears it), which must not destroy the function while it runs.
template <class Callback, class... Args>
void call_copy(const Callback& callback, Args&&... args) {
  if (callback) {
    Callback copy = callback;
    copy(std::forward<Args>(args)...);
  }
}

std::vector<std::byte> copy_bytes(GBytes* bytes) {
  gsize size = 0;
  const auto* data = static_cast<const std::byte*>(g_bytes_get_data(bytes, &size));
  return data == nullptr ? std::vector<std::byte>{} : std::vector<std::byte>(data, data + size);
}

class ChannelImpl final : public RtcChannel, public std::enable_shared_from_this<ChannelImpl> {
 public:
  ChannelImpl(asio::any_io_executor executor, GstWebRTCDataChannel* channel)
      : executor_(std::move(executor)), channel_(channel) {
    gchar* label = nullptr;
    g_object_get(channel_, "label", &label, nullptr);
    label_ = label != nullptr ? label : "";
    g_free(label);
  }
  ~ChannelImpl() override { release(); }
  ChannelImpl(const ChannelImpl&) = delete;
  ChannelImpl& operator=(const ChannelImpl&) = delete;

  /// Connects the handlers; a separate step because they need weak_from_this().
  void attach() {
    const Link<ChannelImpl> link{executor_, weak_from_this()};
    handlers_ = {
        connect(channel_, "on-open", G_CALLBACK(&ChannelImpl::on_open), link),
        connect(channel_, "on-close", G_CALLBACK(&ChannelImpl::on_close), link),
        connect(channel_, "on-error", G_CALLBACK(&ChannelImpl::on_error), link),
        connect(channel_, "on-message-data", G_CALLBACK(&ChannelImpl::on_message_data), link),
        connect(channel_, "on-message-string", G_CALLBACK(&ChannelImpl::on_message_string), link),
        connect(channel_, "on-buffered-amount-low", G_CALLBACK(&ChannelImpl::on_buffered_low),
                link),
    };
    GstWebRTCDataChannelState state{};
    g_object_get(channel_, "ready-state", &state, nullptr);
    if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) {
      state_ = State::kOpen;
    }
  }

  bool is_closed() const { return state_ == State::kClosed; }
  GstWebRTCDataChannel* gst() const { return channel_; }
  /// `gone` runs once when the other side closes the channel (after the owner is told).
  void on_gone(std::function<void()> gone) { gone_ = std::move(gone); }

  const std::string& label() const override { return label_; }
  State state() const override { return state_; }

  void set_events(Events events) override {
    events_ = std::move(events);
    if (state_ == State::kOpen && events_.open && !open_told_) {
      open_told_ = true;
      asio::post(executor_, [weak = weak_from_this()] {
        if (auto self = weak.lock(); self && self->state_ == State::kOpen && self->events_.open) {
          self->events_.open();
        }
      });
    }
  }

  // Empty messages are refused: webrtcbin hands them to SCTP as they are, SCTP rejects a
  // zero-length send, and the whole connection fails with it.
  bool send(std::span<const std::byte> message) override {
    if (state_ != State::kOpen || message.empty() || message.size() > kMaxMessageBytes) {
      return false;
    }
    GBytes* bytes = g_bytes_new(message.data(), message.size());
    GError* error = nullptr;
    const bool sent = gst_webrtc_data_channel_send_data_full(channel_, bytes, &error) != FALSE;
    g_bytes_unref(bytes);
    if (!sent) {
      spdlog::debug("data channel '{}': send failed: {}", label_, take_message(error));
    }
    return sent;
  }

  bool send_text(std::string_view text) override {
    if (state_ != State::kOpen || text.empty() || text.size() > kMaxMessageBytes) {
      return false;
    }
    const std::string copy(text);  // NUL-terminated
    GError* error = nullptr;
    const bool sent =
        gst_webrtc_data_channel_send_string_full(channel_, copy.c_str(), &error) != FALSE;
    if (!sent) {
      spdlog::debug("data channel '{}': send failed: {}", label_, take_message(error));
    }
    return sent;
  }

  std::uint64_t buffered_amount() const override {
    if (channel_ == nullptr) {
      return 0;
    }
    guint64 amount = 0;
    g_object_get(channel_, "buffered-amount", &amount, nullptr);
    return amount;
  }

  void set_buffered_amount_low_threshold(std::uint64_t bytes) override {
    if (channel_ != nullptr) {
      g_object_set(channel_, "buffered-amount-low-threshold", static_cast<guint64>(bytes), nullptr);
    }
  }

  void close() override {
    if (state_ == State::kClosed) {
      return;
    }
    state_ = State::kClosed;
    events_ = {};
    if (channel_ != nullptr) {
      gst_webrtc_data_channel_close(channel_);
    }
    release();
  }

 private:
  /// Disconnects the handlers and drops the channel; no callback of ours runs after this.
  void release() {
    if (channel_ == nullptr) {
      return;
    }
    for (const gulong id : handlers_) {
      g_signal_handler_disconnect(channel_, id);
    }
    handlers_.clear();
    g_object_unref(channel_);
    channel_ = nullptr;
  }

  /// Ends the channel from the network's side: tells the owner once, then lets go.
  void closed_by_peer() {
    if (state_ == State::kClosed) {
      return;
    }
    state_ = State::kClosed;
    auto events = std::exchange(events_, {});
    release();
    if (events.closed) {
      events.closed();
    }
    if (auto gone = std::exchange(gone_, {})) {
      gone();
    }
  }

  static void on_open(GstWebRTCDataChannel* /*channel*/, gpointer data) {
    static_cast<Link<ChannelImpl>*>(data)->post([](ChannelImpl& self) {
      self.state_ = State::kOpen;
      if (self.events_.open && !self.open_told_) {
        self.open_told_ = true;
        self.events_.open();
      }
    });
  }
  static void on_close(GstWebRTCDataChannel* /*channel*/, gpointer data) {
    static_cast<Link<ChannelImpl>*>(data)->post([](ChannelImpl& self) { self.closed_by_peer(); });
  }
  static void on_error(GstWebRTCDataChannel* /*channel*/, GError* error, gpointer data) {
    spdlog::debug("data channel error: {}", error != nullptr ? error->message : "unknown");
    static_cast<Link<ChannelImpl>*>(data)->post([](ChannelImpl& self) { self.closed_by_peer(); });
  }
  static void on_message_data(GstWebRTCDataChannel* /*channel*/, GBytes* bytes, gpointer data) {
    static_cast<Link<ChannelImpl>*>(data)->post(
        [message = bytes != nullptr ? copy_bytes(bytes) : std::vector<std::byte>{}](
            ChannelImpl& self) { call_copy(self.events_.message, message, false); });
  }
  static void on_message_string(GstWebRTCDataChannel* /*channel*/, gchar* text, gpointer data) {
    std::string copy = text != nullptr ? text : "";
    static_cast<Link<ChannelImpl>*>(data)->post([copy = std::move(copy)](ChannelImpl& self) {
      call_copy(self.events_.message, std::as_bytes(std::span(copy.data(), copy.size())), true);
    });
  }
  static void on_buffered_low(GstWebRTCDataChannel* /*channel*/, gpointer data) {
    static_cast<Link<ChannelImpl>*>(data)->post(
        [](ChannelImpl& self) { call_copy(self.events_.buffered_amount_low); });
  }

  asio::any_io_executor executor_;
  std::function<void()> gone_;
  GstWebRTCDataChannel* channel_;  // owned reference; null once released
  std::string label_;
  std::vector<gulong> handlers_;
  State state_ = State::kConnecting;
  bool open_told_ = false;  // `open` is told once, whenever the callback is set
  Events events_;
};

/// Flushes the sink pads of every sctpenc in `pipeline`. A channel whose peer vanished with
/// SCTP's send buffer full keeps a streaming thread waiting inside sctpenc for room that never
/// comes, holding the pad's stream lock; the state change to NULL then waits on that lock for
/// ever. A flush is what wakes that wait.
void unblock_sctp(GstElement* pipeline) {
  GstIterator* elements = gst_bin_iterate_recurse(GST_BIN(pipeline));
  GValue element = G_VALUE_INIT;
  while (gst_iterator_next(elements, &element) == GST_ITERATOR_OK) {
    auto* found = GST_ELEMENT(g_value_get_object(&element));
    GstElementFactory* factory = gst_element_get_factory(found);
    if (factory != nullptr && g_strcmp0(GST_OBJECT_NAME(factory), "sctpenc") == 0) {
      GstIterator* pads = gst_element_iterate_sink_pads(found);
      GValue pad = G_VALUE_INIT;
      while (gst_iterator_next(pads, &pad) == GST_ITERATOR_OK) {
        gst_pad_send_event(GST_PAD(g_value_get_object(&pad)), gst_event_new_flush_start());
        g_value_reset(&pad);
      }
      g_value_unset(&pad);
      gst_iterator_free(pads);
    }
    g_value_reset(&element);
  }
  g_value_unset(&element);
  gst_iterator_free(elements);
}

/// A closed connection's pipeline, kept until its channels have closed (their SCTP stream
/// resets went out, so the other side knows) or kCloseLinger has passed. Ends the pipeline when
/// dropped: after the wait, or with the io_context.
struct Closing {
  GstElement* pipeline = nullptr;               // owned
  std::vector<GstWebRTCDataChannel*> channels;  // owned references
  std::chrono::steady_clock::time_point deadline;

  Closing() = default;
  Closing(const Closing&) = delete;
  Closing& operator=(const Closing&) = delete;
  ~Closing() {
    // Asked before the references go: a channel webrtcbin has let go of lives on ours alone.
    const bool closed = all_closed();
    for (auto* channel : channels) {
      g_object_unref(channel);
    }
    if (pipeline != nullptr) {
      if (!closed) {
        unblock_sctp(pipeline);  // only then can a sender be stuck on a peer that is gone
      }
      gst_element_set_state(pipeline, GST_STATE_NULL);
      GstBus* bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline));
      gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
      gst_object_unref(bus);
      gst_object_unref(pipeline);
    }
  }

  bool all_closed() const {
    return std::all_of(channels.begin(), channels.end(), [](GstWebRTCDataChannel* channel) {
      GstWebRTCDataChannelState state{};
      g_object_get(channel, "ready-state", &state, nullptr);
      return state == GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
    });
  }

  bool done() const { return std::chrono::steady_clock::now() >= deadline || all_closed(); }

  static void wait(std::shared_ptr<Closing> closing, const asio::any_io_executor& executor) {
    if (closing->done()) {
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(executor, std::chrono::milliseconds{10});
    timer->async_wait([timer, closing, executor](boost::system::error_code error) mutable {
      if (!error) {
        wait(std::move(closing), executor);
      }
    });
  }
};

class PeerImpl final : public RtcPeer, public std::enable_shared_from_this<PeerImpl> {
 public:
  PeerImpl(asio::any_io_executor executor, Events events)
      : executor_(std::move(executor)), events_(std::move(events)) {}
  ~PeerImpl() override { release(); }
  PeerImpl(const PeerImpl&) = delete;
  PeerImpl& operator=(const PeerImpl&) = delete;

  Status start(const RtcConfig& config) {
    pipeline_ = gst_pipeline_new(nullptr);
    webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
    if (pipeline_ == nullptr || webrtc_ == nullptr) {
      return Error{Errc::kInvalid, "GStreamer could not make a webrtcbin"};
    }
    gst_object_ref_sink(pipeline_);
    g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
    if (!config.stun_server.empty()) {
      g_object_set(webrtc_, "stun-server", config.stun_server.c_str(), nullptr);
    }
    for (const auto& turn : config.turn_servers) {
      gboolean added = FALSE;
      g_signal_emit_by_name(webrtc_, "add-turn-server", turn.c_str(), &added);
      if (added == FALSE) {
        return Error{Errc::kInvalid, "not a usable TURN server URL: " + turn};
      }
    }
    gst_bin_add(GST_BIN(pipeline_), webrtc_);  // the bin takes the floating reference

    if (auto status = configure_ice(config); !status) {
      return status;
    }

    const Link<PeerImpl> link{executor_, weak_from_this()};
    handlers_ = {
        connect(webrtc_, "on-ice-candidate", G_CALLBACK(&PeerImpl::on_ice_candidate), link),
        connect(webrtc_, "on-data-channel", G_CALLBACK(&PeerImpl::on_data_channel), link),
        connect(webrtc_, "notify::connection-state", G_CALLBACK(&PeerImpl::on_connection_state),
                link),
        connect(webrtc_, "notify::ice-gathering-state", G_CALLBACK(&PeerImpl::on_gathering_state),
                link),
    };
    GstBus* bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline_));
    gst_bus_set_sync_handler(bus, &PeerImpl::on_bus_message, glib_owned<Link<PeerImpl>>(link),
                             &glib_release<Link<PeerImpl>>);
    gst_object_unref(bus);

    if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      return Error{Errc::kInvalid, "GStreamer could not start the webrtcbin pipeline"};
    }
    return std::monostate{};
  }

  bool is_closed() const { return closed_; }
  State state() const override { return state_; }

  std::shared_ptr<RtcChannel> create_channel(const std::string& label) override {
    if (closed_) {
      return nullptr;
    }
    GstStructure* options = gst_structure_new("options", "ordered", G_TYPE_BOOLEAN, TRUE, nullptr);
    GstWebRTCDataChannel* channel = nullptr;
    g_signal_emit_by_name(webrtc_, "create-data-channel", label.c_str(), options, &channel);
    gst_structure_free(options);
    if (channel == nullptr) {
      return nullptr;
    }
    return adopt(channel);
  }

  Result<std::shared_ptr<VideoSender>> send_video() override {
    if (closed_ || video_out_) {
      return Error{Errc::kInvalid, "a peer sends one video track"};
    }
    const Link<PeerImpl> link{executor_, weak_from_this()};
    auto track = VideoSendTrack::add(pipeline_, webrtc_, [link] {
      link.post([](PeerImpl& peer) { call_copy(peer.events_.keyframe_wanted); });
    });
    if (!track) {
      return std::move(track).error();
    }
    video_out_ = std::move(track).value();
    return std::shared_ptr<VideoSender>(video_out_);
  }

  Status receive_video() override {
    if (closed_ || video_in_) {
      return Error{Errc::kInvalid, "a peer receives one video track"};
    }
    const Link<PeerImpl> link{executor_, weak_from_this()};
    auto track = VideoReceiveTrack::add(
        pipeline_, webrtc_, [link](std::vector<std::byte> frame, bool keyframe) {
          link.post([frame = std::move(frame), keyframe](PeerImpl& peer) mutable {
            call_copy(peer.events_.video_frame, std::move(frame), keyframe);
          });
        });
    if (!track) {
      return std::move(track).error();
    }
    video_in_ = std::move(track).value();
    return std::monostate{};
  }

  void request_keyframe() override {
    if (video_in_) {
      video_in_->request_keyframe();
    }
  }

  void create_offer(std::function<void(Result<std::string>)> done) override {
    gpointer call = glib_owned<DescriptionCall>(Link<PeerImpl>{executor_, weak_from_this()},
                                                std::move(done), "offer", webrtc_);
    GstPromise* promise = gst_promise_new_with_change_func(&PeerImpl::on_description_created, call,
                                                           &DescriptionCall::destroy);
    g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
  }

  void answer_offer(const std::string& offer,
                    std::function<void(Result<std::string>)> done) override {
    auto* description = parse_description(offer, GST_WEBRTC_SDP_TYPE_OFFER);
    if (description == nullptr) {
      post_result(std::move(done), Error{Errc::kInvalid, "the offer is not an SDP"});
      return;
    }
    if (video_out_) {
      if (const auto pt = vp8_payload_type(offer)) {
        video_out_->set_payload_type(*pt);
      }
    }
    gpointer call = glib_owned<DescriptionCall>(Link<PeerImpl>{executor_, weak_from_this()},
                                                std::move(done), "answer", webrtc_);
    GstPromise* promise =
        gst_promise_new_with_change_func(&PeerImpl::on_offer_set, call, &DescriptionCall::destroy);
    g_signal_emit_by_name(webrtc_, "set-remote-description", description, promise);
    gst_webrtc_session_description_free(description);
  }

  void accept_answer(const std::string& answer, std::function<void(Status)> done) override {
    auto* description = parse_description(answer, GST_WEBRTC_SDP_TYPE_ANSWER);
    if (description == nullptr) {
      asio::post(executor_, [done = std::move(done)] {
        done(Error{Errc::kInvalid, "the answer is not an SDP"});
      });
      return;
    }
    gpointer call =
        glib_owned<AnswerCall>(Link<PeerImpl>{executor_, weak_from_this()}, std::move(done));
    GstPromise* promise =
        gst_promise_new_with_change_func(&PeerImpl::on_answer_set, call, &AnswerCall::destroy);
    g_signal_emit_by_name(webrtc_, "set-remote-description", description, promise);
    gst_webrtc_session_description_free(description);
  }

  void add_remote_candidate(const IceCandidateLine& candidate) override {
    if (closed_ || candidate.candidate.empty()) {
      return;  // webrtcbin needs no end-of-candidates mark
    }
    if (!remote_set_) {
      pending_candidates_.push_back(candidate);
      return;
    }
    g_signal_emit_by_name(webrtc_, "add-ice-candidate", static_cast<guint>(candidate.mline_index),
                          candidate.candidate.c_str());
  }

  void close() override {
    if (closed_) {
      return;
    }
    closed_ = true;
    const bool connected = state_ == State::kConnected;
    state_ = State::kClosed;
    events_ = {};
    release(connected);
  }

 private:
  /// A create-offer or create-answer in flight.
  struct DescriptionCall {
    Link<PeerImpl> link;
    std::function<void(Result<std::string>)> done;
    const char* field;
    GstElement* webrtc;  // a reference of the call's own: webrtcbin's threads never touch the peer
    DescriptionCall(Link<PeerImpl> l, std::function<void(Result<std::string>)> d, const char* f,
                    GstElement* w)
        : link(std::move(l)),
          done(std::move(d)),
          field(f),
          webrtc(GST_ELEMENT(gst_object_ref(w))) {}
    ~DescriptionCall() { gst_object_unref(webrtc); }
    DescriptionCall(const DescriptionCall&) = delete;
    DescriptionCall& operator=(const DescriptionCall&) = delete;
    static void destroy(gpointer data) { glib_release<DescriptionCall>(data); }
  };
  /// A set-remote-description of an answer in flight.
  struct AnswerCall {
    Link<PeerImpl> link;
    std::function<void(Status)> done;
    AnswerCall(Link<PeerImpl> l, std::function<void(Status)> d)
        : link(std::move(l)), done(std::move(d)) {}
    static void destroy(gpointer data) { glib_release<AnswerCall>(data); }
  };

  static GstWebRTCSessionDescription* parse_description(const std::string& text,
                                                        GstWebRTCSDPType type) {
    GstSDPMessage* sdp = nullptr;
    if (gst_sdp_message_new_from_text(text.c_str(), &sdp) != GST_SDP_OK || sdp == nullptr) {
      return nullptr;
    }
    if (gst_sdp_message_medias_len(sdp) == 0) {
      gst_sdp_message_free(sdp);
      return nullptr;
    }
    return gst_webrtc_session_description_new(type, sdp);  // takes the SDP
  }

  /// The reply's error, if the promise carries one.
  static std::optional<std::string> promise_error(GstPromise* promise) {
    if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
      return "webrtcbin did not reply";
    }
    const GstStructure* reply = gst_promise_get_reply(promise);
    if (reply != nullptr && gst_structure_has_field(reply, "error")) {
      GError* error = nullptr;
      gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr);
      return take_message(error);
    }
    return std::nullopt;
  }

  void post_result(std::function<void(Result<std::string>)> done, Result<std::string> result) {
    asio::post(executor_, [done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

  /// Runs on webrtcbin's thread: the offer or answer is made; set it locally, hand its SDP on.
  static void on_description_created(GstPromise* promise, gpointer data) {
    auto* call = static_cast<DescriptionCall*>(data);
    if (auto error = promise_error(promise)) {
      finish(call, Error{Errc::kInvalid, "webrtcbin could not create an " +
                                             std::string(call->field) + ": " + *error});
      gst_promise_unref(promise);
      return;
    }
    GstWebRTCSessionDescription* description = nullptr;
    gst_structure_get(gst_promise_get_reply(promise), call->field,
                      GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &description, nullptr);
    gst_promise_unref(promise);
    if (description == nullptr) {
      finish(call, Error{Errc::kInvalid, "webrtcbin made no " + std::string(call->field)});
      return;
    }
    GstPromise* set = gst_promise_new();
    g_signal_emit_by_name(call->webrtc, "set-local-description", description, set);
    gst_promise_unref(set);
    gchar* text = gst_sdp_message_as_text(description->sdp);
    std::string sdp = text != nullptr ? text : "";
    g_free(text);
    gst_webrtc_session_description_free(description);
    finish(call, std::move(sdp));
  }

  /// Hands a description result to the executor (the DescriptionCall is freed by GLib later).
  static void finish(DescriptionCall* call, Result<std::string> result) {
    call->link.post([done = std::move(call->done), result = std::move(result)](PeerImpl&) mutable {
      done(std::move(result));
    });
  }

  /// Runs on webrtcbin's thread: the remote offer is set; make the answer.
  static void on_offer_set(GstPromise* promise, gpointer data) {
    auto* call = static_cast<DescriptionCall*>(data);
    auto error = promise_error(promise);
    gst_promise_unref(promise);
    if (error) {
      finish(call, Error{Errc::kInvalid, "webrtcbin refused the offer: " + *error});
      return;
    }
    call->link.post([](PeerImpl& peer) { peer.remote_description_set(); });
    gpointer next =
        glib_owned<DescriptionCall>(call->link, std::move(call->done), "answer", call->webrtc);
    GstPromise* answer = gst_promise_new_with_change_func(&PeerImpl::on_description_created, next,
                                                          &DescriptionCall::destroy);
    g_signal_emit_by_name(call->webrtc, "create-answer", nullptr, answer);
  }

  /// Runs on webrtcbin's thread: the remote answer is set (or refused).
  static void on_answer_set(GstPromise* promise, gpointer data) {
    auto* call = static_cast<AnswerCall*>(data);
    auto error = promise_error(promise);
    gst_promise_unref(promise);
    call->link.post([done = std::move(call->done), error = std::move(error)](PeerImpl& peer) {
      if (error) {
        done(Error{Errc::kInvalid, "webrtcbin refused the answer: " + *error});
        return;
      }
      peer.remote_description_set();
      done(std::monostate{});
    });
  }

  void remote_description_set() {
    remote_set_ = true;
    for (const auto& candidate : std::exchange(pending_candidates_, {})) {
      add_remote_candidate(candidate);
    }
  }

  /// Sets kReceiveBufferBytes on the socket ICE selected (libnice hands it out).
  void widen_receive_buffer() {
    GObject* ice = nullptr;
    g_object_get(webrtc_, "ice-agent", &ice, nullptr);
    if (ice == nullptr) {
      return;
    }
    NiceAgent* agent = nullptr;
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent") != nullptr) {
      g_object_get(ice, "agent", &agent, nullptr);
    }
    g_object_unref(ice);
    if (agent == nullptr) {
      return;
    }
    // webrtcbin bundles everything on one stream; look at the first few to be sure.
    for (guint stream = 1; stream <= 4; ++stream) {
      GSocket* socket = nice_agent_get_selected_socket(agent, stream, 1);
      if (socket == nullptr) {
        continue;
      }
      const int bytes = kReceiveBufferBytes;
      if (::setsockopt(g_socket_get_fd(socket), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0) {
        spdlog::debug("cannot set the UDP receive buffer");
      }
      g_object_unref(socket);
    }
    g_object_unref(agent);
  }

  /// Sets up webrtcbin's ICE agent, before it gathers.
  Status configure_ice(const RtcConfig& config) {
    GObject* ice = nullptr;
    g_object_get(webrtc_, "ice-agent", &ice, nullptr);
    if (ice == nullptr) {
      return Error{Errc::kInvalid, "webrtcbin has no ICE agent"};
    }
    tune_nice_agent(ice, config);
    gboolean added = TRUE;
    if (config.loopback_only) {
      added = FALSE;
      if (g_signal_lookup("add-local-ip-address", G_OBJECT_TYPE(ice)) != 0) {
        g_signal_emit_by_name(ice, "add-local-ip-address", "127.0.0.1", &added);
      }
      // TCP candidates cost sockets and a round of checks; on loopback, UDP always works.
      set_if_present(ice, "ice-tcp", FALSE);
    }
    g_object_unref(ice);
    if (added == FALSE) {
      return Error{Errc::kInvalid, "the ICE agent would not gather on 127.0.0.1"};
    }
    return std::monostate{};
  }

  /// What webrtcbin does not set on its libnice agent: UPnP off, and on loopback, a short pacing
  /// of the connectivity checks (kLoopbackPacing).
  static void tune_nice_agent(GObject* ice, const RtcConfig& config) {
    NiceAgent* agent = nullptr;
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent") != nullptr) {
      g_object_get(ice, "agent", &agent, nullptr);
    }
    if (agent == nullptr) {
      spdlog::debug("webrtcbin does not show its libnice agent; ICE keeps libnice's defaults");
      return;
    }
    // With UPnP on, libnice asks the router to map a port and holds the end of gathering back
    // until the router answers or 200 ms have passed; most networks never answer, and both
    // sides wait for gathering, so that was 400 ms of every connection. Browsers do not map
    // ports either: across NATs, STUN and TURN are the way.
    set_if_present(G_OBJECT(agent), "upnp", FALSE);
    if (config.loopback_only) {
      set_if_present(G_OBJECT(agent), "stun-pacing-timer",
                     static_cast<guint>(kLoopbackPacing.count()));
    }
    g_object_unref(agent);
  }

  /// g_object_set of one property that an older or newer GStreamer or libnice may not have.
  template <class Value>
  static void set_if_present(GObject* object, const char* property, Value value) {
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(object), property) != nullptr) {
      g_object_set(object, property, value, nullptr);
    }
  }

  std::shared_ptr<ChannelImpl> adopt(GstWebRTCDataChannel* channel) {
    auto impl = std::make_shared<ChannelImpl>(executor_, channel);
    impl->attach();
    keep(impl);
    return impl;
  }

  /// Holds a channel until the peer closes, letting go of those already closed.
  void keep(const std::shared_ptr<ChannelImpl>& channel) {
    std::erase_if(channels_, [](const auto& held) { return held->is_closed(); });
    channels_.push_back(channel);
    channel->on_gone([weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->channel_gone();
      }
    });
  }

  /// The other side closed a channel. Once it has closed every one, the connection has no use
  /// left: it ends here rather than when ICE notices, which a vanished peer may take long to do.
  void channel_gone() {
    if (closed_ || state_ != State::kConnected ||
        !std::all_of(channels_.begin(), channels_.end(),
                     [](const auto& channel) { return channel->is_closed(); })) {
      return;
    }
    spdlog::debug("the other side closed every data channel; closing the connection");
    set_state(State::kClosed);
  }

  void set_state(State state) {
    if (state_ == state || state_ == State::kClosed) {
      return;
    }
    state_ = state;
    if (state == State::kConnected) {
      widen_receive_buffer();
      if (video_out_) {
        video_out_->go_live();
        call_copy(events_.keyframe_wanted);  // the other side's decoder starts on one
      }
    }
    if (events_.state) {
      events_.state(state);
    }
  }

  static void on_ice_candidate(GstElement* /*webrtc*/, guint mline, gchar* candidate,
                               gpointer data) {
    IceCandidateLine line{candidate != nullptr ? candidate : "", "", static_cast<int>(mline)};
    if (line.candidate.empty()) {
      return;  // the end of gathering is told by the gathering state
    }
    line.mid =
        std::to_string(mline);  // max-bundle: one m-line per transport, mid as webrtcbin writes it
    static_cast<Link<PeerImpl>*>(data)->post([line = std::move(line)](PeerImpl& peer) {
      if (peer.events_.local_candidate) {
        peer.events_.local_candidate(line);
      }
    });
  }

  static void on_gathering_state(GstElement* webrtc, GParamSpec* /*spec*/, gpointer data) {
    GstWebRTCICEGatheringState state{};
    g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
    if (state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
      return;
    }
    static_cast<Link<PeerImpl>*>(data)->post([](PeerImpl& peer) {
      if (!peer.gathering_done_ && peer.events_.local_candidate) {
        peer.gathering_done_ = true;
        peer.events_.local_candidate(IceCandidateLine{});
      }
    });
  }

  static void on_connection_state(GstElement* webrtc, GParamSpec* /*spec*/, gpointer data) {
    GstWebRTCPeerConnectionState state{};
    g_object_get(webrtc, "connection-state", &state, nullptr);
    State ours = State::kConnecting;
    switch (state) {
      case GST_WEBRTC_PEER_CONNECTION_STATE_NEW:
        return;
      case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED:
        ours = State::kConnected;
        break;
      case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED:
        ours = State::kFailed;
        break;
      case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED:
        ours = State::kClosed;
        break;
      default:
        break;
    }
    static_cast<Link<PeerImpl>*>(data)->post([ours](PeerImpl& peer) { peer.set_state(ours); });
  }

  static void on_data_channel(GstElement* /*webrtc*/, GstWebRTCDataChannel* channel,
                              gpointer data) {
    g_object_ref(channel);
    // The handlers must be connected before the channel's first message, which comes on this
    // same thread after this returns: attach them here, and hand the channel over on the
    // executor (where it is freed, unused, if the peer is gone by then).
    auto* link = static_cast<Link<PeerImpl>*>(data);
    auto impl = std::make_shared<ChannelImpl>(link->executor, channel);
    impl->attach();
    link->post([impl](PeerImpl& self) {
      self.keep(impl);
      if (self.events_.channel) {
        self.events_.channel(impl);
      }
    });
  }

  static GstBusSyncReply on_bus_message(GstBus* /*bus*/, GstMessage* message, gpointer data) {
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
      GError* error = nullptr;
      gst_message_parse_error(message, &error, nullptr);
      spdlog::warn("webrtcbin pipeline error: {}", take_message(error));
      static_cast<Link<PeerImpl>*>(data)->post(
          [](PeerImpl& peer) { peer.set_state(State::kFailed); });
    }
    gst_message_unref(message);  // a handler that drops a message owns it
    return GST_BUS_DROP;
  }

  /// Closes the channels and ends the pipeline. With `linger`, the pipeline lives on for a
  /// moment first, so that the channels' closing (an SCTP stream reset) reaches the other side,
  /// which then knows at once that the connection is over.
  void release(bool linger = false) {
    if (video_out_) {
      video_out_->close();
    }
    if (video_in_) {
      video_in_->close();
    }
    auto closing = std::make_shared<Closing>();
    for (auto& channel : channels_) {
      if (channel->gst() != nullptr) {
        closing->channels.push_back(GST_WEBRTC_DATA_CHANNEL(g_object_ref(channel->gst())));
      }
      channel->close();
    }
    channels_.clear();
    if (pipeline_ == nullptr) {
      return;
    }
    for (const gulong id : handlers_) {
      g_signal_handler_disconnect(webrtc_, id);
    }
    handlers_.clear();
    closing->pipeline = std::exchange(pipeline_, nullptr);
    webrtc_ = nullptr;
    if (linger && !closing->channels.empty()) {
      closing->deadline = std::chrono::steady_clock::now() + kCloseLinger;
      Closing::wait(std::move(closing), executor_);
    }
  }

  asio::any_io_executor executor_;
  Events events_;
  GstElement* pipeline_ = nullptr;  // owned
  GstElement* webrtc_ = nullptr;    // owned by the pipeline
  std::vector<gulong> handlers_;
  std::vector<std::shared_ptr<ChannelImpl>> channels_;
  std::vector<IceCandidateLine> pending_candidates_;
  std::shared_ptr<VideoSendTrack> video_out_;
  std::shared_ptr<VideoReceiveTrack> video_in_;
  State state_ = State::kNew;
  bool remote_set_ = false;
  bool gathering_done_ = false;
  bool closed_ = false;
};

}  // namespace

void RtcPeer::warm_up() {
  if (!init_gstreamer()) {
    return;  // create() will say why
  }
  // The element itself is of no use: the certificate it makes stays with the process.
  if (GstElement* dtls = gst_element_factory_make("dtlsdec", nullptr)) {
    gst_object_unref(gst_object_ref_sink(dtls));
  }
}

Result<std::shared_ptr<RtcPeer>> RtcPeer::create(asio::any_io_executor executor,
                                                 const RtcConfig& config, Events events) {
  if (auto status = init_gstreamer(); !status) {
    return std::move(status).error();
  }
  auto peer = std::make_shared<PeerImpl>(std::move(executor), std::move(events));
  if (auto status = peer->start(config); !status) {
    peer->close();
    return std::move(status).error();
  }
  return std::shared_ptr<RtcPeer>(std::move(peer));
}

}  // namespace peernet::lib
