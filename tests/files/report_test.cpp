// What a person reads when `peernet` fails, and the exit status a script sees: each kind of
// failure, as docs/files.md tables them.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "cli/common.h"
#include "files/file_client.h"
#include "files/safe_dir.h"

namespace peernet::cli {
namespace {

struct Reported {
  int status = -1;
  std::string text;
};

/// report() of `error`, with what it wrote to stderr.
template <class E>
Reported report_of(const E& error, const GlobalOptions& options = {}) {
  std::fflush(stderr);
  char name[] = "/tmp/peernet-report-XXXXXX";
  const int file = ::mkstemp(name);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(file, STDERR_FILENO);
  Reported reported;
  reported.status = report(std::make_exception_ptr(error), options);
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(file);
  std::ifstream in(name);
  reported.text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  ::unlink(name);
  return reported;
}

TEST(ReportTest, LibraryErrorsMapToTheDocumentedStatuses) {
  EXPECT_EQ(report_of(Error(Errc::kUnreachable, "x")).status, kUnreachable);
  EXPECT_EQ(report_of(Error(Errc::kRoomNotFound, "x")).status, kRoomNotFound);
  EXPECT_EQ(report_of(Error(Errc::kNoSuchService, "x")).status, kNoSuchService);
  EXPECT_EQ(report_of(Error(Errc::kNotFound, "x")).status, kNoSuchService);
  EXPECT_EQ(report_of(Error(Errc::kRefused, "x")).status, kRefused);
  EXPECT_EQ(report_of(Error(Errc::kIceFailed, "x")).status, kNoRoute);
  EXPECT_EQ(report_of(Error(Errc::kNoAnswer, "x")).status, kNoRoute);
  EXPECT_EQ(report_of(Error(Errc::kInvalid, "x")).status, kUsage);
  EXPECT_EQ(report_of(Error(Errc::kClosed, "x")).status, kFailed);
  EXPECT_EQ(report_of(Error(Errc::kDaemon, "x")).status, kFailed);
}

TEST(ReportTest, FileRefusalsAndTransferFailuresMapToTheDocumentedStatuses) {
  using files::FileErrc;
  using files::TransferError;
  for (const char* code :
       {"not-found", "exists", "bad-path", "link-outside", "not-a-file", "no-space", "too-many"}) {
    EXPECT_EQ(report_of(TransferError(code, "x")).status, kFileRefused) << code;
  }
  for (const char* code : {"read-only", "permission", "busy"}) {
    EXPECT_EQ(report_of(TransferError(code, "x")).status, kRefused) << code;
  }
  EXPECT_EQ(report_of(TransferError("checksum", "x")).status, kFailed);
  EXPECT_EQ(report_of(files::FileError(FileErrc::kExists, "x")).status, kFileRefused);
  EXPECT_EQ(report_of(files::FileError(FileErrc::kNoSpace, "x")).status, kFileRefused);
  EXPECT_EQ(report_of(files::FileError(FileErrc::kIo, "x")).status, kFailed);
  EXPECT_EQ(report_of(std::runtime_error("x")).status, kFailed);
}

TEST(ReportTest, NoRouteSuggestsStunAndTurnUnlessTheyWereGiven) {
  const auto bare = report_of(Error(Errc::kIceFailed, "the peers found no network path"));
  EXPECT_NE(bare.text.find("peernet: the peers found no network path\n"), std::string::npos)
      << bare.text;
  EXPECT_NE(bare.text.find("--stun stun://"), std::string::npos) << bare.text;
  EXPECT_NE(bare.text.find("--turn turn://"), std::string::npos) << bare.text;

  GlobalOptions with_stun;
  with_stun.client.stun_server = "stun://stun.example:3478";
  const auto given = report_of(Error(Errc::kIceFailed, "no path"), with_stun);
  EXPECT_EQ(given.text.find("--stun stun://"), std::string::npos) << given.text;
  EXPECT_NE(given.text.find("even with the STUN/TURN servers given"), std::string::npos)
      << given.text;
}

TEST(ReportTest, AnUnreachableDaemonOrMissingRoomSaysWhereToPointInstead) {
  EXPECT_NE(report_of(Error(Errc::kUnreachable, "x")).text.find("PEERNET_DAEMON"),
            std::string::npos);
  EXPECT_NE(report_of(Error(Errc::kRoomNotFound, "x")).text.find("--room NAME"), std::string::npos);
}

}  // namespace
}  // namespace peernet::cli
