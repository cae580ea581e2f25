// broker_load: a load generator for signaling brokers, PeerNet's peernetd and the PeerJS server.
//
//   exchange: pairs of a serving and a connecting side do offer/answer exchanges back to back
//             (closed loop); prints throughput and latency as one JSON line.
//   hold:     opens idle serving sides and holds them until stdin closes or SIGTERM, so a runner
//             can read the broker's memory per peer.
//
// Both targets get the very same SDP bytes. The generator shares the machine with the broker it
// measures, so it is lean: kept-alive connections, reused buffers, JSON parsed into scratch
// memory, and one single-threaded io_context per --threads (1 by default; hold mode uses 1).

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json.hpp>
#include <boost/json/src.hpp>  // Boost.JSON header-only, in this one translation unit
#include <fmt/format.h>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kProtocol = "bench.echo";
constexpr int kWaitSeconds = 30;
/// Longer than any long-poll, so only a broker that hangs trips it.
constexpr auto kIoTimeout = std::chrono::seconds{kWaitSeconds + 15};
constexpr std::size_t kMaxBody = 1U << 20U;
/// After an HTTP error status, before trying again (a 429 or 503 asks for a pause).
constexpr auto kRetryDelay = std::chrono::milliseconds{100};
/// An exchange still unanswered this long when the run ends counts as an error (a hang).
constexpr auto kStallLimit = std::chrono::seconds{2};
/// The PeerJS client library's default heartbeat interval (pingInterval).
constexpr auto kHeartbeat = std::chrono::seconds{5};
constexpr auto kSetupTimeout = std::chrono::seconds{60};
constexpr std::size_t kErrorsShown = 5;

enum class Target { kPeerNet, kPeerJs };

struct Options {
  Target target = Target::kPeerNet;
  std::string url;
  std::size_t pairs = 1;
  double seconds = 5;
  double warmup = 1;
  std::size_t threads = 1;
  std::size_t max_errors = 5;
  std::size_t count = 1;
  bool poll = false;
  /// Connections being set up at once: bounds the SYN and registration burst.
  std::size_t ramp = 256;

  std::string host;  // "127.0.0.1:8470", for Host headers
  tcp::endpoint endpoint;
  std::string run_tag;  // keeps ids of consecutive runs against one broker apart
};

std::string_view target_name(Target target) {
  return target == Target::kPeerNet ? "peernet" : "peerjs";
}

/// fmt::format into an existing string, keeping its capacity: no allocation once warm.
template <typename... Args>
void format_into(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  out.clear();
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

// ---- SDP ---------------------------------------------------------------------------------------

/// splitmix64: small and deterministic, so both targets are sent byte-identical SDP.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
  }
  unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }
  std::string chars(std::size_t n, std::string_view alphabet) {
    std::string out(n, ' ');
    for (auto& c : out) {
      c = alphabet[below(static_cast<unsigned>(alphabet.size()))];
    }
    return out;
  }

 private:
  std::uint64_t state_;
};

/// The seed of a pair's n-th exchange; the offer and the answer derive their own from it.
std::uint64_t exchange_seed(std::size_t pair, std::uint64_t n) {
  return (static_cast<std::uint64_t>(pair) << 40U) ^ n;
}

/// Appends, as a quoted JSON string, what a browser sends for one data channel when it waits for
/// ICE gathering instead of trickling: host (UDP and TCP, three interfaces), server-reflexive and
/// relay candidates inline, about 1.5 KB. Addresses are from the documentation ranges;
/// credentials, fingerprint and ports are fresh for every seed, so no two exchanges carry the same
/// ice-ufrag. SDP holds nothing JSON must escape but its line ends, so they are written escaped
/// and the text needs no second pass.
void append_sdp_json(std::string& out, std::uint64_t seed, bool offer) {
  constexpr std::string_view kIceChars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  Random random(offer ? seed : ~seed);
  const std::string ufrag = random.chars(4, kIceChars);
  const std::string pwd = random.chars(24, kIceChars);
  const auto port = [&random] { return 49152 + random.below(16384); };
  const auto foundation = [&random] { return random.below(4'000'000'000U); };
  const unsigned lan = 2 + random.below(250);
  const unsigned wan = 2 + random.below(250);
  const unsigned lan_port = port();
  const unsigned wan_port = port();
  const std::string lan_address = fmt::format("192.0.2.{}", lan);
  const std::string vpn_address = fmt::format("10.8.0.{}", 2 + random.below(250));
  const std::string v6_address =
      fmt::format("2001:db8:{}::{}", random.chars(4, "0123456789abcdef"), lan);

  auto it = std::back_inserter(out);
  const auto line = [&]<typename... Args>(fmt::format_string<Args...> format, Args&&... args) {
    fmt::format_to(it, format, std::forward<Args>(args)...);
    out += "\\r\\n";
  };
  const auto host = [&](std::string_view transport, unsigned priority, std::string_view address,
                        unsigned cand_port, std::string_view tcp_type, unsigned network) {
    line(
        "a=candidate:{} 1 {} {} {} {} typ host{} generation 0 ufrag {} network-id {} "
        "network-cost {}",
        foundation(), transport, priority, address, cand_port, tcp_type, ufrag, network,
        network == 2 ? 50 : 10);
  };
  out += '"';
  line("v=0");
  line("o=- {} 2 IN IP4 127.0.0.1", random.next() >> 2U);
  line("s=-");
  line("t=0 0");
  line("a=group:BUNDLE 0");
  line("a=extmap-allow-mixed");
  line("a=msid-semantic: WMS");
  line("m=application {} UDP/DTLS/SCTP webrtc-datachannel", wan_port);
  line("c=IN IP4 203.0.113.{}", wan);
  host("udp", 2122260223U, lan_address, lan_port, "", 1);
  host("udp", 2122194687U, vpn_address, port(), "", 2);
  host("udp", 2122129151U, v6_address, port(), "", 3);
  host("tcp", 1518280447U, lan_address, 9, " tcptype active", 1);
  host("tcp", 1518214911U, vpn_address, 9, " tcptype active", 2);
  host("tcp", 1518149375U, v6_address, 9, " tcptype active", 3);
  line(
      "a=candidate:{} 1 udp 1686052607 203.0.113.{} {} typ srflx raddr {} rport {} "
      "generation 0 ufrag {} network-id 1 network-cost 10",
      foundation(), wan, wan_port, lan_address, lan_port, ufrag);
  line(
      "a=candidate:{} 1 udp 41885439 198.51.100.{} {} typ relay raddr 203.0.113.{} rport {} "
      "generation 0 ufrag {} network-id 1 network-cost 10",
      foundation(), 2 + random.below(250), port(), wan, wan_port, ufrag);
  line("a=ice-ufrag:{}", ufrag);
  line("a=ice-pwd:{}", pwd);
  line("a=ice-options:trickle");
  out += "a=fingerprint:sha-256 ";
  constexpr std::string_view kHex = "0123456789ABCDEF";
  for (int i = 0; i < 32; ++i) {
    const unsigned byte = random.below(256);
    if (i > 0) {
      out += ':';
    }
    out += kHex[byte >> 4U];
    out += kHex[byte & 15U];
  }
  line("");
  line("a=setup:{}", offer ? "actpass" : "active");
  line("a=mid:0");
  line("a=sctp-port:5000");
  line("a=max-message-size:262144");
  line("a=end-of-candidates");
  out += '"';
}

// ---- JSON --------------------------------------------------------------------------------------

/// Parses one message at a time into scratch memory: no heap allocation per message. A parsed
/// value lives until the next parse().
class JsonReader {
 public:
  const json::object* parse(std::string_view text) {
    value_ = nullptr;
    resource_.release();
    json::error_code ec;
    value_ = json::parse(text, ec, &resource_);
    return ec ? nullptr : value_.if_object();
  }

 private:
  std::array<unsigned char, std::size_t{64} * 1024> scratch_{};
  json::monotonic_resource resource_{scratch_.data(), scratch_.size()};
  json::value value_;
};

const json::object* child(const json::object* parent, std::string_view key) {
  if (parent == nullptr) {
    return nullptr;
  }
  const auto* value = parent->if_contains(key);
  return value == nullptr ? nullptr : value->if_object();
}

std::string_view text_of(const json::object* parent, std::string_view key) {
  if (parent == nullptr) {
    return {};
  }
  const auto* value = parent->if_contains(key);
  const auto* text = value == nullptr ? nullptr : value->if_string();
  return text == nullptr ? std::string_view{} : std::string_view{*text};
}

/// A uint64 field: protobuf's JSON mapping writes them as strings, "12".
std::uint64_t uint_of(const json::object* parent, std::string_view key) {
  const auto text = text_of(parent, key);
  std::uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

// ---- connections -------------------------------------------------------------------------------

/// One kept-alive HTTP/1.1 connection, one request at a time. The request is written by hand
/// into a reused buffer; the response lands in a Beast parser made afresh for each message.
class HttpConnection {
 public:
  HttpConnection(asio::io_context& io, const Options& options) : stream_(io), options_(options) {}

  template <class Handler>
  void connect(Handler&& handler) {
    stream_.expires_after(kIoTimeout);
    stream_.async_connect(options_.endpoint, [this, handler = std::forward<Handler>(handler)](
                                                 beast::error_code ec) mutable {
      if (!ec) {
        stream_.socket().set_option(tcp::no_delay(true), ec);
      }
      handler(ec);
    });
  }

  /// Sends a request and reads its response; `handler(ec)` then finds it in response().
  template <class Handler>
  void request(std::string_view method, std::string_view target, std::string_view token,
               std::string_view body, Handler&& handler) {
    out_.clear();
    auto out = std::back_inserter(out_);
    fmt::format_to(out, "{} {} HTTP/1.1\r\nHost: {}\r\n", method, target, options_.host);
    if (!token.empty()) {
      fmt::format_to(out, "Authorization: Bearer {}\r\n", token);
    }
    if (!body.empty()) {
      fmt::format_to(out, "Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
    }
    out_ += "\r\n";
    out_ += body;
    stream_.expires_after(kIoTimeout);
    asio::async_write(stream_, asio::buffer(out_),
                      [this, handler = std::forward<Handler>(handler)](beast::error_code ec,
                                                                       std::size_t) mutable {
                        if (ec) {
                          handler(ec);
                          return;
                        }
                        parser_.emplace();
                        parser_->body_limit(kMaxBody);
                        http::async_read(stream_, buffer_, *parser_,
                                         [handler = std::move(handler)](beast::error_code read_ec,
                                                                        std::size_t) mutable {
                                           handler(read_ec);
                                         });
                      });
  }

  unsigned status() const { return parser_->get().result_int(); }
  std::string_view body() const { return parser_->get().body(); }
  bool keep_alive() const { return parser_->get().keep_alive(); }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  beast::tcp_stream stream_;
  const Options& options_;
  beast::flat_buffer buffer_;
  std::string out_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

/// A PeerJS client's WebSocket. Messages are built in outbox() and sent with send(); one may
/// wait while another is being written, which is all a closed loop or a heartbeat needs.
class WsPeer {
 public:
  WsPeer(asio::io_context& io, const Options& options, JsonReader& reader)
      : ws_(io), options_(options), reader_(reader) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    // Client frames are masked; a fast generator is enough for a benchmark.
    ws_.secure_prng(false);
    ws_.text(true);
  }

  /// Each message parsed; the error handler gets a description once the socket fails.
  std::function<void(const json::object&)> on_message;
  std::function<void(std::string_view)> on_error;

  /// Connects as peer `id` and waits for the server's OPEN; `done(error)` is empty on success.
  void open(const std::string& id, const std::string& token,
            std::function<void(std::string_view error)> done) {
    ws_.next_layer().expires_after(kIoTimeout);
    ws_.next_layer().async_connect(
        options_.endpoint, [this, id, token, done = std::move(done)](beast::error_code ec) mutable {
          if (ec) {
            done("connect: " + ec.message());
            return;
          }
          ws_.next_layer().socket().set_option(tcp::no_delay(true), ec);
          ws_.next_layer().expires_never();  // the websocket's own timeouts take over
          format_into(target_, "/peerjs?key=peerjs&id={}&token={}", id, token);
          ws_.async_handshake(options_.host, target_,
                              [this, done = std::move(done)](beast::error_code hs_ec) mutable {
                                if (hs_ec) {
                                  done("handshake: " + hs_ec.message());
                                  return;
                                }
                                await_open(std::move(done));
                              });
        });
  }

  std::string& outbox() { return next_; }

  void send() {
    if (writing_) {
      queued_ = true;
      return;
    }
    std::swap(out_, next_);
    writing_ = true;
    ws_.async_write(asio::buffer(out_), [this](beast::error_code ec, std::size_t) {
      writing_ = false;
      if (ec) {
        fail("write: " + ec.message());
        return;
      }
      if (std::exchange(queued_, false)) {
        send();
      }
    });
  }

 private:
  void await_open(std::function<void(std::string_view)> done) {
    ws_.async_read(in_, [this, done = std::move(done)](beast::error_code ec, std::size_t) {
      if (ec) {
        done("waiting for OPEN: " + ec.message());
        return;
      }
      const auto* message = reader_.parse(beast::buffers_to_string(in_.data()));
      in_.consume(in_.size());
      if (text_of(message, "type") != "OPEN") {
        done("expected OPEN, got " + std::string(text_of(message, "type")));
        return;
      }
      read();
      done({});
    });
  }

  void read() {
    ws_.async_read(in_, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        fail("read: " + ec.message());
        return;
      }
      const auto data = in_.cdata();
      const auto* message = reader_.parse({static_cast<const char*>(data.data()), data.size()});
      if (message == nullptr) {
        fail("a message that is not a JSON object");
        return;
      }
      if (on_message) {
        on_message(*message);
      }
      in_.consume(in_.size());
      read();
    });
  }

  void fail(const std::string& what) {
    if (on_error) {
      on_error(what);
    }
  }

  websocket::stream<beast::tcp_stream> ws_;
  const Options& options_;
  JsonReader& reader_;
  beast::flat_buffer in_;
  std::string target_;
  std::string out_;
  std::string next_;
  bool writing_ = false;
  bool queued_ = false;
};

/// Starts `total` units, at most `width` in progress at once: each unit reports done() (up or
/// failed) before another starts, so the broker never sees a burst of connects.
class Ramp {
 public:
  Ramp(std::size_t total, std::size_t width, std::function<void(std::size_t)> start,
       std::function<void()> finished)
      : total_(total),
        width_(std::max<std::size_t>(width, 1)),
        start_(std::move(start)),
        finished_(std::move(finished)) {}

  void begin() {
    if (total_ == 0) {
      finished_();
      return;
    }
    while (started_ < total_ && started_ < width_) {
      start_(started_++);
    }
  }

  void done() {
    if (++done_ == total_) {
      finished_();
    } else if (started_ < total_) {
      start_(started_++);
    }
  }

 private:
  std::size_t total_;
  std::size_t width_;
  std::function<void(std::size_t)> start_;
  std::function<void()> finished_;
  std::size_t started_ = 0;
  std::size_t done_ = 0;
};

// ---- exchange mode -----------------------------------------------------------------------------

/// What one worker thread counted inside the measurement window.
struct Tally {
  std::uint64_t exchanges = 0;  // answers received
  std::uint64_t offers = 0;     // exchanges begun
  std::uint64_t sent = 0;       // HTTP requests or WebSocket messages, both sides
  std::uint64_t errors = 0;
  std::vector<std::uint32_t> latency_us;
  std::vector<std::string> first_errors;
};

class Worker;

/// A serving side and a connecting side on their own connections, exchanging back to back.
class Pair {
 public:
  Pair(Worker& worker, std::size_t index) : worker_(worker), index_(index) {}
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  virtual ~Pair() = default;

  /// Connects both sides (and registers the serving side); `done(ok)` once ready or failed.
  virtual void setup(std::function<void(bool)> done) = 0;
  /// Starts exchanging; goes on until the worker stops its io_context.
  virtual void start() = 0;

  bool stalled(Clock::time_point now) const {
    return in_flight_ && now - offer_sent_ > kStallLimit;
  }

 protected:
  void offer_sending();
  void answer_received();
  void fail(std::string_view what);

  Worker& worker_;
  const std::size_t index_;
  std::uint64_t offers_ = 0;   // exchanges begun by the connecting side
  std::uint64_t answers_ = 0;  // offers answered by the serving side
  bool dead_ = false;

 private:
  Clock::time_point offer_sent_;
  bool in_flight_ = false;
};

class Worker {
 public:
  explicit Worker(const Options& options) : options_(options) {}

  void add(std::unique_ptr<Pair> pair) { pairs_.push_back(std::move(pair)); }
  asio::io_context& io() { return io_; }
  const Options& options() const { return options_; }
  JsonReader& reader() { return reader_; }
  bool stopping() const { return stopping_; }

  /// Sets up every pair (ramped); `ready(failed)` from this worker's thread.
  void setup(std::function<void(std::size_t failed)> ready) {
    ready_ = std::move(ready);
    const auto width =
        std::max<std::size_t>(options_.ramp / std::max<std::size_t>(options_.threads, 1), 1);
    ramp_.emplace(
        pairs_.size(), width,
        [this](std::size_t i) {
          pairs_[i]->setup([this](bool ok) {
            failed_setup_ += ok ? 0 : 1;
            ramp_->done();
          });
        },
        [this] { ready_(failed_setup_); });
    ramp_->begin();
  }

  /// Runs the exchanges; counts only inside [window_start, window_end).
  void start(Clock::time_point window_start, Clock::time_point window_end) {
    window_start_ = window_start;
    window_end_ = window_end;
    for (auto& pair : pairs_) {
      pair->start();
    }
    end_timer_.expires_at(window_end);
    end_timer_.async_wait([this](beast::error_code) { stop(); });
  }

  void stop() {
    stopping_ = true;
    const auto now = Clock::now();
    for (const auto& pair : pairs_) {
      if (pair->stalled(now)) {
        error("an exchange got no answer within 2 s (stalled)");
      }
    }
    guard_.reset();
    io_.stop();
  }

  void run() { io_.run(); }

  bool counting(Clock::time_point t) const { return t >= window_start_ && t < window_end_; }
  /// Counts a request or message, and the exchanges begun: both by when they are sent, so that
  /// their ratio is not skewed by what is in flight at either end of the window.
  void sent(bool offer) {
    if (counting(Clock::now())) {
      ++tally_.sent;
      tally_.offers += offer ? 1 : 0;
    }
  }
  void completed(Clock::time_point offer_sent) {
    const auto now = Clock::now();
    if (counting(now)) {
      ++tally_.exchanges;
      tally_.latency_us.push_back(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - offer_sent).count()));
    }
  }
  void error(std::string_view what) {
    if (stopping_) {
      return;
    }
    ++tally_.errors;
    if (tally_.first_errors.size() < kErrorsShown) {
      tally_.first_errors.emplace_back(what);
    }
  }
  Tally& tally() { return tally_; }

 private:
  // Declared first, destroyed last: the pairs' sockets deregister from it on destruction.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  asio::steady_timer end_timer_{io_};
  const Options& options_;
  JsonReader reader_;
  std::vector<std::unique_ptr<Pair>> pairs_;
  std::optional<Ramp> ramp_;
  std::function<void(std::size_t)> ready_;
  std::size_t failed_setup_ = 0;
  Clock::time_point window_start_ = Clock::time_point::max();
  Clock::time_point window_end_ = Clock::time_point::max();
  bool stopping_ = false;
  Tally tally_;
};

void Pair::offer_sending() {
  offer_sent_ = Clock::now();
  in_flight_ = true;
  ++offers_;
}

void Pair::answer_received() {
  in_flight_ = false;
  worker_.completed(offer_sent_);
}

void Pair::fail(std::string_view what) {
  // A broken connection ends the pair: the run reports it, and fails when there are many.
  worker_.error(fmt::format("pair {}: {}", index_, what));
  dead_ = true;
  in_flight_ = false;
}

/// A PeerNet server's registration: in the room "bench", one service, the longest default TTL.
std::string server_json(std::string_view id) {
  return fmt::format(
      R"({{"unique_id":"{}","room":"bench","services":[{{"protocol":"{}","version":"1"}}],)"
      R"("ttl_seconds":300}})",
      id, kProtocol);
}

/// PeerNet: the serving side long-polls for knocks and answers each with a PATCH that continues
/// as its next poll; the connecting side knocks with `wait` and gets the answer in the response.
/// Two requests per exchange. Finished knocks are left to linger (knock_linger), as a real client
/// leaves them.
class PeerNetPair final : public Pair {
 public:
  PeerNetPair(Worker& worker, std::size_t index)
      : Pair(worker, index),
        serving_(worker.io(), worker.options()),
        connecting_(worker.io(), worker.options()),
        retry_serving_(worker.io()),
        retry_connecting_(worker.io()),
        id_(fmt::format("bench-{}-{}", worker.options().run_tag, index)) {}

  void setup(std::function<void(bool)> done) override {
    serving_.connect([this, done = std::move(done)](beast::error_code ec) mutable {
      if (ec) {
        fail("connect: " + ec.message());
        done(false);
        return;
      }
      body_ = server_json(id_);
      serving_.request("POST", "/servers", {}, body_,
                       [this, done = std::move(done)](beast::error_code post_ec) mutable {
                         on_registered(post_ec, std::move(done));
                       });
    });
  }

  void start() override {
    if (dead_) {
      return;
    }
    poll();
    knock();
  }

 private:
  void on_registered(beast::error_code ec, std::function<void(bool)> done) {
    if (ec || serving_.status() != 201) {
      fail(ec ? "register: " + ec.message()
              : fmt::format("register: HTTP {} {}", serving_.status(), serving_.body()));
      done(false);
      return;
    }
    token_ = text_of(worker_.reader().parse(serving_.body()), "token");
    connecting_.connect([this, done = std::move(done)](beast::error_code connect_ec) {
      if (connect_ec) {
        fail("connect: " + connect_ec.message());
      }
      done(!connect_ec);
    });
  }

  // -- serving side

  void poll() {
    if (worker_.stopping() || dead_) {
      return;
    }
    format_into(target_, "/servers/{}/knocks?wait={}&since={}", id_, kWaitSeconds, revision_);
    worker_.sent(false);
    serving_.request("GET", target_, token_, {},
                     [this](beast::error_code ec) { on_knocks(ec, false); });
  }

  void answer_next() {
    if (worker_.stopping() || dead_) {
      return;
    }
    if (to_answer_.empty()) {
      poll();
      return;
    }
    last_answered_ = std::move(to_answer_.front());
    to_answer_.pop_front();
    format_into(target_, "/knocks/{}?wait={}&since={}", last_answered_, kWaitSeconds, revision_);
    body_ = R"({"answer":)";
    append_sdp_json(body_, exchange_seed(index_, answers_++), false);
    body_ += '}';
    worker_.sent(false);
    serving_.request("PATCH", target_, token_, body_,
                     [this](beast::error_code ec) { on_knocks(ec, true); });
  }

  /// A poll's answer, or a PATCH's whose `next_poll` is the poll.
  void on_knocks(beast::error_code ec, bool answered) {
    if (ec) {
      fail(std::string(answered ? "answer: " : "poll: ") + ec.message());
      return;
    }
    if (serving_.status() != 200) {
      retry(serving_, answered ? "answer" : "poll", [this] { poll(); });
      return;
    }
    const auto* response = worker_.reader().parse(serving_.body());
    if (answered && text_of(child(response, "knock"), "state") != "KNOCK_STATE_ANSWERED") {
      worker_.error("the answered knock is not KNOCK_STATE_ANSWERED");
    }
    const auto* list = answered ? child(response, "next_poll") : response;
    if (list == nullptr) {
      worker_.error("a knock list that is not a JSON object");
      retry_later(retry_serving_, [this] { poll(); });
      return;
    }
    revision_ = uint_of(list, "revision");
    if (const auto* knocks = list->if_contains("knocks"); knocks != nullptr && knocks->is_array()) {
      for (const auto& knock : knocks->get_array()) {
        // A knock with its offer is new; one without was changed by its knocker (candidates),
        // which this benchmark never does.
        if (knock.is_object() && !text_of(&knock.get_object(), "offer").empty()) {
          const auto id = text_of(&knock.get_object(), "unique_id");
          if (id == last_answered_) {
            worker_.error("a poll listed an answered knock again: `since` went wrong");
            continue;
          }
          to_answer_.emplace_back(id);
        }
      }
    }
    answer_next();
  }

  // -- connecting side

  void knock() {
    if (worker_.stopping() || dead_) {
      return;
    }
    format_into(knock_target_, "/servers/{}/knocks?wait={}", id_, kWaitSeconds);
    format_into(knock_body_, R"({{"protocol":"{}","offer":)", kProtocol);
    append_sdp_json(knock_body_, exchange_seed(index_, offers_), true);
    knock_body_ += '}';
    offer_sending();
    worker_.sent(true);
    connecting_.request("POST", knock_target_, {}, knock_body_,
                        [this](beast::error_code ec) { on_knocked(ec); });
  }

  void on_knocked(beast::error_code ec) {
    if (ec) {
      fail("knock: " + ec.message());
      return;
    }
    if (connecting_.status() != 201) {
      retry(connecting_, "knock", [this] { knock(); });
      return;
    }
    const auto* knocked = child(worker_.reader().parse(connecting_.body()), "knock");
    if (text_of(knocked, "state") != "KNOCK_STATE_ANSWERED" ||
        text_of(knocked, "answer").substr(0, 4) != "v=0\r") {
      worker_.error(fmt::format("knock came back {} without an answer", text_of(knocked, "state")));
    } else {
      answer_received();
    }
    knock();
  }

  /// An HTTP error status: counted, and the step tried again shortly on the same connection.
  template <class Step>
  void retry(const HttpConnection& connection, std::string_view what, Step step) {
    worker_.error(
        fmt::format("{}: HTTP {} {}", what, connection.status(), connection.body().substr(0, 200)));
    if (!connection.keep_alive()) {
      fail("the broker closed the connection");
      return;
    }
    // Each side has its own timer: a retry of one must not cancel the other's.
    retry_later(&connection == &serving_ ? retry_serving_ : retry_connecting_, std::move(step));
  }

  template <class Step>
  static void retry_later(asio::steady_timer& timer, Step step) {
    timer.expires_after(kRetryDelay);
    timer.async_wait([step = std::move(step)](beast::error_code ec) {
      if (!ec) {
        step();
      }
    });
  }

  HttpConnection serving_;
  HttpConnection connecting_;
  asio::steady_timer retry_serving_;
  asio::steady_timer retry_connecting_;
  std::string id_;
  std::string token_;
  std::uint64_t revision_ = 0;
  std::deque<std::string> to_answer_;
  std::string last_answered_;
  std::string target_;
  std::string body_;
  std::string knock_target_;
  std::string knock_body_;
};

/// PeerJS: two WebSocket peers; the connecting one sends OFFER to the serving one, which sends
/// ANSWER back, both relayed by the server. Two messages per exchange. Heartbeats are not sent:
/// a run is far shorter than the server's alive_timeout (90 s).
class PeerJsPair final : public Pair {
 public:
  PeerJsPair(Worker& worker, std::size_t index)
      : Pair(worker, index),
        serving_(worker.io(), worker.options(), worker.reader()),
        connecting_(worker.io(), worker.options(), worker.reader()),
        serving_id_(fmt::format("bs-{}-{}", worker.options().run_tag, index)),
        connecting_id_(fmt::format("bc-{}-{}", worker.options().run_tag, index)) {}

  void setup(std::function<void(bool)> done) override {
    const std::string token = fmt::format("t{}", index_);
    serving_.open(serving_id_, token,
                  [this, token, done = std::move(done)](std::string_view error) mutable {
                    if (!error.empty()) {
                      fail(error);
                      done(false);
                      return;
                    }
                    connecting_.open(connecting_id_, token,
                                     [this, done = std::move(done)](std::string_view open_error) {
                                       if (!open_error.empty()) {
                                         fail(open_error);
                                       }
                                       done(open_error.empty());
                                     });
                  });
  }

  void start() override {
    if (dead_) {
      return;
    }
    serving_.on_message = [this](const json::object& m) { on_offer(m); };
    connecting_.on_message = [this](const json::object& m) { on_answer(m); };
    serving_.on_error = [this](std::string_view what) { fail(what); };
    connecting_.on_error = [this](std::string_view what) { fail(what); };
    offer();
  }

 private:
  /// The data connection's id, as the PeerJS client makes them ("dc_" and random characters).
  static std::string connection_id(std::uint64_t seed) {
    Random random(seed ^ 0x5eedU);
    return "dc_" + random.chars(10, "abcdefghijklmnopqrstuvwxyz0123456789");
  }

  void offer() {
    if (worker_.stopping() || dead_) {
      return;
    }
    const auto seed = exchange_seed(index_, offers_);
    expected_connection_ = connection_id(seed);
    auto& out = connecting_.outbox();
    format_into(out, R"({{"type":"OFFER","dst":"{}","payload":{{"sdp":{{"type":"offer","sdp":)",
                serving_id_);
    append_sdp_json(out, seed, true);
    fmt::format_to(std::back_inserter(out),
                   R"(}},"type":"data","connectionId":"{0}","label":"{0}","reliable":false,)"
                   R"("serialization":"binary","browser":"chrome"}}}})",
                   expected_connection_);
    offer_sending();
    worker_.sent(true);
    connecting_.send();
  }

  void on_offer(const json::object& message) {
    if (text_of(&message, "type") != "OFFER" || text_of(&message, "src") != connecting_id_) {
      worker_.error(fmt::format("serving peer got a {} message", text_of(&message, "type")));
      return;
    }
    const auto* payload = child(&message, "payload");
    const auto seed = exchange_seed(index_, answers_++);
    auto& out = serving_.outbox();
    format_into(out, R"({{"type":"ANSWER","dst":"{}","payload":{{"sdp":{{"type":"answer","sdp":)",
                connecting_id_);
    append_sdp_json(out, seed, false);
    fmt::format_to(std::back_inserter(out),
                   R"(}},"type":"data","connectionId":"{}","browser":"chrome"}}}})",
                   text_of(payload, "connectionId"));
    worker_.sent(false);
    serving_.send();
  }

  void on_answer(const json::object& message) {
    const auto* payload = child(&message, "payload");
    if (text_of(&message, "type") != "ANSWER" ||
        text_of(payload, "connectionId") != expected_connection_ ||
        text_of(child(payload, "sdp"), "sdp").substr(0, 4) != "v=0\r") {
      worker_.error(fmt::format("connecting peer got a {} message", text_of(&message, "type")));
      return;
    }
    answer_received();
    offer();
  }

  WsPeer serving_;
  WsPeer connecting_;
  std::string serving_id_;
  std::string connecting_id_;
  std::string expected_connection_;
};

/// One request on a fresh connection, blocking: for the few set-up steps before the load.
std::pair<unsigned, std::string> request_once(const Options& options, http::verb verb,
                                              std::string_view target, std::string body) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(kIoTimeout);
  stream.connect(options.endpoint);
  http::request<http::string_body> request{verb, target, 11};
  request.set(http::field::host, options.host);
  request.set(http::field::content_type, "application/json");
  request.body() = std::move(body);
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return {response.result_int(), std::move(response.body())};
}

/// Creates the room "bench" that the benchmark's servers join (already there is fine).
bool create_room(const Options& options) {
  const auto [status, body] =
      request_once(options, http::verb::post, "/rooms", R"({"unique_id":"bench"})");
  if (status != 201 && status != 409) {
    fmt::print(stderr, "broker_load: creating room 'bench': HTTP {} {}\n", status, body);
    return false;
  }
  return true;
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

int run_exchange(const Options& options) {
  if (options.threads == 0) {
    return 2;  // refused by the command line already
  }
  if (options.target == Target::kPeerNet && !create_room(options)) {
    return 1;
  }
  std::vector<std::unique_ptr<Worker>> workers;
  for (std::size_t t = 0; t < options.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(options));
  }
  for (std::size_t i = 0; i < options.pairs; ++i) {
    auto& worker = *workers[i % options.threads];
    if (options.target == Target::kPeerNet) {
      worker.add(std::make_unique<PeerNetPair>(worker, i));
    } else {
      worker.add(std::make_unique<PeerJsPair>(worker, i));
    }
  }

  std::vector<std::promise<std::size_t>> ready(options.threads);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < options.threads; ++t) {
    auto* worker = workers[t].get();
    auto* promise = &ready[t];
    asio::post(worker->io(), [worker, promise] {
      worker->setup([promise](std::size_t failed) { promise->set_value(failed); });
    });
    threads.emplace_back([worker] { worker->run(); });
  }
  auto stop_all = [&] {
    for (auto& worker : workers) {
      asio::post(worker->io(), [w = worker.get()] { w->stop(); });
    }
    for (auto& thread : threads) {
      thread.join();
    }
  };

  const auto setup_deadline = Clock::now() + kSetupTimeout;
  std::size_t failed = 0;
  for (auto& promise : ready) {
    auto future = promise.get_future();
    if (future.wait_until(setup_deadline) != std::future_status::ready) {
      fmt::print(stderr, "broker_load: setting up {} pairs took over {} s\n", options.pairs,
                 kSetupTimeout.count());
      stop_all();
      return 1;
    }
    failed += future.get();
  }
  if (failed > 0) {
    fmt::print(stderr, "broker_load: {} of {} pairs failed to set up\n", failed, options.pairs);
    for (auto& worker : workers) {
      for (const auto& e : worker->tally().first_errors) {
        fmt::print(stderr, "  {}\n", e);
      }
    }
    stop_all();
    return 1;
  }

  const auto begin = Clock::now();
  const auto window_start = begin + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(options.warmup));
  const auto window_end = window_start + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options.seconds));
  for (auto& worker : workers) {
    asio::post(worker->io(), [w = worker.get(), window_start, window_end] {
      w->start(window_start, window_end);
    });
  }
  std::this_thread::sleep_until(window_start);
  const double cpu_start = cpu_seconds();
  for (auto& thread : threads) {
    thread.join();
  }
  const double cpu = cpu_seconds() - cpu_start;

  Tally total;
  for (auto& worker : workers) {
    auto& t = worker->tally();
    total.exchanges += t.exchanges;
    total.sent += t.sent;
    total.offers += t.offers;
    total.errors += t.errors;
    total.latency_us.insert(total.latency_us.end(), t.latency_us.begin(), t.latency_us.end());
    for (auto& e : t.first_errors) {
      if (total.first_errors.size() < kErrorsShown) {
        total.first_errors.push_back(std::move(e));
      }
    }
  }
  auto& lat = total.latency_us;
  const auto percentile_ms = [&lat](double p) {
    if (lat.empty()) {
      return 0.0;
    }
    const auto k = static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1));
    std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
    return lat[k] / 1000.0;
  };
  const double p50 = percentile_ms(0.5);
  const double p99 = percentile_ms(0.99);
  const double max = percentile_ms(1.0);
  const auto exchanges = static_cast<double>(total.exchanges);
  fmt::print(
      "{{\"target\":\"{}\",\"pairs\":{},\"seconds\":{},\"exchanges\":{},\"per_second\":{:.0f},"
      "\"p50_ms\":{:.3f},\"p99_ms\":{:.3f},\"max_ms\":{:.3f},\"errors\":{},"
      "\"requests_per_exchange\":{:.3f},\"client_threads\":{},\"client_cpu_seconds\":{:.2f}}}\n",
      target_name(options.target), options.pairs, options.seconds, total.exchanges,
      exchanges / options.seconds, p50, p99, max, total.errors,
      total.offers == 0 ? 0.0 : static_cast<double>(total.sent) / static_cast<double>(total.offers),
      options.threads, cpu);
  std::fflush(stdout);
  for (const auto& e : total.first_errors) {
    fmt::print(stderr, "broker_load: error: {}\n", e);
  }
  if (total.errors > options.max_errors || total.exchanges == 0) {
    fmt::print(stderr, "broker_load: {} errors (more than --max-errors {}) or no exchanges\n",
               total.errors, options.max_errors);
    return 1;
  }
  return 0;
}

// ---- hold mode ---------------------------------------------------------------------------------

/// Holds `count` idle serving sides until stdin closes or SIGTERM/SIGINT. Single-threaded.
class Holder {
 public:
  explicit Holder(const Options& options) : options_(options) {}
  Holder(const Holder&) = delete;
  Holder& operator=(const Holder&) = delete;

  int run() {
    started_ = Clock::now();
    signals_.async_wait([this](beast::error_code, int) { finish(); });
    watch_stdin();
    if (options_.target == Target::kPeerJs) {
      hold_peerjs();
    } else if (options_.poll) {
      hold_polling();
    } else {
      register_only();
    }
    io_.run();
    fmt::print(stderr,
               "{{\"target\":\"{}\",\"count\":{},\"stopped\":true,\"errors\":{},\"lost\":{}}}\n",
               target_name(options_.target), options_.count, errors_, lost_);
    return ready_ && errors_ == 0 && lost_ == 0 ? 0 : 1;
  }

 private:
  /// A PeerNet server: its registration and, with --poll, its standing long-poll.
  struct Server {
    std::unique_ptr<HttpConnection> connection;
    std::string id;
    std::string token;
    std::string target;
    std::uint64_t revision = 0;
  };

  /// A PeerJS peer with its heartbeat.
  struct Peer {
    std::unique_ptr<WsPeer> ws;
    std::unique_ptr<asio::steady_timer> heartbeat;
  };

  void watch_stdin() {
    stdin_.async_read_some(asio::buffer(stdin_bytes_), [this](beast::error_code ec, std::size_t) {
      if (ec) {
        finish();  // EOF: the runner is done with us
        return;
      }
      watch_stdin();
    });
  }

  void error(std::string_view what) {
    if (stopping_) {
      return;
    }
    if (errors_++ < kErrorsShown) {
      fmt::print(stderr, "broker_load: {}\n", what);
    }
  }

  void make_servers() {
    servers_.resize(options_.count);
    for (std::size_t i = 0; i < options_.count; ++i) {
      servers_[i].id = fmt::format("hold-{}-{}", options_.run_tag, i);
    }
  }

  /// Without --poll: a few kept-alive connections register every server, then close.
  void register_only() {
    if (!create_room(options_)) {
      finish();
      return;
    }
    make_servers();
    const auto width = std::min<std::size_t>({options_.ramp, options_.count, 32});
    registrars_.resize(width);
    pending_ = width;
    for (auto& connection : registrars_) {
      connection = std::make_unique<HttpConnection>(io_, options_);
      connection->connect([this, c = connection.get()](beast::error_code ec) {
        if (ec) {
          error("connect: " + ec.message());
          registrar_done(*c);
          return;
        }
        register_next(*c);
      });
    }
  }

  void register_next(HttpConnection& connection) {
    if (next_ == servers_.size() || stopping_) {
      registrar_done(connection);
      return;
    }
    auto& server = servers_[next_++];
    body_ = server_json(server.id);
    connection.request("POST", "/servers", {}, body_, [this, &connection](beast::error_code ec) {
      if (ec || connection.status() != 201) {
        error(ec ? "register: " + ec.message()
                 : fmt::format("register: HTTP {}", connection.status()));
        registrar_done(connection);
        return;
      }
      ++up_;
      register_next(connection);
    });
  }

  void registrar_done(HttpConnection& connection) {
    connection.close();
    if (--pending_ == 0) {
      ready(up_ == options_.count, "");
    }
  }

  /// With --poll: one connection per server, holding its long-poll.
  void hold_polling() {
    if (!create_room(options_)) {
      finish();
      return;
    }
    make_servers();
    ramp_.emplace(
        options_.count, options_.ramp, [this](std::size_t i) { start_server(i); },
        [this] { await_polls(); });
    ramp_->begin();
  }

  void start_server(std::size_t i) {
    auto& server = servers_[i];
    server.connection = std::make_unique<HttpConnection>(io_, options_);
    server.connection->connect([this, i](beast::error_code ec) {
      auto& s = servers_[i];
      if (ec) {
        error("connect: " + ec.message());
        ramp_->done();
        return;
      }
      body_ = server_json(s.id);
      s.connection->request("POST", "/servers", {}, body_, [this, i](beast::error_code post_ec) {
        auto& reg = servers_[i];
        if (post_ec || reg.connection->status() != 201) {
          error(post_ec ? "register: " + post_ec.message()
                        : fmt::format("register: HTTP {}", reg.connection->status()));
          ramp_->done();
          return;
        }
        reg.token = text_of(reader_.parse(reg.connection->body()), "token");
        ++up_;
        poll(i);
        ramp_->done();
      });
    });
  }

  void poll(std::size_t i) {
    auto& server = servers_[i];
    format_into(server.target, "/servers/{}/knocks?wait={}&since={}", server.id, kWaitSeconds,
                server.revision);
    server.connection->request(
        "GET", server.target, server.token, {}, [this, i](beast::error_code ec) {
          auto& s = servers_[i];
          if (ec || s.connection->status() != 200) {
            error(ec ? "poll: " + ec.message()
                     : fmt::format("poll: HTTP {}", s.connection->status()));
            ++lost_;
            return;
          }
          // Empty after `wait`: poll again, as a serving side does.
          s.revision = uint_of(reader_.parse(s.connection->body()), "revision");
          poll(i);
        });
  }

  /// Ready once peernetd counts every long-poll as parked (its /metrics), not merely sent.
  void await_polls() {
    if (up_ != options_.count) {
      ready(false, "");
      return;
    }
    metrics_ = std::make_unique<HttpConnection>(io_, options_);
    metrics_->connect([this](beast::error_code ec) {
      if (ec) {
        error("metrics: " + ec.message());
        ready(false, "");
        return;
      }
      read_metrics();
    });
  }

  void read_metrics() {
    metrics_->request("GET", "/metrics", {}, {}, [this](beast::error_code ec) {
      if (ec || metrics_->status() != 200) {
        error("metrics: " + (ec ? ec.message() : fmt::format("HTTP {}", metrics_->status())));
        ready(false, "");
        return;
      }
      constexpr std::string_view kGauge = "\npeernetd_long_polls ";
      const auto body = metrics_->body();
      std::size_t polls = 0;
      if (const auto at = body.find(kGauge); at != std::string_view::npos) {
        const auto* first = body.data() + at + kGauge.size();
        std::from_chars(first, body.data() + body.size(), polls);
      }
      if (polls >= options_.count) {
        metrics_->close();
        ready(true, fmt::format(",\"long_polls\":{}", polls));
        return;
      }
      if (Clock::now() - started_ > kSetupTimeout) {
        ready(false, fmt::format(",\"long_polls\":{}", polls));
        return;
      }
      retry_.expires_after(std::chrono::milliseconds{50});
      retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) {
          read_metrics();
        }
      });
    });
  }

  void hold_peerjs() {
    peers_.resize(options_.count);
    ramp_.emplace(
        options_.count, options_.ramp, [this](std::size_t i) { start_peer(i); },
        [this] { ready(up_ == options_.count, ""); });
    ramp_->begin();
  }

  void start_peer(std::size_t i) {
    auto& peer = peers_[i];
    peer.ws = std::make_unique<WsPeer>(io_, options_, reader_);
    peer.heartbeat = std::make_unique<asio::steady_timer>(io_);
    peer.ws->on_error = [this](std::string_view what) {
      error(what);
      ++lost_;
    };
    peer.ws->open(fmt::format("hold-{}-{}", options_.run_tag, i), fmt::format("t{}", i),
                  [this, i](std::string_view open_error) {
                    if (!open_error.empty()) {
                      error(open_error);
                    } else {
                      ++up_;
                      // Spread the heartbeats over the interval, as independent clients would.
                      beat(i, std::chrono::milliseconds{random_() % 5000});
                    }
                    ramp_->done();
                  });
  }

  void beat(std::size_t i, Clock::duration after) {
    auto& peer = peers_[i];
    peer.heartbeat->expires_after(after);
    peer.heartbeat->async_wait([this, i](beast::error_code ec) {
      if (ec || stopping_) {
        return;
      }
      peers_[i].ws->outbox() = R"({"type":"HEARTBEAT"})";
      peers_[i].ws->send();
      beat(i, kHeartbeat);
    });
  }

  void ready(bool ok, const std::string& extra) {
    const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    fmt::print(
        "{{\"target\":\"{}\",\"count\":{},\"poll\":{},\"ready\":{},\"up\":{},"
        "\"errors\":{},\"seconds_to_ready\":{:.2f}{}}}\n",
        target_name(options_.target), options_.count, options_.poll, ok, up_, errors_, seconds,
        extra);
    std::fflush(stdout);
    ready_ = ok;
    if (!ok) {
      finish();
    }
  }

  void finish() {
    stopping_ = true;
    io_.stop();
  }

  const Options& options_;
  // Declared first, destroyed last: every socket below deregisters from it on destruction.
  asio::io_context io_{1};
  asio::signal_set signals_{io_, SIGINT, SIGTERM};
  asio::posix::stream_descriptor stdin_{io_, ::dup(STDIN_FILENO)};
  std::array<char, 256> stdin_bytes_{};
  asio::steady_timer retry_{io_};
  JsonReader reader_;
  std::minstd_rand random_{std::random_device{}()};
  Clock::time_point started_;
  std::optional<Ramp> ramp_;
  std::vector<Server> servers_;
  std::vector<std::unique_ptr<HttpConnection>> registrars_;
  std::unique_ptr<HttpConnection> metrics_;
  std::vector<Peer> peers_;
  std::string body_;
  std::size_t next_ = 0;
  std::size_t pending_ = 0;
  std::size_t up_ = 0;
  std::size_t errors_ = 0;
  std::size_t lost_ = 0;
  bool ready_ = false;
  bool stopping_ = false;
};

// ---- command line ------------------------------------------------------------------------------

/// "http://127.0.0.1:8470" (or ws://) into the endpoint and the Host header.
bool resolve_url(Options& options) {
  std::string_view url = options.url;
  if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
    url.remove_prefix(scheme + 3);
  }
  url = url.substr(0, url.find('/'));
  const auto colon = url.rfind(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  options.host = std::string(url);
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::error_code ec;
  const auto results = resolver.resolve(url.substr(0, colon), url.substr(colon + 1), ec);
  if (ec || results.empty()) {
    return false;
  }
  options.endpoint = *results.begin();
  return true;
}

/// Up to 10,000 connections (twice that for pairs): lift the soft limit on open files to the hard.
void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Load generator for signaling brokers: PeerNet (peernetd) and the PeerJS server."};
  app.require_subcommand(1);
  const std::map<std::string, Target> targets{{"peernet", Target::kPeerNet},
                                              {"peerjs", Target::kPeerJs}};
  auto common = [&](CLI::App* command) {
    command->add_option("--target", options.target, "peernet or peerjs")
        ->required()
        ->transform(CLI::CheckedTransformer(targets, CLI::ignore_case));
    command->add_option("--url", options.url, "the broker, e.g. http://127.0.0.1:8470")->required();
    command->add_option("--ramp", options.ramp, "connections being set up at once")
        ->capture_default_str();
  };
  auto* exchange = app.add_subcommand("exchange", "offer/answer exchanges back to back");
  common(exchange);
  exchange->add_option("--pairs", options.pairs, "serving/connecting pairs")->required();
  exchange->add_option("--seconds", options.seconds, "measured seconds")->capture_default_str();
  exchange->add_option("--warmup", options.warmup, "seconds of exchanges not counted")
      ->capture_default_str();
  exchange->add_option("--threads", options.threads, "event-loop threads of the generator")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  exchange->add_option("--max-errors", options.max_errors, "more errors fail the run")
      ->capture_default_str();
  auto* hold = app.add_subcommand("hold", "hold idle serving sides until stdin closes");
  common(hold);
  hold->add_option("--count", options.count, "serving sides")->required();
  hold->add_flag("--poll", options.poll, "PeerNet: keep each server's long-poll open");
  CLI11_PARSE(app, argc, argv);

  raise_file_limit();
  if (!resolve_url(options)) {
    fmt::print(stderr, "broker_load: cannot use --url {}\n", options.url);
    return 2;
  }
  options.run_tag = fmt::format("{:x}", std::random_device{}() & 0xffffffU);
  try {
    if (exchange->parsed()) {
      return run_exchange(options);
    }
    Holder holder(options);
    return holder.run();
  } catch (const std::exception& e) {
    fmt::print(stderr, "broker_load: {}\n", e.what());
    return 1;
  }
}
