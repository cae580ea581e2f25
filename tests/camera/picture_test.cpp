// The pieces of the camera that need no network: the time stamp drawn into frames and read back,
// and the picture size in a VP8 keyframe's header.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "camera/camera_source.h"
#include "camera/gst_util.h"

namespace peernet::camera {
namespace {

TEST(TimeStampTest, WhatIsDrawnIsReadBack) {
  const int width = 640;
  const int height = 480;
  const int stride = 704;  // wider than the picture, as decoders lay rows out
  std::vector<std::uint8_t> luma(static_cast<std::size_t>(stride) * height, 100);
  for (const std::uint64_t millis :
       {std::uint64_t{1}, std::uint64_t{1764511500123}, (std::uint64_t{1} << 48U) - 1}) {
    draw_time_stamp(luma.data(), stride, width, height, millis);
    EXPECT_EQ(read_time_stamp(luma.data(), stride, width, height), millis);
  }
}

TEST(TimeStampTest, AFrameWithoutAStampReadsAsNone) {
  std::vector<std::uint8_t> grey(640 * 480, 128);
  EXPECT_EQ(read_time_stamp(grey.data(), 640, 640, 480), 0U);
  std::vector<std::uint8_t> small(320 * 240, 16);
  draw_time_stamp(small.data(), 320, 320, 240, 12345);  // too narrow: nothing drawn
  EXPECT_EQ(small[0], 16);
  EXPECT_EQ(read_time_stamp(small.data(), 320, 320, 240), 0U);
}

TEST(Vp8HeaderTest, AKeyframeGivesItsSize) {
  // Frame tag (keyframe, version 0, shown), start code, 640 and 480 as 14-bit numbers.
  const std::vector<std::byte> key = {
      std::byte{0x50}, std::byte{0x2d}, std::byte{0x01}, std::byte{0x9d}, std::byte{0x01},
      std::byte{0x2a}, std::byte{0x80}, std::byte{0x02}, std::byte{0xe0}, std::byte{0x01}};
  const auto size = vp8_keyframe_size(key);
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(size->width, 640U);
  EXPECT_EQ(size->height, 480U);
}

TEST(Vp8HeaderTest, DeltaFramesAndOtherBytesGiveNone) {
  std::vector<std::byte> delta = {
      std::byte{0x51}, std::byte{0x2d}, std::byte{0x01}, std::byte{0x9d}, std::byte{0x01},
      std::byte{0x2a}, std::byte{0x80}, std::byte{0x02}, std::byte{0xe0}, std::byte{0x01}};
  EXPECT_FALSE(vp8_keyframe_size(delta).has_value());
  delta[0] = std::byte{0x50};
  delta[4] = std::byte{0x00};  // a broken start code
  EXPECT_FALSE(vp8_keyframe_size(delta).has_value());
  EXPECT_FALSE(vp8_keyframe_size(std::span(delta).first(9)).has_value());
}

}  // namespace
}  // namespace peernet::camera
