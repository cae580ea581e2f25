// The receiving side's file: nothing under the final name until every byte is checked, and what
// a broken transfer leaves behind is verified and kept for the next attempt.
#include "files/part_file.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "integration/daemon_process.h"

namespace peernet::files {
namespace {

namespace fs = std::filesystem;
constexpr std::uint32_t kChunk = 4;

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

class PartFileTest : public ::testing::Test {
 protected:
  PartFileTest() : folder_(::open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}

  Source source(std::uint64_t size, std::int64_t mtime = 1'600'000'000'123'456'789) const {
    return {"share/clip.bin", size, mtime, kChunk};
  }
  /// Chunk `index` of `content`, written with its own digest.
  static bool write_chunk(PartFile& part, const std::string& content, std::uint64_t index) {
    const std::string piece = content.substr(index * kChunk, kChunk);
    return part.write(index, bytes_of(piece), Sha256::of(bytes_of(piece)));
  }
  std::string read(const std::string& name) const {
    std::ifstream in(dir_.path() / name, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  bool exists(const std::string& name) const { return fs::exists(dir_.path() / name); }

  testing::TempDir dir_;
  UniqueFd folder_;
};

const std::string kContent = "0123456789abcdefghij!";  // 21 bytes: five chunks of 4 and one of 1

TEST_F(PartFileTest, TheFinalNameAppearsOnlyWhenEveryChunkIsInAndChecked) {
  PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
  for (std::uint64_t i = 0; i < 6; ++i) {
    EXPECT_FALSE(exists("clip.bin"));
    ASSERT_TRUE(write_chunk(part, kContent, i));
  }
  ASSERT_TRUE(part.complete());
  const auto digest = part.commit(Sha256::of(bytes_of(kContent)));
  ASSERT_TRUE(digest);
  EXPECT_EQ(*digest, Sha256::of(bytes_of(kContent)));
  EXPECT_EQ(read("clip.bin"), kContent);
  EXPECT_FALSE(exists(".clip.bin.peernet-part"));
  EXPECT_FALSE(exists(".clip.bin.peernet-state"));
  struct stat status {};
  ASSERT_EQ(::stat((dir_.path() / "clip.bin").c_str(), &status), 0);
  EXPECT_EQ(status.st_mtim.tv_sec, 1'600'000'000);
  EXPECT_EQ(status.st_mtim.tv_nsec, 123'456'789);
}

TEST_F(PartFileTest, ChunksOutOfOrderStillMakeTheRightFile) {
  PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
  for (const std::uint64_t i : {5, 2, 0, 4, 1, 3}) {
    ASSERT_TRUE(write_chunk(part, kContent, i));
  }
  ASSERT_TRUE(part.commit(Sha256::of(bytes_of(kContent))));
  EXPECT_EQ(read("clip.bin"), kContent);
}

TEST_F(PartFileTest, ABadChunkIsRefusedAndNotKept) {
  PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
  EXPECT_FALSE(part.write(0, bytes_of("0124"), Sha256::of(bytes_of("0123"))));  // digest mismatch
  EXPECT_FALSE(part.write(0, bytes_of("012"), Sha256::of(bytes_of("012"))));    // wrong length
  EXPECT_FALSE(part.write(6, bytes_of("x"), Sha256::of(bytes_of("x"))));        // past the end
  EXPECT_EQ(part.bytes_present(), 0U);
}

TEST_F(PartFileTest, AWrongWholeFileDigestDiscardsEverything) {
  PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
  for (std::uint64_t i = 0; i < 6; ++i) {
    ASSERT_TRUE(write_chunk(part, kContent, i));
  }
  EXPECT_FALSE(part.commit(Sha256::of(bytes_of("something else"))));
  EXPECT_FALSE(exists("clip.bin"));
  EXPECT_FALSE(exists(".clip.bin.peernet-part"));
  EXPECT_FALSE(exists(".clip.bin.peernet-state"));
}

TEST_F(PartFileTest, ABrokenTransferResumesWithWhatItHad) {
  {
    PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
    ASSERT_TRUE(write_chunk(part, kContent, 0));
    ASSERT_TRUE(write_chunk(part, kContent, 1));
    ASSERT_TRUE(write_chunk(part, kContent, 4));
  }  // the receiver is killed here
  PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
  EXPECT_EQ(part.have(), (Ranges{{0, 2}, {4, 5}}));
  EXPECT_EQ(part.bytes_present(), 12U);
  for (const std::uint64_t i : {2, 3, 5}) {
    ASSERT_TRUE(write_chunk(part, kContent, i));
  }
  ASSERT_TRUE(part.commit(Sha256::of(bytes_of(kContent))));
  EXPECT_EQ(read("clip.bin"), kContent);
}

TEST_F(PartFileTest, ACorruptedChunkOnDiskIsFetchedAgain) {
  {
    PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
    for (std::uint64_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(write_chunk(part, kContent, i));
    }
  }
  {
    std::fstream damage(dir_.path() / ".clip.bin.peernet-part",
                        std::ios::in | std::ios::out | std::ios::binary);
    damage.seekp(5);
    damage.put('X');  // inside chunk 1
  }
  PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
  EXPECT_EQ(part.have(), (Ranges{{0, 1}, {2, 3}}));
}

TEST_F(PartFileTest, AChangedSourceStartsOver) {
  {
    PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
    ASSERT_TRUE(write_chunk(part, kContent, 0));
  }
  {
    PartFile newer(folder_.get(), "clip.bin", source(kContent.size(), 42), false);
    EXPECT_EQ(newer.bytes_present(), 0U);
    ASSERT_TRUE(write_chunk(newer, kContent, 0));
  }
  PartFile other_path(folder_.get(), "clip.bin",
                      {"elsewhere/clip.bin", kContent.size(), 42, kChunk}, false);
  EXPECT_EQ(other_path.bytes_present(), 0U);
}

TEST_F(PartFileTest, OnlyOneTransferReceivesAFileAtATime) {
  PartFile first(folder_.get(), "clip.bin", source(kContent.size()), false);
  ASSERT_TRUE(write_chunk(first, kContent, 0));
  try {
    PartFile second(folder_.get(), "clip.bin", source(kContent.size()), false);
    ADD_FAILURE() << "two transfers wrote the same partial file";
  } catch (const FileError& error) {
    EXPECT_EQ(error.code(), FileErrc::kBusy);
    EXPECT_NE(std::string(error.what()).find("another transfer"), std::string::npos);
  }
  EXPECT_EQ(first.bytes_present(), 4U);
}

TEST_F(PartFileTest, AnExistingFileIsKeptUnlessOverwriteIsAsked) {
  std::ofstream(dir_.path() / "clip.bin") << "precious";
  try {
    PartFile part(folder_.get(), "clip.bin", source(kContent.size()), false);
    ADD_FAILURE() << "an existing file was going to be replaced";
  } catch (const FileError& error) {
    EXPECT_EQ(error.code(), FileErrc::kExists);
    EXPECT_NE(std::string(error.what()).find("--overwrite"), std::string::npos);
  }
  EXPECT_EQ(read("clip.bin"), "precious");

  PartFile part(folder_.get(), "clip.bin", source(1), true);
  ASSERT_TRUE(write_chunk(part, kContent, 0) == false);  // chunk 0 of a 1-byte file is 1 byte
  ASSERT_TRUE(part.write(0, bytes_of("0"), Sha256::of(bytes_of("0"))));
  ASSERT_TRUE(part.commit(Sha256::of(bytes_of("0"))));
  EXPECT_EQ(read("clip.bin"), "0");
}

TEST_F(PartFileTest, AFileThatAppearsMeanwhileIsNotReplaced) {
  PartFile part(folder_.get(), "clip.bin", source(1), false);
  ASSERT_TRUE(part.write(0, bytes_of("0"), Sha256::of(bytes_of("0"))));
  std::ofstream(dir_.path() / "clip.bin") << "arrived first";
  EXPECT_THROW(part.commit(Sha256::of(bytes_of("0"))), FileError);
  EXPECT_EQ(read("clip.bin"), "arrived first");
}

TEST_F(PartFileTest, AnEmptyFileNeedsNoChunks) {
  PartFile part(folder_.get(), "empty", source(0), false);
  EXPECT_TRUE(part.complete());
  ASSERT_TRUE(part.commit(Sha256::of({})));
  EXPECT_TRUE(exists("empty"));
  EXPECT_EQ(read("empty"), "");
}

TEST_F(PartFileTest, AFileLargerThanTheFreeSpaceIsRefusedBeforeAnythingIsWritten) {
  try {
    PartFile part(folder_.get(), "huge", source(std::uint64_t{1} << 60U), false);
    ADD_FAILURE() << "an exabyte fitted";
  } catch (const FileError& error) {
    EXPECT_EQ(error.code(), FileErrc::kNoSpace);
  }
  EXPECT_FALSE(exists(".huge.peernet-part"));
}

TEST_F(PartFileTest, NamesThatAreNotOneComponentAreRefused) {
  for (const std::string name : {"", ".", "..", "a/b"}) {
    EXPECT_THROW(PartFile(folder_.get(), name, source(1), false), FileError) << name;
  }
}

TEST_F(PartFileTest, LinksPlantedUnderThePartialNamesAreNotWrittenThrough) {
  const fs::path outside = dir_.path() / "outside";
  std::ofstream(outside) << "not yours";
  fs::create_symlink(outside, dir_.path() / ".clip.bin.peernet-part");
  fs::create_symlink(outside, dir_.path() / ".clip.bin.peernet-state");
  PartFile part(folder_.get(), "clip.bin", source(1), false);
  ASSERT_TRUE(part.write(0, bytes_of("0"), Sha256::of(bytes_of("0"))));
  ASSERT_TRUE(part.commit(Sha256::of(bytes_of("0"))));
  EXPECT_EQ(read("outside"), "not yours");
  EXPECT_EQ(read("clip.bin"), "0");
}

}  // namespace
}  // namespace peernet::files
