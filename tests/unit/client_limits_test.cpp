#include "http/client_limits.h"

#include <chrono>

#include <gtest/gtest.h>

namespace peernet::http {
namespace {

using std::chrono::milliseconds;
using Time = ClientLimits::Time;

const Time kStart{std::chrono::seconds{1000}};

TEST(ClientLimitsTest, BurstThenSteadyRate) {
  ClientLimits limits(0, 10, 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limits.take("192.0.2.1", kStart).count(), 0) << i;
  }
  // Empty: the next token comes in 100 ms at 10 a second.
  EXPECT_EQ(limits.take("192.0.2.1", kStart), milliseconds{100});
  EXPECT_EQ(limits.take("192.0.2.1", kStart + milliseconds{99}).count(), 1);
  EXPECT_EQ(limits.take("192.0.2.1", kStart + milliseconds{100}).count(), 0);
  // Other addresses have their own bucket.
  EXPECT_EQ(limits.take("192.0.2.2", kStart).count(), 0);
}

TEST(ClientLimitsTest, BucketNeverHoldsMoreThanTheBurst) {
  ClientLimits limits(0, 10, 2);
  EXPECT_EQ(limits.take("a", kStart).count(), 0);
  const auto later = kStart + std::chrono::hours{1};
  EXPECT_EQ(limits.take("a", later).count(), 0);
  EXPECT_EQ(limits.take("a", later).count(), 0);
  EXPECT_GT(limits.take("a", later).count(), 0);
}

TEST(ClientLimitsTest, ZeroRateMeansNoLimit) {
  ClientLimits limits(0, 0, 1);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(limits.take("a", kStart).count(), 0);
  }
}

TEST(ClientLimitsTest, ConnectionsPerAddress) {
  ClientLimits limits(2, 0, 1);
  EXPECT_TRUE(limits.connect("a", kStart));
  EXPECT_TRUE(limits.connect("a", kStart));
  EXPECT_FALSE(limits.connect("a", kStart));
  EXPECT_TRUE(limits.connect("b", kStart));
  limits.disconnect("a", kStart);
  EXPECT_TRUE(limits.connect("a", kStart));
}

TEST(ClientLimitsTest, QuietAddressesAreForgottenButNotTheirEmptyBuckets) {
  ClientLimits limits(0, 1, 1);
  ASSERT_TRUE(limits.connect("a", kStart));
  ASSERT_EQ(limits.take("a", kStart).count(), 0);
  limits.disconnect("a", kStart);
  // Its bucket is empty: reconnecting must not hand it a fresh burst.
  EXPECT_EQ(limits.tracked(), 1U);
  EXPECT_GT(limits.take("a", kStart).count(), 0);
  ASSERT_TRUE(limits.connect("b", kStart));
  limits.disconnect("b", kStart);
  EXPECT_EQ(limits.tracked(), 1U) << "a full bucket with no connection is not kept";
}

}  // namespace
}  // namespace peernet::http
