#include <string>

#include <gtest/gtest.h>

#include "codec/codec.h"
#include "core/api_error.h"
#include "peernet.pb.h"

namespace peernet::codec {
namespace {

/// Decodes {"expire_time": <time>} as a Server; the Timestamp on success.
core::Result<google::protobuf::Timestamp> read_time(const std::string& time) {
  Server server;
  if (auto s = decode(R"({"expire_time": ")" + time + R"("})", Encoding::kJson, server); !s) {
    return std::move(s).error();
  }
  return server.expire_time();
}

TEST(TimestampTest, OffsetsAndFractionsAreApplied) {
  auto t = read_time("2024-02-29T12:00:00.5-01:30");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->seconds(), 1709213400);  // 13:30 UTC
  EXPECT_EQ(t->nanos(), 500'000'000);
  auto z = read_time("1970-01-01T00:00:00Z");
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->seconds(), 0);
}

TEST(TimestampTest, TimesThatAnOffsetMovesOutOfRangeAreRefusedNotFatal) {
  // protobuf 3.21's own parser aborts the process on these.
  for (const auto* text : {"0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"}) {
    auto t = read_time(text);
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_EQ(t.error().code, core::ErrorCode::kInvalidValue);
    EXPECT_NE(t.error().message.find("expire_time"), std::string::npos);
  }
}

TEST(TimestampTest, MalformedTimesAreRefused) {
  for (const auto* text : {"2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00Z",
                           "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z",
                           "2024-01-01T00:00:00.1234567891Z", "2024-01-01T24:00:00Z"}) {
    EXPECT_FALSE(read_time(text).ok()) << text;
  }
}

TEST(TimestampTest, BinaryTimesOutOfRangeAreRefused) {
  Server server;
  server.mutable_expire_time()->set_nanos(-1);
  Server decoded;
  EXPECT_FALSE(decode(server.SerializeAsString(), Encoding::kProto, decoded).ok());
  server.mutable_expire_time()->set_nanos(0);
  server.mutable_expire_time()->set_seconds(253'402'300'800);
  EXPECT_FALSE(decode(server.SerializeAsString(), Encoding::kProto, decoded).ok());
}

}  // namespace
}  // namespace peernet::codec
