// libFuzzer target: the whole request path of peernetd, without sockets.
//
// Each input is what one client connection sends: raw bytes, possibly several pipelined
// requests. They go through Beast's request parser (eager, with the daemon's default body and
// header limits), answer(), the long-poll steps a session would take, and render(); every
// response is checked against the invariants below.
//
// One daemon lives across inputs, as a live daemon does across connections: a MemoryRegistry on
// a fake clock that moves 250 ms per input, with expire() every 16 inputs, so TTLs and expiry
// run too and nothing depends on the wall clock. It is restarted every
// kInputsPerLife inputs (rooms never expire, so the room table would otherwise stay full) and
// whenever the setup below cannot be restored.
//
// Reaching authorized paths: tokens come from random_token() and knock ids from random_id(), so
// no input can know them. Instead the target runs a fixed setup through answer() (a room, a
// server with three services in it, a knock on that server), keeps it alive (re-creating what
// an input deleted or what expired), and before parsing replaces these placeholders anywhere in
// the input with the live values:
//   TOKEN_ROOM TOKEN_SERVER TOKEN_KNOCK   the bearer tokens (43 characters)
//   ROOM_ID SERVER_ID KNOCK_ID            the ids (22 characters)
// The seed corpus uses the placeholders; its Content-Length headers, chunk sizes and protobuf
// length prefixes count the substituted lengths, so the requests are well framed after the
// replacement (tests/fuzz/seeds.py writes them).
//
// Invariants, for every response:
//   - the status is in [200, 599] and never 500;
//   - no header value holds CR or LF; the body is as long as Content-Length says (HEAD: empty);
//   - a 405, and only a 405, has an Allow header;
//   - a 4xx or 5xx body is a JSON object with string "code" and "message";
//   - a 2xx body of an RPC decodes, in the Content-Type it names, as that RPC's response message;
//   - a long-poll waits between 0 and max_wait, answers when its wait runs out (the session sends
//     a 500 otherwise), and does not wake at once forever (the session would spin);
//   - once a request is answered, no watch is left in the registry.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/logging.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "codec/codec.h"
#include "core/limits.h"
#include "core/memory_registry.h"
#include "http/api.h"
#include "http/exchange.h"
#include "http/router.h"
#include "http/server.h"
#include "peernet.pb.h"
#include "unit/fake_clock.h"

namespace {

namespace bhttp = boost::beast::http;
namespace core = peernet::core;
namespace http = peernet::http;
using namespace std::chrono_literals;

constexpr std::uint64_t kInputsPerLife = 50'000;
constexpr std::uint64_t kExpireEvery = 16;
constexpr auto kTickPerInput = 250ms;
/// A connection's requests answered per input; bounds the time one input takes.
constexpr int kMaxRequestsPerInput = 64;
/// Wake-ups in a row after which a long-poll counts as spinning.
constexpr int kMaxWakeups = 8;
/// What the seed corpus assumes when it counts the bytes of a substituted placeholder.
constexpr std::size_t kIdLength = 22;
constexpr std::size_t kTokenLength = 43;

/// PEERNET_FUZZ_VERBOSE=1 prints each exchange: for seeing what an input does.
bool verbose = false;

std::string_view view(boost::beast::string_view s) { return {s.data(), s.size()}; }

[[noreturn]] void fail(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "invariant violated: %.*s\n%.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(detail.size()), detail.data());
  __builtin_trap();
}

void expect(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok) {
    fail(what, detail);
  }
}

/// What the setup made, and what the placeholders stand for.
struct Seeds {
  std::string room;
  std::string room_token;
  std::string server;
  std::string server_token;
  std::string knock;
  std::string knock_token;
};

/// The daemon as inputs see it: registry, shared HTTP state and the setup.
struct World {
  World() : registry(clock, core::RegistryLimits{}), shared(registry, http::HttpLimits{}) {}

  peernet::test::FakeClock clock;
  core::MemoryRegistry registry;
  http::ServerShared shared;
  Seeds seeds;
  std::uint64_t inputs = 0;
};

std::unique_ptr<World>& world_slot() {
  static std::unique_ptr<World> world;
  return world;
}

std::string describe(const http::HttpResponse& response) {
  std::string out = std::to_string(response.result_int());
  for (const auto& field : response) {
    out += "\n";
    out += view(field.name_string());
    out += ": ";
    out += view(field.value());
  }
  out += "\n\n";
  out += response.body().substr(0, 2048);
  return out;
}

/// expect() for a response, which it prints (only) when the check fails.
void expect_of(const http::HttpResponse& response, bool ok, std::string_view what) {
  if (!ok) {
    fail(what, describe(response));
  }
}

/// The response message of the RPC a request was routed to; nullptr for healthz and metrics.
std::unique_ptr<google::protobuf::Message> response_message(std::size_t method_index) {
  if (method_index >= http::kMethodCount) {
    return nullptr;
  }
  const auto name = http::method_name(static_cast<http::Method>(method_index));
  const auto* rpc = peernet::CreateRoomRequest::descriptor()
                        ->file()
                        ->FindServiceByName("PeerNetService")
                        ->FindMethodByName(std::string(name));
  if (rpc == nullptr) {
    return nullptr;
  }
  const auto* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(rpc->output_type());
  return std::unique_ptr<google::protobuf::Message>(prototype->New());
}

void check_response(const http::HttpResponse& response, const http::ReplyShape& shape) {
  const unsigned status = response.result_int();
  expect_of(response, status >= 200 && status <= 599, "the status is in [200, 599]");
  expect_of(response, status != 500, "no request is answered with a 500");
  for (const auto& field : response) {
    expect_of(response, view(field.value()).find_first_of("\r\n") == std::string_view::npos,
              "no header value holds CR or LF");
  }
  const bool has_allow = !response[bhttp::field::allow].empty();
  expect_of(response, has_allow == (status == 405),
            "a 405, and only a 405, names the allowed methods");
  const auto& body = response.body();
  if (shape.head) {
    expect_of(response, body.empty(), "a HEAD response has no body");
    return;
  }
  expect_of(response, view(response[bhttp::field::content_length]) == std::to_string(body.size()),
            "Content-Length is the size of the body");

  const auto content_type = view(response[bhttp::field::content_type]);
  if (status >= 400) {
    expect_of(response, content_type == "application/json", "an error is sent as JSON");
    const auto doc = nlohmann::json::parse(body, nullptr, false);
    expect_of(response, !doc.is_discarded() && doc.is_object(), "an error body is a JSON object");
    expect_of(response, doc.contains("code") && doc["code"].is_string(),
              "an error body has a string code");
    expect_of(response, doc.contains("message") && doc["message"].is_string(),
              "an error body has a string message");
    return;
  }
  if (content_type.substr(0, 16) == "application/json") {
    expect_of(response, nlohmann::json::accept(body), "a 2xx JSON body is valid JSON");
  }
  const auto type = peernet::codec::media_type_of(content_type);
  auto message = response_message(shape.method_index);
  if (type && message) {
    const auto decoded = peernet::codec::decode(body, type->encoding, *message);
    if (!decoded.ok()) {
      fail("a 2xx body decodes as the RPC's response message",
           decoded.error().message + "\n" + describe(response));
    }
  }
}

/// Follows a long-poll the way a session does, with time standing still: subscribe; when the
/// waker fired at once, resume as woken (and maybe wait again); otherwise resume as timed out.
http::Reply settle(http::Outcome outcome, const World& world) {
  for (int wakeups = 0;; ++wakeups) {
    if (auto* reply = std::get_if<http::Reply>(&outcome)) {
      return std::move(*reply);
    }
    http::Wait wait = std::get<http::Wait>(std::move(outcome));
    expect(wait.duration > 0ms && wait.duration <= world.shared.limits.max_wait,
           "a long-poll waits more than 0 and at most max_wait");
    expect(wait.subscribe && wait.resume, "a long-poll has subscribe and resume");
    // The waker only records: a session's waker posts to its strand, so it may run late, even
    // after the watch is gone, and it must not touch anything on this stack.
    auto woken = std::make_shared<bool>(false);
    auto watch = wait.subscribe([woken] { *woken = true; });
    if (!watch) {
      return http::Reply::failure(std::move(watch).error());
    }
    { const core::Watch dropped = std::move(watch).value(); }  // sessions drop it before resuming
    if (*woken) {
      expect(wakeups < kMaxWakeups, "a long-poll does not wake at once forever");
      outcome = wait.resume(false);
      continue;
    }
    outcome = wait.resume(true);
    expect(std::holds_alternative<http::Reply>(outcome),
           "a long-poll answers when its wait runs out");
  }
}

/// One parsed request through the daemon; returns the response after checking it. `shape` is the
/// connection's, as in a session.
http::HttpResponse serve_request(World& world, const http::HttpRequest& request,
                                 http::ReplyShape& shape) {
  auto reply = settle(http::answer(request, world.shared, shape), world);
  auto response = http::render(std::move(reply), shape, shape.keep_alive);
  world.shared.metrics.record(shape.method_index, response.result_int());
  if (verbose) {
    std::fprintf(stderr, "%.*s %.*s -> %u %.*s\n", static_cast<int>(request.method_string().size()),
                 request.method_string().data(), static_cast<int>(request.target().size()),
                 request.target().data(), response.result_int(),
                 static_cast<int>(std::min<std::size_t>(response.body().size(), 160)),
                 response.body().data());
  }
  check_response(response, shape);
  return response;
}

/// A read error answered as the session answers it, with a fresh shape: the request it answers
/// was never parsed. The connection closes after it.
void answer_read_error(World& world, const boost::beast::error_code& ec) {
  core::ApiError error = core::ApiError::malformed("malformed HTTP request: " + ec.message());
  if (ec == bhttp::error::body_limit) {
    error = {core::ErrorCode::kPayloadTooLarge, "body: over the limit"};
  } else if (ec == bhttp::error::header_limit) {
    error = {core::ErrorCode::kHeadersTooLarge, "header block: over the limit"};
  }
  http::ReplyShape shape;
  shape.keep_alive = false;
  auto response = http::render(http::Reply::failure(std::move(error)), shape, false);
  world.shared.metrics.record(shape.method_index, response.result_int());
  if (verbose) {
    std::fprintf(stderr, "(read error: %s) -> %u\n", ec.message().c_str(), response.result_int());
  }
  check_response(response, shape);
}

/// Reads requests off `bytes` as one connection would and answers each, until the bytes run
/// out, a request is malformed or one asks to close.
void serve_connection(World& world, std::string_view bytes) {
  const auto& limits = world.shared.limits;
  http::ReplyShape shape;
  for (int served = 0; !bytes.empty() && served < kMaxRequestsPerInput; ++served) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.eager(true);
    parser.body_limit(limits.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    boost::beast::error_code ec;
    while (!parser.is_done()) {
      if (bytes.empty()) {
        return;  // the rest never comes: the session's request timeout closes the connection
      }
      const auto used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
      bytes.remove_prefix(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
        if (used == 0) {
          return;  // a header that is never finished: the same
        }
        continue;
      }
      if (ec) {
        answer_read_error(world, ec);
        return;
      }
      if (used == 0 && !parser.is_done()) {
        return;
      }
    }
    const auto response = serve_request(world, parser.get(), shape);
    if (!response.keep_alive()) {
      return;
    }
  }
}

http::HttpRequest json_request(bhttp::verb verb, std::string target, std::string body,
                               std::string_view token = {}) {
  http::HttpRequest request{verb, std::move(target), 11};
  request.set(bhttp::field::host, "peernet.local");
  request.set(bhttp::field::content_type, "application/json");
  if (!token.empty()) {
    request.set(bhttp::field::authorization, "Bearer " + std::string(token));
  }
  request.body() = std::move(body);
  request.prepare_payload();
  return request;
}

/// A setup request through the daemon: its JSON answer, or a discarded value when it failed.
nlohmann::json setup_call(World& world, http::HttpRequest request) {
  http::ReplyShape shape;
  const auto response = serve_request(world, request, shape);
  if (response.result_int() != 201) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  return nlohmann::json::parse(response.body(), nullptr, false);
}

bool make_room(World& world) {
  const auto created = setup_call(
      world, json_request(bhttp::verb::post, "/rooms", R"({"display_name":"fuzz room"})"));
  if (created.is_discarded()) {
    return false;
  }
  world.seeds.room = created["room"]["unique_id"].get<std::string>();
  world.seeds.room_token = created["token"].get<std::string>();
  return true;
}

bool make_server(World& world) {
  // The three reference protocols, with their extension fields, and the longest TTL.
  const std::string body =
      R"({"room":")" + world.seeds.room + R"(","display_name":"fuzz server","ttl_seconds":300,)" +
      R"("services":[{"protocol":"peernet.camera","version":"1","[peernet.camera.codec]":"h264",)" +
      R"("[peernet.camera.width]":1280,"[peernet.camera.height]":720},)" +
      R"({"protocol":"peernet.sensor","[peernet.sensor.sensors]":[{"id":"t1",)" +
      R"("kind":"SENSOR_KIND_TEMPERATURE","unit":"C"}]},)" +
      R"({"protocol":"peernet.file","[peernet.file.share_name]":"pub"}]})";
  const auto created = setup_call(world, json_request(bhttp::verb::post, "/servers", body));
  if (created.is_discarded()) {
    return false;
  }
  world.seeds.server = created["server"]["unique_id"].get<std::string>();
  world.seeds.server_token = created["token"].get<std::string>();
  return true;
}

bool make_knock(World& world) {
  const auto created = setup_call(
      world, json_request(bhttp::verb::post, "/servers/" + world.seeds.server + "/knocks",
                          R"({"protocol":"peernet.camera","version":"1",)"
                          R"("offer":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",)"
                          R"("ice_candidates":[{"candidate":"candidate:1 1 udp 2122260223 )"
                          R"(192.0.2.1 54400 typ host","sdp_mid":"0","sdpMLineIndex":0}]})"));
  if (created.is_discarded()) {
    return false;
  }
  world.seeds.knock = created["knock"]["unique_id"].get<std::string>();
  world.seeds.knock_token = created["token"].get<std::string>();
  return true;
}

bool room_alive(World& world) {
  return !world.seeds.room.empty() && world.registry.get_room(world.seeds.room).ok();
}

bool server_alive(World& world) {
  return !world.seeds.server.empty() &&
         world.registry.get_server(world.seeds.server, world.seeds.server_token).ok();
}

bool knock_alive(World& world) {
  // A watch tells whether the knock exists without reading it (a read by the knocker changes how
  // long an answered knock lingers). It is dropped at once.
  return !world.seeds.knock.empty() &&
         world.registry.watch_knock(world.seeds.knock, world.seeds.knock_token, 0, [] {}).ok();
}

/// Brings back what the setup made and inputs deleted or let expire. False when it cannot.
bool restore_setup(World& world) {
  if (!room_alive(world) && !make_room(world)) {
    return false;
  }
  if (!server_alive(world) && !make_server(world)) {
    return false;
  }
  if (knock_alive(world) || make_knock(world)) {
    return true;
  }
  // The server no longer takes knocks (its camera service was deleted, or it has too many
  // unanswered ones): start over with a new one.
  return make_server(world) && make_knock(world);
}

World& live_world() {
  auto& slot = world_slot();
  if (slot && slot->inputs >= kInputsPerLife) {
    slot.reset();
  }
  if (slot) {
    slot->clock.advance(kTickPerInput);
    if (++slot->inputs % kExpireEvery == 0) {
      slot->registry.expire(slot->clock.now());
    }
    if (restore_setup(*slot)) {
      return *slot;
    }
    slot.reset();  // full of what earlier inputs made: restart the daemon
  }
  slot = std::make_unique<World>();
  expect(restore_setup(*slot), "a fresh world takes the setup requests");
  static bool lengths_checked = false;
  if (!lengths_checked) {
    lengths_checked = true;
    const auto& s = slot->seeds;
    if (s.room.size() != kIdLength || s.knock.size() != kIdLength ||
        s.server_token.size() != kTokenLength || s.knock_token.size() != kTokenLength) {
      std::fprintf(stderr,
                   "request_fuzz: ids or tokens changed length; the seed corpus counts %zu and "
                   "%zu bytes for them, so regenerate it (tests/fuzz/seeds.py)\n",
                   kIdLength, kTokenLength);
    }
  }
  return *slot;
}

/// The input with every placeholder replaced by the value it stands for.
std::string substitute(std::string_view input, const Seeds& seeds) {
  const std::array<std::pair<std::string_view, std::string_view>, 6> table = {{
      {"TOKEN_ROOM", seeds.room_token},
      {"TOKEN_SERVER", seeds.server_token},
      {"TOKEN_KNOCK", seeds.knock_token},
      {"ROOM_ID", seeds.room},
      {"SERVER_ID", seeds.server},
      {"KNOCK_ID", seeds.knock},
  }};
  std::string out;
  out.reserve(input.size() + 64);
  std::size_t i = 0;
  while (i < input.size()) {
    bool replaced = false;
    for (const auto& [placeholder, value] : table) {
      if (input.substr(i, placeholder.size()) == placeholder) {
        out += value;
        i += placeholder.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) {
      out.push_back(input[i++]);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::off);
  const char* flag = std::getenv("PEERNET_FUZZ_VERBOSE");
  verbose = flag != nullptr && *flag != '\0' && *flag != '0';
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& world = live_world();
  const std::string input = substitute({reinterpret_cast<const char*>(data), size}, world.seeds);
  serve_connection(world, input);
  expect(world.registry.stats().watches == 0, "no watch outlives the request that made it");
  return 0;
}
