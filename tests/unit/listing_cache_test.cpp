#include "http/listing_cache.h"

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "codec/codec.h"
#include "core/memory_registry.h"
#include "http/api.h"
#include "http/router.h"
#include "peernet.pb.h"
#include "unit/fake_clock.h"

namespace peernet::http {
namespace {

using std::chrono::seconds;

/// Room listings through the API, as a session gets them, while the registry changes under it.
/// The cache must never show a room as it was before a change.
class ListingTest : public ::testing::Test {
 protected:
  Reply call(std::string_view verb, std::string_view target, std::string_view body = {},
             std::string_view token = {}) {
    auto routed = route(verb, target);
    if (!routed) {
      throw std::runtime_error("no route: " + routed.error().message);
    }
    auto outcome =
        handle(Call{std::move(routed).value(), body, codec::Encoding::kJson, token}, context_);
    if (!std::holds_alternative<Reply>(outcome)) {
      throw std::runtime_error("the call waits instead of answering");
    }
    return std::get<Reply>(std::move(outcome));
  }

  std::string register_server(std::string_view json, std::string_view token = {}) {
    const auto r = call("POST", "/servers", json, token);
    if (r.error) {
      throw std::runtime_error(r.error->message);
    }
    return dynamic_cast<const CreateServerResponse&>(*r.message).token();
  }

  /// The listing's JSON as a client would receive it.
  std::string listing(std::string_view target = "/rooms/home/servers") {
    const auto r = call("GET", target);
    if (r.error) {
      return "error: " + r.error->message;
    }
    std::string fresh = codec::encode(*r.message, codec::Encoding::kJson);
    if (r.encoded) {
      // What the cache sends must be what encoding the message afresh gives, both ways.
      EXPECT_EQ(r.encoded->json, fresh);
      EXPECT_EQ(r.encoded->binary, codec::encode(*r.message, codec::Encoding::kProto));
    }
    return fresh;
  }

  test::FakeClock clock_;
  core::MemoryRegistry registry_{clock_, core::RegistryLimits{}};
  Context context_{registry_, seconds{30}, {}};
};

TEST_F(ListingTest, RepeatedListingsShareOneEncoding) {
  call("POST", "/rooms", R"({"unique_id": "home"})");
  register_server(R"({"unique_id": "cam", "room": "home"})");
  const auto first = call("GET", "/rooms/home/servers");
  const auto second = call("GET", "/rooms/home/servers");
  ASSERT_NE(first.encoded, nullptr);
  EXPECT_EQ(first.encoded, second.encoded) << "the second listing was built again";
}

TEST_F(ListingTest, EveryChangeShowsInTheNextListing) {
  const auto room_token = dynamic_cast<const CreateRoomResponse&>(
                              *call("POST", "/rooms", R"({"unique_id": "home"})").message)
                              .token();
  EXPECT_EQ(listing(), "{}");

  const auto cam = register_server(
      R"({"unique_id": "cam", "room": "home", "services": [{"protocol": "p.camera"}]})");
  EXPECT_EQ(listing(), R"({"servers":[{"unique_id":"cam","services":[{"protocol":"p.camera"}]}]})");

  // Re-registered under a new name with other services.
  register_server(R"({"unique_id": "cam", "room": "home", "display_name": "Porch",
                      "services": [{"protocol": "p.file"}]})",
                  cam);
  EXPECT_EQ(listing(), R"({"servers":[{"unique_id":"cam","display_name":"Porch",)"
                       R"("services":[{"protocol":"p.file"}]}]})");

  ASSERT_FALSE(call("PUT", "/servers/cam/services/p.sensor", R"({"version": "2"})", cam).error);
  EXPECT_NE(listing().find(R"({"protocol":"p.sensor","version":"2"})"), std::string::npos);
  ASSERT_FALSE(call("PUT", "/servers/cam/services/p.sensor", R"({"version": "3"})", cam).error);
  EXPECT_NE(listing().find(R"("version":"3")"), std::string::npos) << "a replaced service";
  ASSERT_FALSE(call("DELETE", "/servers/cam/services/p.sensor", {}, cam).error);
  EXPECT_EQ(listing().find("p.sensor"), std::string::npos);
  ASSERT_FALSE(call("POST", "/servers/cam/services", R"({"protocol": "p.extra"})", cam).error);
  EXPECT_NE(listing().find("p.extra"), std::string::npos);

  ASSERT_FALSE(call("DELETE", "/servers/cam", {}, cam).error);
  EXPECT_EQ(listing(), "{}");

  // A server that stops polling expires.
  register_server(R"({"unique_id": "cam", "room": "home", "ttl_seconds": 5})");
  EXPECT_NE(listing().find("cam"), std::string::npos);
  clock_.advance(seconds{6});
  registry_.expire(clock_.now());
  EXPECT_EQ(listing(), "{}");

  ASSERT_FALSE(call("DELETE", "/rooms/home", {}, room_token).error);
  EXPECT_EQ(listing(), "error: room 'home' not found");
  call("POST", "/rooms", R"({"unique_id": "home"})");
  EXPECT_EQ(listing(), "{}");
}

TEST_F(ListingTest, FiltersAreKeptApart) {
  call("POST", "/rooms", R"({"unique_id": "home"})");
  register_server(R"({"unique_id": "cam", "room": "home",
                      "services": [{"protocol": "p.camera", "version": "1"}]})");
  register_server(R"({"unique_id": "box", "room": "home",
                      "services": [{"protocol": "p.file", "version": "1"}]})");
  const auto all = listing();
  EXPECT_NE(all.find("cam"), std::string::npos);
  EXPECT_NE(all.find("box"), std::string::npos);
  const auto cameras = listing("/rooms/home/servers?protocol=p.camera");
  EXPECT_NE(cameras.find("cam"), std::string::npos);
  EXPECT_EQ(cameras.find("box"), std::string::npos);
  EXPECT_EQ(listing("/rooms/home/servers?protocol=p.camera&version=2"), "{}");
  EXPECT_EQ(listing(), all) << "a filtered listing replaced the whole one";
}

TEST_F(ListingTest, OnlyWellFormedRequestsAreKept) {
  call("POST", "/rooms", R"({"unique_id": "home"})");
  // A filter that is no id is answered (nothing offers it) but not kept, so it can neither fill
  // the cache nor stand in for another request's key.
  EXPECT_EQ(listing("/rooms/home/servers?protocol=x&version=%00"), "{}");
  EXPECT_EQ(context_.listings.entries(), 0U);
  EXPECT_EQ(listing("/rooms/home%00x/servers").substr(0, 7), "error: ");
  EXPECT_EQ(listing("/rooms/home/servers?protocol=p.camera"), "{}");
  EXPECT_EQ(context_.listings.entries(), 1U);
}

TEST(ListingCacheTest, AnOlderListingNeverReplacesANewerOne) {
  ListingCache cache;
  ListServersRequest request;
  request.set_room("home");
  ListServersResponse newer;
  newer.add_servers()->set_unique_id("cam");
  const auto kept = cache.keep(request, 5, newer);
  cache.keep(request, 4, ListServersResponse{});  // a slow request that listed before a change
  EXPECT_EQ(cache.find(request, 5).encoded, kept.encoded);
  EXPECT_EQ(cache.find(request, 4).encoded, nullptr);
}

TEST(ListingCacheTest, StaysWithinItsEntries) {
  ListingCache cache;
  for (std::size_t i = 0; i < ListingCache::kMaxEntries + 100; ++i) {
    ListServersRequest request;
    request.set_room("home");
    request.set_protocol("p" + std::to_string(i));
    cache.keep(request, 1, ListServersResponse{});
    ASSERT_LE(cache.entries(), ListingCache::kMaxEntries);
  }
}

TEST(ListingCacheTest, StaysWithinItsBytes) {
  ListingCache cache(4096);
  ListServersResponse listing;
  auto* server = listing.add_servers();
  server->set_unique_id("cam");
  server->set_display_name(std::string(300, 'x'));
  for (std::uint64_t i = 0; i < 100; ++i) {
    ListServersRequest request;
    request.set_room("room-" + std::to_string(i));
    const auto kept = cache.keep(request, 7, listing);
    ASSERT_NE(kept.encoded, nullptr);
    EXPECT_LE(cache.bytes(), 4096U);
    EXPECT_EQ(cache.find(request, 7).encoded, kept.encoded) << "the newest entry is kept";
    EXPECT_EQ(cache.find(request, 8).encoded, nullptr) << "another version is not this one";
  }

  // A listing larger than the whole cache is sent but not kept.
  server->set_display_name(std::string(5000, 'y'));
  ListServersRequest big;
  big.set_room("big");
  EXPECT_NE(cache.keep(big, 7, listing).encoded, nullptr);
  EXPECT_EQ(cache.find(big, 7).encoded, nullptr);
  EXPECT_LE(cache.bytes(), 4096U);
}

}  // namespace
}  // namespace peernet::http
