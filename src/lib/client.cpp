// peernet::Client: the loop, finding and knocking, and the serving side's registration and poll.
#include <algorithm>
#include <future>
#include <map>
#include <thread>
#include <utility>

#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "connection.h"
#include "loop.h"
#include "peernet/peernet.h"
#include "signaling/signaling_client.h"

namespace peernet {
namespace {

using lib::ConnectionImpl;
using lib::Result;
using lib::Status;

/// Retries of an unreachable peernetd back off up to this.
constexpr std::chrono::seconds kMaxBackoff{30};
/// How long the serving side gives an accepted knock to become a connection.
constexpr std::chrono::seconds kAnswerTimeout{30};

std::string room_name(const ClientOptions& options) { return "room '" + options.room + "'"; }

/// A 404 about the room, said in those words.
Error about_room(const Error& error, const ClientOptions& options) {
  if (error.code() == Errc::kNotFound) {
    return Error{Errc::kRoomNotFound,
                 room_name(options) + " does not exist on peernetd at " + options.daemon};
  }
  return error;
}

lib::RtcConfig rtc_config(const ClientOptions& options) {
  return {options.stun_server, options.turn_servers, options.loopback_only};
}

/// The serving side: registration, the standing poll, answers. Lives on the loop.
class ServeLoop : public std::enable_shared_from_this<ServeLoop> {
 public:
  ServeLoop(std::shared_ptr<lib::Loop> loop, std::shared_ptr<lib::SignalingClient> signaling,
            ClientOptions options, Server server, ServeHandlers handlers, std::string token)
      : loop_(std::move(loop)),
        signaling_(std::move(signaling)),
        options_(std::move(options)),
        server_(std::move(server)),
        handlers_(std::move(handlers)),
        retry_timer_(loop_->executor()),
        token_(std::move(token)) {
    server_.set_room(options_.room);
  }

  /// Registers; `first` gets the outcome of the first attempt, then the loop keeps going.
  void start(std::function<void(Status)> first) {
    first_ = std::move(first);
    register_server();
  }

  const std::string& token() const { return token_; }

  /// Withdraws the registration; `withdrawn` runs when peernetd has answered (or failed to).
  void stop(std::function<void()> withdrawn = {}) {
    stopped_ = true;
    retry_timer_.cancel();
    if (!token_.empty()) {
      DeleteServerRequest request;
      request.set_server(server_.unique_id());
      signaling_->delete_server(
          request, token_,
          [withdrawn = std::move(withdrawn)](const Result<DeleteServerResponse>& response) {
            if (!response) {
              spdlog::debug("withdrawing the registration failed: {}", response.error().what());
            }
            if (withdrawn) {
              withdrawn();
            }
          });
    } else if (withdrawn) {
      withdrawn();
    }
    for (auto& [id, connection] : answering_) {
      connection->close();
    }
    answering_.clear();
  }

 private:
  void register_server() {
    if (stopped_) {
      return;
    }
    CreateServerRequest request;
    *request.mutable_server() = server_;
    signaling_->create_server(request, token_,
                              [weak = weak_from_this()](Result<CreateServerResponse> response) {
                                if (auto self = weak.lock(); self && !self->stopped_) {
                                  self->on_registered(std::move(response));
                                }
                              });
  }

  void on_registered(Result<CreateServerResponse> response) {
    if (!response) {
      auto error = about_room(response.error(), options_);
      if (first_) {
        std::exchange(first_, {})(std::move(error));
        return;
      }
      report(error);
      retry_later([](ServeLoop& self) { self.register_server(); });
      return;
    }
    token_ = response->token();
    backoff_ = std::chrono::seconds{0};
    spdlog::info("registered server '{}' in {}", server_.unique_id(), room_name(options_));
    report(std::nullopt);
    if (first_) {
      std::exchange(first_, {})(std::monostate{});
    }
    since_ = 0;
    poll();
  }

  void poll() {
    if (stopped_) {
      return;
    }
    signaling_->list_knocks(poll_request(), token_,
                            [weak = weak_from_this()](Result<ListKnocksResponse> response) {
                              if (auto self = weak.lock(); self && !self->stopped_) {
                                self->on_poll(std::move(response));
                              }
                            });
  }

  ListKnocksRequest poll_request() const {
    ListKnocksRequest request;
    request.set_server(server_.unique_id());
    request.set_wait_seconds(static_cast<std::uint32_t>(options_.poll_wait.count()));
    request.set_since(since_);
    return request;
  }

  void on_poll(Result<ListKnocksResponse> response) {
    if (!response) {
      on_poll_error(response.error());
      return;
    }
    since_ = std::max(since_, response->revision());
    std::vector<const Knock*> fresh;
    for (const auto& knock : response->knocks()) {
      if (auto known = answering_.find(knock.unique_id()); known != answering_.end()) {
        known->second->add_remote_candidates(knock);
      } else if (knock.has_offer() && knock.state() == KNOCK_STATE_PENDING) {
        // peernetd sends a knock's offer only in the first poll that lists it.
        fresh.push_back(&knock);
      }
    }
    if (fresh.empty()) {
      poll();
      return;
    }
    // The last reply to go out carries the next poll: no separate request for it.
    outstanding_ += fresh.size();
    for (const auto* knock : fresh) {
      take(*knock);
    }
  }

  void on_poll_error(const Error& error) {
    if (error.code() == Errc::kNotFound) {
      // Expired, deleted, or peernetd restarted: register again (same id, same token).
      spdlog::info("server '{}' is unknown to peernetd; registering again", server_.unique_id());
      register_server();
      return;
    }
    report(error);
    retry_later([](ServeLoop& self) { self.poll(); });
  }

  void take(const Knock& knock) {
    const auto verdict = handlers_.screen ? handlers_.screen(knock) : Verdict::accepted();
    if (!verdict.accept) {
      UpdateKnockRequest request;
      request.set_knock(knock.unique_id());
      request.set_reject(true);
      request.set_reason(verdict.reason);
      spdlog::info("refused a knock for {}: {}", knock.protocol(), verdict.reason);
      reply(std::move(request));
      return;
    }
    auto connection = std::make_shared<ConnectionImpl>(
        loop_, signaling_, ConnectionImpl::Role::kServer, options_.poll_wait);
    if (auto status = connection->start(rtc_config(options_)); !status) {
      UpdateKnockRequest request;
      request.set_knock(knock.unique_id());
      request.set_reject(true);
      request.set_reason("the server cannot make WebRTC connections");
      spdlog::error("cannot answer a knock: {}", status.error().what());
      reply(std::move(request));
      return;
    }
    answering_[knock.unique_id()] = connection;
    const std::weak_ptr<ServeLoop> weak = weak_from_this();
    connection->answer(
        knock, token_, verdict.video,
        [weak, id = knock.unique_id()](Result<UpdateKnockRequest> request) {
          auto self = weak.lock();
          if (!self) {
            return;
          }
          if (!request) {
            UpdateKnockRequest refusal;
            refusal.set_knock(id);
            refusal.set_reject(true);
            refusal.set_reason(std::string("the offer was not usable: ") + request.error().what());
            self->reply(std::move(refusal));
            return;
          }
          self->reply(std::move(request).value());
        },
        [weak, id = knock.unique_id()](const Status& opened) {
          auto self = weak.lock();
          if (!self) {
            return;
          }
          auto found = self->answering_.find(id);
          if (found == self->answering_.end()) {
            return;
          }
          auto open = found->second;
          self->answering_.erase(found);
          if (!opened) {
            spdlog::info("knock {}: no connection: {}", id, opened.error().what());
            return;
          }
          spdlog::info("connection open for {} (knock {})", open->knock().protocol(), id);
          if (self->handlers_.connection) {
            self->handlers_.connection(open);
          }
        },
        kAnswerTimeout);
  }

  /// Sends an answer or refusal; the last one of a batch continues as the next poll.
  void reply(UpdateKnockRequest request) {
    const bool last = --outstanding_ == 0;
    if (last) {
      *request.mutable_next_poll() = poll_request();
    }
    signaling_->update_knock(
        request, token_, [weak = weak_from_this(), last](Result<UpdateKnockResponse> response) {
          auto self = weak.lock();
          if (!self || self->stopped_) {
            return;
          }
          if (!response) {
            spdlog::warn("answering a knock failed: {}", response.error().what());
            if (last) {
              self->on_poll_error(response.error());
            }
            return;
          }
          if (last) {
            self->on_poll(std::move(*response->mutable_next_poll()));
          }
        });
  }

  template <class Step>
  void retry_later(Step step) {
    backoff_ = std::clamp(backoff_ * 2, std::chrono::seconds{1}, kMaxBackoff);
    retry_timer_.expires_after(backoff_);
    retry_timer_.async_wait([weak = weak_from_this(), step](boost::system::error_code ec) {
      if (auto self = weak.lock(); self && !ec && !self->stopped_) {
        step(*self);
      }
    });
  }

  void report(const std::optional<Error>& error) {
    if (error) {
      spdlog::warn("serving '{}': {}; retrying", server_.unique_id(), error->what());
    }
    if (handlers_.status) {
      handlers_.status(error);
    }
  }

  std::shared_ptr<lib::Loop> loop_;
  std::shared_ptr<lib::SignalingClient> signaling_;
  ClientOptions options_;
  Server server_;
  ServeHandlers handlers_;
  boost::asio::steady_timer retry_timer_;
  std::function<void(Status)> first_;
  std::string token_;
  std::uint64_t since_ = 0;
  std::size_t outstanding_ = 0;
  std::chrono::seconds backoff_{0};
  std::map<std::string, std::shared_ptr<ConnectionImpl>> answering_;
  bool stopped_ = false;
};

}  // namespace

struct Client::Impl {
  ClientOptions options;
  std::shared_ptr<lib::Loop> loop = std::make_shared<lib::Loop>();
  std::shared_ptr<lib::SignalingClient> signaling;
  std::shared_ptr<ServeLoop> serving;                      // on the loop
  std::vector<std::weak_ptr<ConnectionImpl>> connections;  // on the loop
  /// Makes the process's DTLS certificate (lib::RtcPeer::warm_up) beside other work: while a
  /// serving side waits for its first knock, or while connect() makes its pipeline.
  std::jthread warm_up;  // started on the loop, joined with the client

  /// Starts warm_up once; on the loop.
  void start_warm_up() {
    if (warm_up.joinable()) {
      return;
    }
    try {
      warm_up = std::jthread([] { lib::RtcPeer::warm_up(); });
    } catch (const std::system_error& error) {
      // Only a head start: the first connection makes the certificate itself.
      spdlog::debug("no thread to make the DTLS certificate ahead: {}", error.what());
    }
  }

  /// Remembers a connection to close with the client, forgetting those already gone (a weak
  /// pointer keeps a make_shared object's memory until it is dropped).
  void track(const std::shared_ptr<ConnectionImpl>& connection) {
    std::erase_if(connections, [](const auto& weak) { return weak.expired(); });
    connections.push_back(connection);
  }

  /// Client::connect, with or without video.
  std::shared_ptr<Connection> connect(const Server& server, const std::string& protocol,
                                      const std::vector<std::string>& channels,
                                      std::optional<VideoIn> video);

  /// Runs `start(done)` on the loop and waits for `done`'s result.
  template <class T, class Start>
  T await(Start start) {
    if (loop->on_loop()) {
      throw Error{Errc::kInvalid, "a blocking libpeernet call was made inside a callback"};
    }
    std::promise<Result<T>> promise;
    auto future = promise.get_future();
    boost::asio::post(loop->executor(), [&] {
      start([&promise](Result<T> result) { promise.set_value(std::move(result)); });
    });
    auto result = future.get();
    if (!result) {
      throw std::move(result).error();
    }
    return std::move(result).value();
  }
};

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  auto address = lib::DaemonAddress::parse(impl_->options.daemon);
  if (!address) {
    throw std::move(address).error();
  }
  impl_->signaling = impl_->loop->call([&] {
    return std::make_shared<lib::SignalingClient>(
        impl_->loop->executor(), std::move(address).value(),
        lib::TlsTrust{impl_->options.tls_ca_file, impl_->options.tls_pin_sha256});
  });
}

Client::~Client() {
  // Withdraw the registration first, so that nobody knocks on a server that is gone; a daemon
  // that does not answer soon is left to expire it.
  auto withdrawn = std::make_shared<std::promise<void>>();
  auto done = withdrawn->get_future();
  impl_->loop->call([this, withdrawn] {
    if (impl_->serving) {
      impl_->serving->stop([withdrawn] { withdrawn->set_value(); });
      impl_->serving.reset();
    } else {
      withdrawn->set_value();
    }
  });
  done.wait_for(std::chrono::seconds{2});
  impl_->loop->call([this] {
    for (auto& weak : impl_->connections) {
      if (auto connection = weak.lock()) {
        connection->close();
      }
    }
    impl_->signaling->cancel();
  });
  impl_->loop->stop();
}

const ClientOptions& Client::options() const { return impl_->options; }

std::vector<Server> Client::find(const std::string& protocol, const std::string& version) {
  ListServersRequest request;
  request.set_room(impl_->options.room);
  request.set_protocol(protocol);
  if (!version.empty()) {
    request.set_version(version);
  }
  auto response = impl_->await<ListServersResponse>(
      [this, &request](std::function<void(Result<ListServersResponse>)> done) {
        impl_->signaling->list_servers(
            request, [this, done = std::move(done)](Result<ListServersResponse> result) {
              done(result ? std::move(result) : about_room(result.error(), impl_->options));
            });
      });
  return {response.servers().begin(), response.servers().end()};
}

std::shared_ptr<Connection> Client::connect(const Server& server, const std::string& protocol,
                                            const std::vector<std::string>& channels) {
  return impl_->connect(server, protocol, channels, std::nullopt);
}

std::shared_ptr<Connection> Client::connect(const Server& server, const std::string& protocol,
                                            const std::vector<std::string>& channels,
                                            VideoIn video) {
  if (!video.frame) {
    throw Error{Errc::kInvalid, "connect() with video needs a frame callback"};
  }
  return impl_->connect(server, protocol, channels, std::move(video));
}

std::shared_ptr<Connection> Client::Impl::connect(const Server& server, const std::string& protocol,
                                                  const std::vector<std::string>& channels,
                                                  std::optional<VideoIn> video) {
  if (channels.empty()) {
    throw Error{Errc::kInvalid, "connect() needs at least one channel label"};
  }
  const auto offered = std::find_if(server.services().begin(), server.services().end(),
                                    [&](const Service& s) { return s.protocol() == protocol; });
  if (offered == server.services().end()) {
    throw Error{Errc::kNoSuchService,
                "server '" + server.unique_id() + "' offers no '" + protocol + "' service"};
  }
  const std::string version = offered->version();
  return await<std::shared_ptr<Connection>>(
      [&](std::function<void(Result<std::shared_ptr<Connection>>)> done) {
        start_warm_up();
        auto connection = std::make_shared<ConnectionImpl>(
            loop, signaling, ConnectionImpl::Role::kKnocker, options.poll_wait);
        if (auto status = connection->start(rtc_config(options)); !status) {
          done(std::move(status).error());
          return;
        }
        track(connection);
        connection->knock(server, protocol, version, channels, std::move(video),
                          options.connect_timeout,
                          [connection, done = std::move(done)](Status status) {
                            if (!status) {
                              done(std::move(status).error());
                              return;
                            }
                            done(std::shared_ptr<Connection>(connection));
                          });
      });
}

void Client::serve(const Server& server, ServeHandlers handlers, const std::string& token) {
  if (server.unique_id().empty()) {
    throw Error{Errc::kInvalid, "serve() needs the server's unique_id"};
  }
  impl_->await<std::monostate>([&](std::function<void(Status)> done) {
    impl_->start_warm_up();
    if (impl_->serving) {
      impl_->serving->stop();
    }
    // Every connection handed out is closed with the client, whatever the user keeps.
    handlers.connection =
        [this, user = std::move(handlers.connection)](std::shared_ptr<Connection> connection) {
          impl_->track(std::static_pointer_cast<ConnectionImpl>(connection));
          if (user) {
            user(std::move(connection));
          }
        };
    auto serving = std::make_shared<ServeLoop>(impl_->loop, impl_->signaling, impl_->options,
                                               server, std::move(handlers), token);
    impl_->serving = serving;
    serving->start([this, serving, done = std::move(done)](Status status) {
      if (!status && impl_->serving == serving) {
        impl_->serving.reset();
      }
      done(std::move(status));
    });
  });
}

void Client::stop_serving() {
  impl_->loop->call([this] {
    if (impl_->serving) {
      impl_->serving->stop();
      impl_->serving.reset();
    }
  });
}

std::string Client::token() const {
  return impl_->loop->call(
      [this] { return impl_->serving ? impl_->serving->token() : std::string{}; });
}

std::uint64_t Client::requests_sent() const { return impl_->signaling->requests_sent(); }

}  // namespace peernet
