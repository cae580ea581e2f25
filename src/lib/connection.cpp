#include "connection.h"

#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "webrtc/video_track.h"

namespace peernet::lib {
namespace {

/// How long an offer or answer waits for ICE gathering before it goes with the candidates it
/// has (the rest trickle). Host candidates take a millisecond or two (with libnice's UPnP off,
/// see rtc_peer.cpp); a STUN server's answer takes a round trip to it, or its timeout.
constexpr std::chrono::milliseconds kGatherBound{1500};

IceCandidate to_proto(const IceCandidateLine& line) {
  IceCandidate candidate;
  candidate.set_candidate(line.candidate);
  if (!line.candidate.empty()) {
    candidate.set_sdp_mid(line.mid);
    candidate.set_sdp_line_index(line.mline_index);
  }
  return candidate;
}

Error ice_failed() {
  return Error{
      Errc::kIceFailed,
      "the peers found no network path to each other (ICE failed); across networks, "
      "configure a STUN server (stun://host:port) or a TURN relay (turn://user:pass@host)"};
}

}  // namespace

// ---- ChannelHandle --------------------------------------------------------------------------

ChannelHandle::ChannelHandle(std::shared_ptr<Loop> loop, std::shared_ptr<RtcChannel> channel)
    : loop_(std::move(loop)), channel_(std::move(channel)) {}

ChannelHandle::~ChannelHandle() = default;

std::string ChannelHandle::label() const { return channel_->label(); }

bool ChannelHandle::is_open() const {
  return loop_->call([this] { return channel_->state() == RtcChannel::State::kOpen; });
}

bool ChannelHandle::send(std::span<const std::byte> message) {
  return loop_->call([this, message] { return channel_->send(message); });
}

bool ChannelHandle::send_text(std::string_view text) {
  return loop_->call([this, text] { return channel_->send_text(text); });
}

std::uint64_t ChannelHandle::buffered_amount() const {
  return loop_->call([this] { return channel_->buffered_amount(); });
}

void ChannelHandle::set_buffered_amount_low_threshold(std::uint64_t bytes) {
  loop_->call([this, bytes] { channel_->set_buffered_amount_low_threshold(bytes); });
}

void ChannelHandle::update(const std::function<void(RtcChannel::Events&)>& change) {
  loop_->call([this, &change] {
    change(events_);
    auto events = events_;
    events.open = [this] {
      if (internal_open_) {
        std::exchange(internal_open_, {})();
      }
      if (user_open_) {
        user_open_();
      }
    };
    channel_->set_events(std::move(events));
  });
}

void ChannelHandle::when_open(std::function<void()> callback) {
  update([this, &callback](RtcChannel::Events&) { internal_open_ = std::move(callback); });
}

void ChannelHandle::on_open(std::function<void()> callback) {
  update([this, &callback](RtcChannel::Events&) { user_open_ = std::move(callback); });
}

void ChannelHandle::on_message(std::function<void(std::span<const std::byte>, bool)> callback) {
  update([&callback](RtcChannel::Events& events) { events.message = std::move(callback); });
}

void ChannelHandle::on_buffered_amount_low(std::function<void()> callback) {
  update([&callback](RtcChannel::Events& events) {
    events.buffered_amount_low = std::move(callback);
  });
}

void ChannelHandle::on_close(std::function<void()> callback) {
  update([&callback](RtcChannel::Events& events) { events.closed = std::move(callback); });
}

void ChannelHandle::close() {
  loop_->call([this] {
    events_ = {};
    user_open_ = nullptr;
    internal_open_ = nullptr;
    channel_->close();
  });
}

// ---- ConnectionImpl: set-up -----------------------------------------------------------------

ConnectionImpl::ConnectionImpl(std::shared_ptr<Loop> loop,
                               std::shared_ptr<SignalingClient> signaling, Role role,
                               std::chrono::seconds poll_wait)
    : loop_(std::move(loop)),
      signaling_(std::move(signaling)),
      role_(role),
      poll_wait_(poll_wait),
      gather_timer_(loop_->executor()),
      open_timer_(loop_->executor()) {}

ConnectionImpl::~ConnectionImpl() {
  if (peer_) {
    peer_->close();
  }
}

Status ConnectionImpl::start(const RtcConfig& config) {
  RtcPeer::Events events;
  events.local_candidate = guarded(&ConnectionImpl::on_local_candidate);
  events.state = guarded(&ConnectionImpl::on_state);
  events.channel = guarded(&ConnectionImpl::on_remote_channel);
  events.video_frame = guarded(&ConnectionImpl::on_video_frame);
  events.keyframe_wanted = guarded(&ConnectionImpl::on_keyframe_wanted);
  auto peer = RtcPeer::create(loop_->executor(), config, std::move(events));
  if (!peer) {
    return std::move(peer).error();
  }
  peer_ = std::move(peer).value();
  return std::monostate{};
}

void ConnectionImpl::start_open_timer(std::chrono::seconds timeout) {
  timeout_ = timeout;
  open_timer_.expires_after(timeout);
  open_timer_.async_wait(guarded(&ConnectionImpl::on_open_timer));
}

void ConnectionImpl::on_open_timer(boost::system::error_code ec) {
  if (ec) {
    return;
  }
  if (role_ == Role::kKnocker && !answered_) {
    settle(Error{Errc::kNoAnswer,
                 fmt::format("no answer to the knock within {} s", timeout_.count())});
    return;
  }
  settle(ice_failed());
}

// ---- ConnectionImpl: the knocking side ------------------------------------------------------

void ConnectionImpl::knock(const Server& server, const std::string& protocol,
                           const std::string& version, const std::vector<std::string>& channels,
                           std::optional<VideoIn> video, std::chrono::seconds timeout,
                           std::function<void(Status)> done) {
  settled_ = std::move(done);
  if (video) {
    if (auto status = peer_->receive_video(); !status) {
      settle(std::move(status).error());
      return;
    }
    video_in_ = std::move(video);
  }
  knock_.set_server(server.unique_id());
  knock_.set_protocol(protocol);
  if (!version.empty()) {
    knock_.set_version(version);
  }
  for (const auto& label : channels) {
    auto raw = peer_->create_channel(label);
    if (!raw) {
      settle(Error{Errc::kInvalid, "webrtcbin would not make a data channel '" + label + "'"});
      return;
    }
    own_channels_.push_back(std::make_shared<ChannelHandle>(loop_, std::move(raw)));
  }
  // Open means the first channel is open, ready to carry messages.
  own_channels_.front()->when_open(guarded(&ConnectionImpl::on_first_channel_open));
  start_open_timer(timeout);
  peer_->create_offer(guarded(&ConnectionImpl::on_offer));
}

void ConnectionImpl::on_first_channel_open() { settle(std::monostate{}); }

void ConnectionImpl::on_offer(Result<std::string> offer) {
  if (!settled_) {
    return;
  }
  if (!offer) {
    settle(std::move(offer).error());
    return;
  }
  knock_.set_offer(std::move(offer).value());
  signal_when_gathered();
}

void ConnectionImpl::send_knock() {
  if (!settled_) {
    return;
  }
  CreateKnockRequest request;
  request.set_server(knock_.server());
  request.set_wait_seconds(static_cast<std::uint32_t>(poll_wait_.count()));
  *request.mutable_knock() = knock_;
  for (const auto& candidate : local_candidates_) {
    *request.mutable_knock()->add_ice_candidates() = candidate;
  }
  candidates_sent_ = local_candidates_.size();
  signaled_ = true;
  signaling_->create_knock(request, guarded(&ConnectionImpl::on_knocked));
}

void ConnectionImpl::on_knocked(Result<CreateKnockResponse> response) {
  if (!settled_) {
    return;
  }
  if (!response) {
    const auto& error = response.error();
    settle(error.code() == Errc::kNotFound
               ? Error{Errc::kNotFound, "server '" + knock_.server() +
                                            "' is not in the room (it left, expired, or never was)"}
               : error);
    return;
  }
  token_ = response->token();
  knock_.set_unique_id(response->knock().unique_id());
  send_late_candidates();
  take_knock_reply(response->knock());
}

void ConnectionImpl::take_knock_reply(const Knock& reply) {
  revision_ = std::max(revision_, reply.revision());
  switch (reply.state()) {
    case KNOCK_STATE_REJECTED:
      settle(
          Error{Errc::kRefused, "the server refused the knock: " +
                                    (reply.reason().empty() ? "no reason given" : reply.reason())});
      return;
    case KNOCK_STATE_EXPIRED:
      settle(Error{Errc::kNoAnswer, "nobody answered the knock before it expired"});
      return;
    case KNOCK_STATE_ANSWERED:
      break;
    default:
      wait_for_answer();
      return;
  }
  if (!answered_) {
    answered_ = true;
    peer_->accept_answer(reply.answer(), guarded(&ConnectionImpl::on_answer_accepted));
  }
  add_candidates(reply.server_ice_candidates());
  if (!remote_complete_) {
    wait_for_answer();  // more of the server's candidates are to come
  }
}

void ConnectionImpl::on_answer_accepted(Status status) {
  if (!status) {
    settle(std::move(status).error());
  }
}

void ConnectionImpl::wait_for_answer() {
  if (!settled_ || closed_) {
    return;
  }
  GetKnockRequest request;
  request.set_knock(knock_.unique_id());
  request.set_wait_seconds(static_cast<std::uint32_t>(poll_wait_.count()));
  request.set_since(revision_);
  signaling_->get_knock(request, token_, guarded(&ConnectionImpl::on_knock_read));
}

void ConnectionImpl::on_knock_read(Result<Knock> reply) {
  if (!settled_) {
    return;
  }
  if (!reply) {
    settle(reply.error().code() == Errc::kNotFound
               ? Error{Errc::kNoAnswer, "the knock is gone from peernetd before an answer"}
               : reply.error());
    return;
  }
  take_knock_reply(reply.value());
}

// ---- ConnectionImpl: the serving side -------------------------------------------------------

void ConnectionImpl::answer(const Knock& knock, const std::string& server_token,
                            std::optional<VideoOut> video,
                            std::function<void(Result<UpdateKnockRequest>)> send,
                            std::function<void(Status)> opened, std::chrono::seconds timeout) {
  knock_ = knock;
  token_ = server_token;
  send_answer_ = std::move(send);
  settled_ = std::move(opened);
  start_open_timer(timeout);
  if (video && vp8_payload_type(knock.offer())) {  // else the offer wants no video of ours
    auto sender = peer_->send_video();
    if (!sender) {
      std::exchange(send_answer_, {})(sender.error());
      settle(std::move(sender).error());
      return;
    }
    video_sender_ = std::move(sender).value();
    video_out_ = std::move(video);
  }
  peer_->answer_offer(knock.offer(), guarded(&ConnectionImpl::on_answer_made));
}

void ConnectionImpl::on_answer_made(Result<std::string> answer) {
  if (!answer) {
    std::exchange(send_answer_, {})(answer.error());
    settle(std::move(answer).error());
    return;
  }
  add_candidates(knock_.ice_candidates());
  answer_sdp_ = std::move(answer).value();
  signal_when_gathered();
}

void ConnectionImpl::send_answer() {
  UpdateKnockRequest request;
  request.set_knock(knock_.unique_id());
  request.set_answer(std::exchange(answer_sdp_, {}));
  for (const auto& candidate : local_candidates_) {
    *request.add_ice_candidates() = candidate;
  }
  candidates_sent_ = local_candidates_.size();
  signaled_ = true;
  std::exchange(send_answer_, {})(std::move(request));
}

void ConnectionImpl::add_remote_candidates(const Knock& knock) {
  add_candidates(knock.ice_candidates());
}

void ConnectionImpl::add_candidates(
    const google::protobuf::RepeatedPtrField<IceCandidate>& candidates) {
  for (const auto& candidate : candidates) {
    if (candidate.candidate().empty()) {
      remote_complete_ = true;
      continue;
    }
    peer_->add_remote_candidate(
        {candidate.candidate(), candidate.sdp_mid(), candidate.sdp_line_index()});
  }
}

void ConnectionImpl::signal_when_gathered() {
  if (gathered_) {
    signal();
    return;
  }
  awaiting_gathering_ = true;
  gather_timer_.expires_after(kGatherBound);
  gather_timer_.async_wait(guarded(&ConnectionImpl::on_gather_timer));
}

void ConnectionImpl::on_gather_timer(boost::system::error_code ec) {
  if (ec || !awaiting_gathering_) {
    return;
  }
  spdlog::debug("ICE gathering still running after {} ms; the rest will trickle",
                kGatherBound.count());
  awaiting_gathering_ = false;
  signal();
}

void ConnectionImpl::signal() { role_ == Role::kKnocker ? send_knock() : send_answer(); }

void ConnectionImpl::on_local_candidate(const IceCandidateLine& line) {
  local_candidates_.push_back(to_proto(line));
  if (line.candidate.empty()) {
    gathered_ = true;
    gather_timer_.cancel();
    if (awaiting_gathering_) {
      awaiting_gathering_ = false;
      signal();
      return;
    }
  }
  if (signaled_) {
    send_late_candidates();
  }
}

void ConnectionImpl::send_late_candidates() {
  if (trickling_ || closed_ || knock_.unique_id().empty() ||
      candidates_sent_ >= local_candidates_.size()) {
    return;
  }
  UpdateKnockRequest request;
  request.set_knock(knock_.unique_id());
  for (auto i = candidates_sent_; i < local_candidates_.size(); ++i) {
    *request.add_ice_candidates() = local_candidates_[i];
  }
  candidates_sent_ = local_candidates_.size();
  trickling_ = true;
  signaling_->update_knock(request, token_, guarded(&ConnectionImpl::on_candidates_sent));
}

void ConnectionImpl::on_candidates_sent(const Result<UpdateKnockResponse>& response) {
  trickling_ = false;
  if (!response) {
    spdlog::debug("trickling candidates failed: {}", response.error().what());
    return;
  }
  send_late_candidates();
}

// ---- ConnectionImpl: life -------------------------------------------------------------------

void ConnectionImpl::on_state(RtcPeer::State state) {
  if (state == RtcPeer::State::kConnected && role_ == Role::kServer) {
    settle(std::monostate{});
    return;
  }
  if (state == RtcPeer::State::kFailed || state == RtcPeer::State::kClosed) {
    if (settled_) {
      settle(ice_failed());
    } else if (open_) {
      fail(state == RtcPeer::State::kFailed ? ice_failed()
                                            : Error{Errc::kClosed, "the connection was closed"});
    }
  }
}

void ConnectionImpl::on_remote_channel(std::shared_ptr<RtcChannel> channel) {
  auto handle = std::make_shared<ChannelHandle>(loop_, std::move(channel));
  if (on_channel_) {
    on_channel_(handle);
  } else {
    early_remote_channels_.push_back(std::move(handle));
  }
}

void ConnectionImpl::settle(Status status) {
  if (!settled_) {
    return;
  }
  auto done = std::exchange(settled_, {});
  open_timer_.cancel();
  open_ = status.ok();
  if (!open_) {
    close();
  }
  done(std::move(status));
}

void ConnectionImpl::fail(const Error& error) {
  auto callback = std::exchange(on_closed_, {});
  close();
  if (callback) {
    callback(error);
  }
}

// ---- ConnectionImpl: the public side --------------------------------------------------------

std::shared_ptr<Channel> ConnectionImpl::open_channel(const std::string& label) {
  return loop_->call([this, &label]() -> std::shared_ptr<Channel> {
    if (closed_) {
      return nullptr;
    }
    auto raw = peer_->create_channel(label);
    return raw ? std::make_shared<ChannelHandle>(loop_, std::move(raw)) : nullptr;
  });
}

std::vector<std::shared_ptr<Channel>> ConnectionImpl::channels() const {
  return loop_->call([this] {
    return std::vector<std::shared_ptr<Channel>>(own_channels_.begin(), own_channels_.end());
  });
}

void ConnectionImpl::on_channel(std::function<void(std::shared_ptr<Channel>)> callback) {
  loop_->call([this, &callback] {
    on_channel_ = std::move(callback);
    if (!on_channel_) {
      return;
    }
    // Channels that came before anyone listened, handed over on the next turn of the loop.
    for (auto& channel : std::exchange(early_remote_channels_, {})) {
      boost::asio::post(loop_->executor(), [weak = weak_from_this(), channel = std::move(channel)] {
        if (auto self = weak.lock(); self && self->on_channel_) {
          self->on_channel_(channel);
        }
      });
    }
  });
}

void ConnectionImpl::on_video_frame(std::vector<std::byte> frame, bool keyframe) {
  if (video_in_ && video_in_->frame && !closed_) {
    const auto callback = video_in_->frame;  // it may close the connection
    callback(VideoFrame{frame, keyframe});
  }
}

void ConnectionImpl::on_keyframe_wanted() {
  if (video_out_ && video_out_->keyframe_wanted && !closed_) {
    const auto callback = video_out_->keyframe_wanted;
    callback();
  }
}

std::shared_ptr<VideoSender> ConnectionImpl::video_sender() const {
  return loop_->call([this] { return video_sender_; });
}

void ConnectionImpl::request_keyframe() {
  // Posted, not waited for: a recorder asks from its own streaming thread.
  boost::asio::post(loop_->executor(), [weak = weak_from_this()] {
    if (auto self = weak.lock(); self && !self->closed_ && self->peer_) {
      self->peer_->request_keyframe();
    }
  });
}

void ConnectionImpl::on_closed(std::function<void(const Error&)> callback) {
  loop_->call([this, &callback] { on_closed_ = std::move(callback); });
}

bool ConnectionImpl::is_open() const {
  return loop_->call([this] { return open_ && !closed_; });
}

void ConnectionImpl::close() {
  loop_->call([this] {
    if (closed_) {
      return;
    }
    closed_ = true;
    open_ = false;
    gather_timer_.cancel();
    open_timer_.cancel();
    awaiting_gathering_ = false;
    on_channel_ = nullptr;
    on_closed_ = nullptr;
    video_in_.reset();
    video_out_.reset();
    early_remote_channels_.clear();
    if (peer_) {
      peer_->close();
    }
  });
}

}  // namespace peernet::lib
