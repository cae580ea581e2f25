// The file protocol's messages: what one side encodes the other decodes unchanged, and what a
// hostile peer sends is refused with a reason rather than trusted.
#include "files/wire.h"

#include <gtest/gtest.h>

namespace peernet::files {
namespace {

template <class T>
T round_trip(const T& message) {
  const Message decoded = decode(encode(message));
  const T* typed = std::get_if<T>(&decoded);
  if (typed == nullptr) {
    ADD_FAILURE() << "decoded as another message: " << encode(message);
    return {};
  }
  return *typed;
}

TEST(WireTest, RequestsSurviveTheTrip) {
  const auto list = round_trip(ListRequest{7, "cam1/2026", true});
  EXPECT_EQ(list.id, 7U);
  EXPECT_EQ(list.path, "cam1/2026");
  EXPECT_TRUE(list.recursive);

  const auto get = round_trip(GetRequest{8, "a.mkv", Resume{1000, -5, 4096, {{0, 3}, {5, 9}}}});
  ASSERT_TRUE(get.resume);
  EXPECT_EQ(get.resume->size, 1000U);
  EXPECT_EQ(get.resume->mtime, -5);
  EXPECT_EQ(get.resume->chunk, 4096U);
  EXPECT_EQ(get.resume->have, (Ranges{{0, 3}, {5, 9}}));
  EXPECT_FALSE(round_trip(GetRequest{9, "b", std::nullopt}).resume);

  const auto put =
      round_trip(PutRequest{10, "in/c.bin", 1U << 31U, 1'700'000'000'000'000'000, true});
  EXPECT_EQ(put.size, 1U << 31U);
  EXPECT_EQ(put.mtime, 1'700'000'000'000'000'000);
  EXPECT_TRUE(put.overwrite);
}

TEST(WireTest, RepliesSurviveTheTrip) {
  Digest digest{};
  digest[0] = std::byte{0xab};
  digest[31] = std::byte{0x01};
  EXPECT_EQ(round_trip(EndOfFile{3, digest}).sha256, digest);

  const auto header = round_trip(FileHeader{4, 200, 9, kChunkBytes, true, {{0, 1}}});
  EXPECT_EQ(header.size, 200U);
  EXPECT_TRUE(header.restart);
  EXPECT_EQ(header.sending, (Ranges{{0, 1}}));

  const auto failure = round_trip(Failure{5, "not-found", "\"x\": no such file"});
  EXPECT_EQ(failure.code, "not-found");
  EXPECT_EQ(failure.message, "\"x\": no such file");

  const auto ready = round_trip(Ready{6, kChunkBytes, {{2, 4}}});
  EXPECT_EQ(ready.have, (Ranges{{2, 4}}));
}

TEST(WireTest, LongListingsAreCutIntoPartsThatFitAChannel) {
  std::vector<Entry> entries;
  for (int i = 0; i < 5000; ++i) {
    entries.push_back(
        {"footage/cam" + std::to_string(i % 7) + "/segment-" + std::to_string(i) + ".mkv", false,
         static_cast<std::uint64_t>(i) * 1000, i});
  }
  const auto parts = encode_listing(1, entries);
  ASSERT_GT(parts.size(), 1U);
  std::vector<Entry> seen;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_LE(parts[i].size(), Channel::kMaxMessageBytes);
    const auto listing = std::get<Listing>(decode(parts[i]));
    EXPECT_EQ(listing.more, i + 1 < parts.size());
    seen.insert(seen.end(), listing.entries.begin(), listing.entries.end());
  }
  EXPECT_EQ(seen, entries);
  EXPECT_FALSE(std::get<Listing>(decode(encode_listing(2, {}).front())).more);
}

TEST(WireTest, HostileMessagesAreRefusedWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not a JSON message"},
      {"[1,2]", "must be a JSON object"},
      {R"({"op":"list"})", "missing field \"id\""},
      {R"({"op":"list","id":-1,"path":""})", "\"id\" must be a non-negative integer"},
      {R"({"op":"list","id":1,"path":5})", "\"path\" must be a string"},
      {R"({"op":"rm","id":1})", "unknown op \"rm\""},
      {R"({"op":"get","id":1,"path":"a","resume":{"size":1,"mtime":0,"chunk":0,"have":[]}})",
       "\"chunk\" must be between 1 and"},
      {R"({"op":"get","id":1,"path":"a","resume":{"size":1,"mtime":0,"chunk":10,"have":[[3,1]]}})",
       "sorted, disjoint"},
      {R"({"op":"get","id":1,"path":"a","resume":{"size":1,"mtime":0,"chunk":10,"have":[[0,4],[2,6]]}})",
       "sorted, disjoint"},
      {R"({"op":"end","id":1,"sha256":"zz"})", "64 hexadecimal digits"},
      {R"({"op":"put","id":1,"path":"a","size":1,"mtime":1.5})", "\"mtime\" must be an integer"},
      {R"({"op":"list","id":1,"path":")" + std::string(5000, 'a') + "\"}", "longer than 4096"},
  };
  for (const auto& [text, reason] : cases) {
    try {
      decode(text);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const WireError& error) {
      EXPECT_NE(std::string(error.what()).find(reason), std::string::npos)
          << text << " -> " << error.what();
    }
  }
}

TEST(WireTest, ChunkHeadersCarryIndexAndDigest) {
  std::vector<std::byte> message(kChunkHeaderBytes + 3);
  Digest digest{};
  digest.fill(std::byte{0x5a});
  encode_chunk_header(message, 0x0102030405060708ULL, digest);
  message[kChunkHeaderBytes] = std::byte{'x'};
  const auto chunk = decode_chunk(message);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->index, 0x0102030405060708ULL);
  EXPECT_EQ(chunk->digest, digest);
  EXPECT_EQ(chunk->data.size(), 3U);

  EXPECT_FALSE(decode_chunk(std::span(message).first(kChunkHeaderBytes)));
  const std::vector<std::byte> too_long(Channel::kMaxMessageBytes + 1);
  EXPECT_FALSE(decode_chunk(too_long));
  EXPECT_EQ(kChunkHeaderBytes + kChunkBytes, Channel::kMaxMessageBytes);
}

TEST(WireTest, RangeArithmetic) {
  EXPECT_EQ(chunk_count(0, 10), 0U);
  EXPECT_EQ(chunk_count(1, 10), 1U);
  EXPECT_EQ(chunk_count(10, 10), 1U);
  EXPECT_EQ(chunk_count(11, 10), 2U);
  EXPECT_EQ(complement({}, 5), (Ranges{{0, 5}}));
  EXPECT_EQ(complement({{0, 5}}, 5), Ranges{});
  EXPECT_EQ(complement({{1, 2}, {3, 4}}, 6), (Ranges{{0, 1}, {2, 3}, {4, 6}}));
  EXPECT_EQ(complement({{2, 9}}, 4), (Ranges{{0, 2}}));
  EXPECT_EQ(covered({{1, 2}, {3, 7}}), 5U);
  EXPECT_TRUE(contains({{1, 2}, {3, 7}}, 6));
  EXPECT_FALSE(contains({{1, 2}, {3, 7}}, 2));
  EXPECT_FALSE(contains({{1, 2}, {3, 7}}, 0));

  Ranges fragmented;
  for (std::uint64_t i = 0; i < 3 * kMaxRanges; ++i) {
    fragmented.emplace_back(2 * i, 2 * i + 1);
  }
  const Ranges clipped = clip_have(fragmented);
  EXPECT_LT(clipped.size(), kMaxRanges);
  EXPECT_LE(complement(clipped, 6 * kMaxRanges).size(), kMaxRanges);
}

}  // namespace
}  // namespace peernet::files
