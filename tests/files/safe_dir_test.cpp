#include "files/safe_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace peernet::files {

namespace detail {
// Defined in safe_dir.cpp: makes every open take the walk that kernels without openat2 get.
void force_no_openat2_for_testing(bool force);
}  // namespace detail

// Failures print the wire name instead of a number. GoogleTest looks this name up by ADL.
void PrintTo(  // NOLINT(readability-identifier-naming)
    FileErrc code, std::ostream* os) {
  *os << to_string(code);
}

namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

// The code of the FileError that `fn` throws, or nothing when it does not throw one.
template <typename Fn>
std::optional<FileErrc> code_of(Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const FileError& error) {
    return error.code();
  }
  return std::nullopt;
}

// The sentence a person reads, or "" when `fn` does not throw a FileError.
template <typename Fn>
std::string message_of(Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const FileError& error) {
    return error.what();
  }
  return "";
}

std::string read_all(const UniqueFd& fd) {
  std::string out;
  char buffer[256];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n <= 0) {
      return out;
    }
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

std::vector<std::string> paths_of(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  out.reserve(entries.size());
  for (const Entry& entry : entries) {
    out.push_back(entry.path);
  }
  return out;
}

const Entry* find(const std::vector<Entry>& entries, std::string_view path) {
  for (const Entry& entry : entries) {
    if (entry.path == path) {
      return &entry;
    }
  }
  return nullptr;
}

// A fresh folder per test: `root_` is the share, and `outside_` sits next to it so that a link
// can point out of the share through "..".
class SafeDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = "/tmp/peernet-safe-dir-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    root_ = base_ / "share";
    outside_ = base_ / "outside";
    fs::create_directory(root_);
    fs::create_directory(outside_);
    write(outside_ / "secret.txt", "outside secret");
  }

  void TearDown() override {
    detail::force_no_openat2_for_testing(false);
    std::error_code ignored;
    fs::remove_all(base_, ignored);
  }

  static void write(const fs::path& path, std::string_view content) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  fs::path base_;
  fs::path root_;
  fs::path outside_;
};

// ---- check_relative and the small functions ----

TEST(CheckRelativeTest, NormalizesSeparatorsAndDots) {
  EXPECT_EQ(check_relative("a//./b/"), "a/b");
  EXPECT_EQ(check_relative(""), "");
  EXPECT_EQ(check_relative("."), "");
  EXPECT_EQ(check_relative("./"), "");
  EXPECT_EQ(check_relative("footage/a.mkv"), "footage/a.mkv");
  EXPECT_EQ(check_relative(".hidden/...x"), ".hidden/...x");
  EXPECT_EQ(check_relative("caf\xc3\xa9.txt"), "caf\xc3\xa9.txt");
}

TEST(CheckRelativeTest, RefusesAbsolutePaths) {
  EXPECT_EQ(code_of([] { check_relative("/etc/passwd"); }), FileErrc::kBadPath);
  EXPECT_EQ(message_of([] { check_relative("/etc/passwd"); }),
            R"("/etc/passwd": absolute paths are not allowed)");
}

TEST(CheckRelativeTest, RefusesDotDotAnywhere) {
  for (const char* path : {"..", "../etc/passwd", "a/../b", "a/..", "a/b/../../..", "./.."}) {
    EXPECT_EQ(code_of([path] { check_relative(path); }), FileErrc::kBadPath) << path;
  }
  EXPECT_EQ(message_of([] { check_relative("../etc/passwd"); }),
            R"("../etc/passwd": ".." is not allowed in a path)");
}

TEST(CheckRelativeTest, RefusesNulAndControlCharacters) {
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(code_of([&] { check_relative(with_nul); }), FileErrc::kBadPath);
  for (const char* path : {"a\nb", "a\tb", "\x1b[31mred", "a\x7f", "a/\rb"}) {
    EXPECT_EQ(code_of([path] { check_relative(path); }), FileErrc::kBadPath) << path;
  }
}

TEST(CheckRelativeTest, MessageEscapesControlCharactersSoLogsStayOneLine) {
  const std::string message = message_of([] { check_relative("evil\nINFO forged"); });
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find(R"(evil\x0aINFO forged)"), std::string::npos) << message;
}

TEST(CheckRelativeTest, RefusesNamesLongerThan255Bytes) {
  const std::string longest(255, 'x');
  EXPECT_EQ(check_relative("dir/" + longest), "dir/" + longest);
  EXPECT_EQ(code_of([&] { check_relative("dir/" + longest + "x"); }), FileErrc::kBadPath);
}

TEST(CheckRelativeTest, RefusesPathsLongerThan4096Bytes) {
  std::string path;
  while (path.size() < 4096) {
    path += path.empty() ? "a" : "/a";
  }
  path.resize(4096);  // ends on "a" or "/": either way valid
  EXPECT_NO_THROW(check_relative(path));
  EXPECT_EQ(code_of([&] { check_relative(path + "b"); }), FileErrc::kBadPath);
  // A long message would be mostly noise: it is cut short.
  EXPECT_LT(message_of([&] { check_relative(path + "b"); }).size(), 400U);
}

TEST(FileErrcTest, WireNames) {
  EXPECT_EQ(to_string(FileErrc::kBadPath), "bad-path");
  EXPECT_EQ(to_string(FileErrc::kNotFound), "not-found");
  EXPECT_EQ(to_string(FileErrc::kNotAFile), "not-a-file");
  EXPECT_EQ(to_string(FileErrc::kLinkOutside), "link-outside");
  EXPECT_EQ(to_string(FileErrc::kExists), "exists");
  EXPECT_EQ(to_string(FileErrc::kNoSpace), "no-space");
  EXPECT_EQ(to_string(FileErrc::kPermission), "permission");
  EXPECT_EQ(to_string(FileErrc::kTooMany), "too-many");
  EXPECT_EQ(to_string(FileErrc::kIo), "io");
}

TEST(IsPartialNameTest, RecognisesOnlyPeerNetsOwnUnfinishedFiles) {
  EXPECT_TRUE(is_partial_name(".movie.mkv.peernet-part"));
  EXPECT_TRUE(is_partial_name(".movie.mkv.peernet-state"));
  EXPECT_FALSE(is_partial_name("movie.mkv.peernet-part"));  // not hidden: a user's own file
  EXPECT_FALSE(is_partial_name(".movie.mkv"));
  EXPECT_FALSE(is_partial_name(".movie.peernet-part.mkv"));
  EXPECT_FALSE(is_partial_name(""));
}

// ---- SafeDir construction ----

TEST_F(SafeDirTest, RefusesAMissingRoot) {
  EXPECT_EQ(code_of([&] { SafeDir dir(base_ / "nope"); }), FileErrc::kNotFound);
}

TEST_F(SafeDirTest, RefusesARootThatIsAFile) {
  EXPECT_EQ(code_of([&] { SafeDir dir(outside_ / "secret.txt"); }), FileErrc::kNotAFile);
}

// ---- open_file, through openat2 and through the walk ----

enum class Resolver { kOpenat2, kWalk };

void PrintTo(  // NOLINT(readability-identifier-naming): GoogleTest's name
    Resolver resolver, std::ostream* os) {
  *os << (resolver == Resolver::kOpenat2 ? "openat2" : "walk without openat2");
}

// The cases that must come out the same whether or not the kernel has openat2.
class SafeDirOpenTest : public SafeDirTest, public ::testing::WithParamInterface<Resolver> {
 protected:
  void SetUp() override {
    SafeDirTest::SetUp();
    detail::force_no_openat2_for_testing(GetParam() == Resolver::kWalk);
  }
};

TEST_P(SafeDirOpenTest, ReadsANormalFile) {
  write(root_ / "footage" / "a.mkv", "frames");
  const SafeDir dir(root_);
  const UniqueFd fd = dir.open_file("footage//./a.mkv");
  ASSERT_TRUE(fd);
  EXPECT_EQ(read_all(fd), "frames");
  // Callers get ordinary blocking reads, not EAGAIN.
  EXPECT_EQ(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
}

TEST_P(SafeDirOpenTest, MissingFileIsNotFound) {
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("footage/a.mkv"); }), FileErrc::kNotFound);
  EXPECT_EQ(message_of([&] { dir.open_file("footage/a.mkv"); }),
            R"("footage/a.mkv": no such file in the shared folder)");
}

TEST_P(SafeDirOpenTest, FileInPlaceOfAFolderIsNotFound) {
  write(root_ / "a.txt", "x");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("a.txt/b"); }), FileErrc::kNotFound);
}

TEST_P(SafeDirOpenTest, FolderIsNotAFile) {
  fs::create_directory(root_ / "footage");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("footage"); }), FileErrc::kNotAFile);
  EXPECT_EQ(code_of([&] { dir.open_file(""); }), FileErrc::kNotAFile);
}

TEST_P(SafeDirOpenTest, FifoIsNotAFileAndDoesNotBlock) {
  const fs::path fifo = root_ / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const SafeDir dir(root_);
  auto result =
      std::async(std::launch::async, [&] { return code_of([&] { dir.open_file("pipe"); }); });
  if (result.wait_for(seconds(10)) == std::future_status::timeout) {
    // Give the blocked open its writer so that the test fails instead of hanging.
    const UniqueFd writer(::open(fifo.c_str(), O_WRONLY | O_CLOEXEC));
    result.wait();
    FAIL() << "open_file blocked on a FIFO";
  }
  EXPECT_EQ(result.get(), FileErrc::kNotAFile);
}

TEST_P(SafeDirOpenTest, AbsoluteLinkIsLinkOutside) {
  fs::create_symlink("/etc/passwd", root_ / "evil");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("evil"); }), FileErrc::kLinkOutside);
  EXPECT_EQ(message_of([&] { dir.open_file("evil"); }),
            R"("evil": the link leads outside the shared folder)");
}

TEST_P(SafeDirOpenTest, DotDotLinkToAFileOutsideIsLinkOutside) {
  fs::create_symlink("../outside/secret.txt", root_ / "sneaky");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("sneaky"); }), FileErrc::kLinkOutside);
}

TEST_P(SafeDirOpenTest, LinkedFolderOutsideIsLinkOutside) {
  fs::create_directory(root_ / "sub");
  fs::create_directory_symlink("../../outside", root_ / "sub" / "out");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("sub/out/secret.txt"); }), FileErrc::kLinkOutside);
}

TEST_P(SafeDirOpenTest, BadPathIsRefusedBeforeAnyLookup) {
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("../outside/secret.txt"); }), FileErrc::kBadPath);
  EXPECT_EQ(code_of([&] { dir.open_file(outside_.native() + "/secret.txt"); }), FileErrc::kBadPath);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, SafeDirOpenTest,
                         ::testing::Values(Resolver::kOpenat2, Resolver::kWalk),
                         [](const ::testing::TestParamInfo<Resolver>& param_info) {
                           return param_info.param == Resolver::kOpenat2 ? "Openat2" : "Walk";
                         });

TEST_F(SafeDirTest, FollowsLinksThatStayInside) {
  write(root_ / "docs" / "readme.txt", "read me");
  fs::create_symlink("docs/readme.txt", root_ / "shortcut");
  fs::create_directory(root_ / "sub");
  fs::create_symlink("../docs/readme.txt", root_ / "sub" / "up");  // ".." that stays inside
  fs::create_directory_symlink("docs", root_ / "alias");
  const SafeDir dir(root_);
  EXPECT_EQ(read_all(dir.open_file("shortcut")), "read me");
  EXPECT_EQ(read_all(dir.open_file("sub/up")), "read me");
  EXPECT_EQ(read_all(dir.open_file("alias/readme.txt")), "read me");
}

TEST_F(SafeDirTest, WithoutOpenat2EvenLinksInsideAreRefused) {
  write(root_ / "docs" / "readme.txt", "read me");
  fs::create_symlink("docs/readme.txt", root_ / "shortcut");
  fs::create_directory_symlink("docs", root_ / "alias");
  detail::force_no_openat2_for_testing(true);
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.open_file("shortcut"); }), FileErrc::kLinkOutside);
  EXPECT_EQ(code_of([&] { dir.open_file("alias/readme.txt"); }), FileErrc::kLinkOutside);
  EXPECT_EQ(read_all(dir.open_file("docs/readme.txt")), "read me");
}

// ---- list ----

TEST_F(SafeDirTest, ListsOneFolderSortedWithSizesAndTimes) {
  write(root_ / "b.txt", "12345");
  write(root_ / "a.txt", "123");
  write(root_ / "c" / "inner.txt", "x");
  const fs::path a = root_ / "a.txt";
  const timespec times[2] = {{1'600'000'000, 123'456'789}, {1'600'000'000, 123'456'789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, a.c_str(), times, 0), 0);
  const SafeDir dir(root_);

  const std::vector<Entry> entries = dir.list("", false);
  EXPECT_EQ(paths_of(entries), (std::vector<std::string>{"a.txt", "b.txt", "c"}));
  ASSERT_EQ(entries.size(), 3U);
  EXPECT_FALSE(entries[0].directory);
  EXPECT_EQ(entries[0].size, 3U);
  EXPECT_EQ(entries[0].mtime, 1'600'000'000'123'456'789);
  EXPECT_EQ(entries[1].size, 5U);
  EXPECT_TRUE(entries[2].directory);
  EXPECT_EQ(entries[2].size, 0U);
}

TEST_F(SafeDirTest, ListsEverythingBeneathWhenRecursive) {
  write(root_ / "z.txt", "z");
  write(root_ / "a" / "b" / "deep.txt", "deep");
  write(root_ / "a" / "top.txt", "top");
  fs::create_directory(root_ / "empty");
  const SafeDir dir(root_);

  EXPECT_EQ(paths_of(dir.list("", true)),
            (std::vector<std::string>{"a", "a/b", "a/b/deep.txt", "a/top.txt", "empty", "z.txt"}));
  // Paths stay relative to the root when listing a subfolder.
  EXPECT_EQ(paths_of(dir.list("a/", true)),
            (std::vector<std::string>{"a/b", "a/b/deep.txt", "a/top.txt"}));
  const std::vector<Entry> deep = dir.list("a", true);
  ASSERT_NE(find(deep, "a/b/deep.txt"), nullptr);
  EXPECT_EQ(find(deep, "a/b/deep.txt")->size, 4U);
}

TEST_F(SafeDirTest, ListingAFileGivesThatOneEntry) {
  write(root_ / "a" / "movie.mkv", "1234567");
  const SafeDir dir(root_);
  const std::vector<Entry> entries = dir.list("a/movie.mkv", true);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].path, "a/movie.mkv");
  EXPECT_EQ(entries[0].size, 7U);
  EXPECT_FALSE(entries[0].directory);
}

TEST_F(SafeDirTest, ListingLeavesOutPartialDownloads) {
  write(root_ / "movie.mkv", "done");
  write(root_ / ".next.mkv.peernet-part", "half");
  write(root_ / ".next.mkv.peernet-state", "{}");
  write(root_ / "sub" / ".x.peernet-part", "half");
  const SafeDir dir(root_);
  EXPECT_EQ(paths_of(dir.list("", true)), (std::vector<std::string>{"movie.mkv", "sub"}));
}

TEST_F(SafeDirTest, ListingLeavesOutFifos) {
  ASSERT_EQ(::mkfifo((root_ / "pipe").c_str(), 0600), 0);
  write(root_ / "a.txt", "a");
  const SafeDir dir(root_);
  EXPECT_EQ(paths_of(dir.list("", false)), (std::vector<std::string>{"a.txt"}));
  EXPECT_EQ(code_of([&] { dir.list("pipe", false); }), FileErrc::kNotAFile);
}

TEST_F(SafeDirTest, ListingShowsInsideLinksAsTheirTargetsAndHidesTheRest) {
  write(root_ / "docs" / "readme.txt", "read me");
  fs::create_symlink("docs/readme.txt", root_ / "shortcut");
  fs::create_directory_symlink("docs", root_ / "alias");
  fs::create_symlink("/etc/passwd", root_ / "evil");
  fs::create_symlink("../outside/secret.txt", root_ / "sneaky");
  fs::create_directory_symlink("../outside", root_ / "out");
  fs::create_symlink("nowhere", root_ / "dangling");
  const SafeDir dir(root_);

  const std::vector<Entry> entries = dir.list("", true);
  // "alias" is listed as a folder but not entered: the same files would appear twice.
  EXPECT_EQ(paths_of(entries),
            (std::vector<std::string>{"alias", "docs", "docs/readme.txt", "shortcut"}));
  ASSERT_NE(find(entries, "shortcut"), nullptr);
  EXPECT_EQ(find(entries, "shortcut")->size, 7U);
  EXPECT_FALSE(find(entries, "shortcut")->directory);
  ASSERT_NE(find(entries, "alias"), nullptr);
  EXPECT_TRUE(find(entries, "alias")->directory);

  EXPECT_EQ(code_of([&] { dir.list("out", false); }), FileErrc::kLinkOutside);
}

TEST_F(SafeDirTest, ListingWithoutOpenat2LeavesOutEveryLink) {
  write(root_ / "docs" / "readme.txt", "read me");
  fs::create_symlink("docs/readme.txt", root_ / "shortcut");
  fs::create_symlink("/etc/passwd", root_ / "evil");
  detail::force_no_openat2_for_testing(true);
  const SafeDir dir(root_);
  EXPECT_EQ(paths_of(dir.list("", true)), (std::vector<std::string>{"docs", "docs/readme.txt"}));
  EXPECT_EQ(code_of([&] { dir.list("shortcut", false); }), FileErrc::kLinkOutside);
}

TEST_F(SafeDirTest, ListingALinkLoopTerminates) {
  write(root_ / "d" / "file.txt", "f");
  fs::create_directory_symlink("..", root_ / "d" / "up");  // its own parent folder
  fs::create_directory_symlink(".", root_ / "d" / "self");
  fs::create_symlink("ping", root_ / "pong");
  fs::create_symlink("pong", root_ / "ping");
  const SafeDir dir(root_);
  EXPECT_EQ(paths_of(dir.list("", true)),
            (std::vector<std::string>{"d", "d/file.txt", "d/self", "d/up"}));
}

TEST_F(SafeDirTest, ListingAMissingPathIsNotFound) {
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.list("nope", false); }), FileErrc::kNotFound);
  EXPECT_EQ(code_of([&] { dir.list("../outside", false); }), FileErrc::kBadPath);
}

// ---- make_dirs ----

TEST_F(SafeDirTest, MakeDirsCreatesNestedFoldersAndReturnsTheLast) {
  const SafeDir dir(root_);
  const UniqueFd fd = dir.make_dirs("incoming//2024/./march/");
  ASSERT_TRUE(fd);
  EXPECT_TRUE(fs::is_directory(root_ / "incoming" / "2024" / "march"));
  // The descriptor is the new folder: a file made through it appears there.
  const UniqueFd file(::openat(fd.get(), "new.txt", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  ASSERT_TRUE(file);
  EXPECT_TRUE(fs::is_regular_file(root_ / "incoming" / "2024" / "march" / "new.txt"));
  // Asking again for folders that exist is fine.
  EXPECT_TRUE(dir.make_dirs("incoming/2024/march"));
}

TEST_F(SafeDirTest, MakeDirsOfTheRootOpensTheRoot) {
  const SafeDir dir(root_);
  const UniqueFd fd = dir.make_dirs("");
  ASSERT_TRUE(fd);
  EXPECT_NE(fd.get(), dir.fd());
  struct stat got {};
  struct stat want {};
  ASSERT_EQ(::fstat(fd.get(), &got), 0);
  ASSERT_EQ(::stat(root_.c_str(), &want), 0);
  EXPECT_EQ(got.st_ino, want.st_ino);
  EXPECT_EQ(got.st_dev, want.st_dev);
}

TEST_F(SafeDirTest, MakeDirsRefusesToGoThroughALinkEvenOneInside) {
  fs::create_directory(root_ / "real");
  fs::create_directory_symlink("real", root_ / "alias");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.make_dirs("alias/new"); }), FileErrc::kLinkOutside);
  EXPECT_EQ(code_of([&] { dir.make_dirs("alias"); }), FileErrc::kLinkOutside);
  EXPECT_FALSE(fs::exists(root_ / "real" / "new"));
}

TEST_F(SafeDirTest, MakeDirsNeverCreatesOutside) {
  fs::create_directory_symlink("../outside", root_ / "out");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.make_dirs("out/new"); }), FileErrc::kLinkOutside);
  EXPECT_EQ(code_of([&] { dir.make_dirs("../outside/new"); }), FileErrc::kBadPath);
  EXPECT_FALSE(fs::exists(outside_ / "new"));
}

TEST_F(SafeDirTest, MakeDirsRefusesAFileInTheWay) {
  write(root_ / "a" / "notes.txt", "x");
  const SafeDir dir(root_);
  EXPECT_EQ(code_of([&] { dir.make_dirs("a/notes.txt/sub"); }), FileErrc::kNotAFile);
  EXPECT_EQ(code_of([&] { dir.make_dirs("a/notes.txt"); }), FileErrc::kNotAFile);
  EXPECT_EQ(message_of([&] { dir.make_dirs("a/notes.txt/sub"); }),
            R"("a/notes.txt/sub": "a/notes.txt" is in the way and is not a folder)");
}

// ---- free_bytes ----

TEST_F(SafeDirTest, ReportsFreeSpace) {
  const SafeDir dir(root_);
  EXPECT_GT(dir.free_bytes(), 0U);
}

}  // namespace
}  // namespace peernet::files
