// `peernet files` end to end: a real peernetd on loopback, `peernet files serve` in one process,
// `peernet files ls|get|put` in others, real WebRTC data channels between them.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/process.h"
#include "files/sha256.h"
#include "files/wire.h"
#include "integration/daemon_process.h"

namespace peernet {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::DaemonProcess;
using testing::Outcome;
using testing::Process;
using testing::TempDir;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// `size` bytes that differ from file to file (a seed each), written in 1 MiB steps.
void write_random(const fs::path& path, std::uint64_t size, std::uint64_t seed) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 random(seed);
  std::vector<std::uint64_t> block(128 * 1024);
  while (size > 0) {
    for (auto& word : block) {
      word = random();
    }
    const std::uint64_t n = std::min<std::uint64_t>(size, block.size() * sizeof(std::uint64_t));
    out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(n));
    size -= n;
  }
}

std::string sha256_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  files::Sha256 hash;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(std::as_bytes(std::span(buffer.data(), static_cast<std::size_t>(in.gcount()))));
  }
  return files::to_hex(hash.finish());
}

class FilesCliTest : public ::testing::Test {
 protected:
  fs::path share() const { return share_.path(); }
  fs::path dest() const { return dest_.path(); }

  std::unique_ptr<Process> start(const std::vector<std::string>& args) {
    return peernet_.start(args);
  }
  Outcome run(const std::vector<std::string>& args, seconds timeout = seconds{60}) {
    return peernet_.run(args, timeout);
  }

  /// Starts `peernet files serve` on the share and waits until it is registered.
  std::unique_ptr<Process> serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{
        "-v",     "files",   "serve",       share().string(),
        "--name", "footage", "--state-dir", (logs_.path() / "state").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = start(args);
    const auto deadline = std::chrono::steady_clock::now() + seconds{15};
    while (process->err().find("sharing") == std::string::npos) {
      if (!process->running() || std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "serve did not start:\n" << process->err();
        break;
      }
      std::this_thread::sleep_for(milliseconds{20});
    }
    return process;
  }

  DaemonProcess daemon_;
  TempDir share_;
  TempDir dest_;
  TempDir logs_;
  testing::PeernetRunner peernet_{daemon_.port(), logs_.path()};
};

TEST_F(FilesCliTest, FilesOfEveryEdgeSizeArriveIntact) {
  const std::vector<std::pair<std::string, std::uint64_t>> sizes = {
      {"empty", 0},
      {"one", 1},
      {"64k-1", 65535},
      {"64k", 65536},
      {"64k+1", 65537},
      {"chunk", files::kChunkBytes},
      {"chunk+1", files::kChunkBytes + 1},
      {"3chunks", 3 * files::kChunkBytes}};
  std::vector<std::string> args{"files", "get", "--sha256", "-o", dest().string()};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    write_random(share() / sizes[i].first, sizes[i].second, i);
    args.push_back(sizes[i].first);
  }
  const auto server = serve();
  const Outcome got = run(args);
  ASSERT_EQ(got.status, 0) << got.err;
  for (const auto& [name, size] : sizes) {
    ASSERT_TRUE(fs::exists(dest() / name)) << name;
    EXPECT_EQ(fs::file_size(dest() / name), size) << name;
    const std::string digest = sha256_of(share() / name);
    EXPECT_EQ(sha256_of(dest() / name), digest) << name;
    EXPECT_NE(got.out.find(digest + "  " + (dest() / name).string()), std::string::npos)
        << name << " has no sha256sum line in:\n"
        << got.out;
  }
  EXPECT_EQ(fs::last_write_time(dest() / "one"), fs::last_write_time(share() / "one"));
}

TEST_F(FilesCliTest, A200MiBFileArrivesIntact) {
  constexpr std::uint64_t kSize = std::uint64_t{200} << 20U;
  write_random(share() / "big.mkv", kSize, 42);
  const auto server = serve();
  const auto started = std::chrono::steady_clock::now();
  const Outcome got = run({"files", "get", "big.mkv", "-o", dest().string()}, seconds{300});
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(got.status, 0) << got.err;
  EXPECT_EQ(sha256_of(dest() / "big.mkv"), sha256_of(share() / "big.mkv"));
  std::cout << "200 MiB in " << took.count() << " s: " << 200 / took.count() << " MiB/s\n";
  // Not on a terminal: plain lines, no carriage returns.
  EXPECT_EQ(got.err.find('\r'), std::string::npos);
  EXPECT_NE(got.err.find("big.mkv  200.0 MiB in"), std::string::npos) << got.err;
}

TEST_F(FilesCliTest, AFolderIsListedAndFetchedWhole) {
  write_random(share() / "cam1" / "2026-11-29" / "0800.mkv", 1000, 1);
  write_random(share() / "cam1" / "2026-11-29" / "0810.mkv", 70000, 2);
  write_random(share() / "cam1" / "notes.txt", 10, 3);
  fs::create_directories(share() / "cam1" / "empty");
  write_random(share() / "cam2" / "0900.mkv", 5, 4);
  const auto server = serve();

  const Outcome listed = run({"files", "ls", "-r", "--json"});
  ASSERT_EQ(listed.status, 0) << listed.err;
  const auto entries = nlohmann::json::parse(listed.out);
  std::vector<std::string> paths;
  for (const auto& entry : entries) {
    paths.push_back(entry["path"].get<std::string>() + (entry["type"] == "dir" ? "/" : ""));
  }
  EXPECT_EQ(paths,
            (std::vector<std::string>{"cam1/", "cam1/2026-11-29/", "cam1/2026-11-29/0800.mkv",
                                      "cam1/2026-11-29/0810.mkv", "cam1/empty/", "cam1/notes.txt",
                                      "cam2/", "cam2/0900.mkv"}));

  const Outcome plain = run({"files", "ls", "cam1/2026-11-29"});
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_NE(plain.out.find("68.4 KiB"), std::string::npos) << plain.out;

  const Outcome got = run({"files", "get", "cam1", "-o", dest().string()});
  ASSERT_EQ(got.status, 0) << got.err;
  for (const char* file :
       {"cam1/2026-11-29/0800.mkv", "cam1/2026-11-29/0810.mkv", "cam1/notes.txt"}) {
    EXPECT_EQ(read_file(dest() / file), read_file(share() / file)) << file;
  }
  EXPECT_TRUE(fs::is_directory(dest() / "cam1" / "empty"));
  EXPECT_FALSE(fs::exists(dest() / "cam2"));
}

/// Chunks the receiver has written so far, read from its state file (see part_file.h).
std::uint64_t chunks_received(const fs::path& state_file) {
  const std::string state = read_file(state_file);
  std::uint64_t chunks = 0;
  for (std::size_t offset = 64; offset + 32 <= state.size(); offset += 32) {
    chunks += state.compare(offset, 32, std::string(32, '\0')) != 0 ? 1 : 0;
  }
  return chunks;
}

/// The byte count of the last "sending" line in a serve log.
std::uint64_t bytes_sent_last(const std::string& log) {
  static const std::regex kSending(R"(sending "[^"]+" \((\d+) bytes)");
  std::uint64_t last = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), kSending), end; it != end; ++it) {
    last = std::stoull((*it)[1].str());
  }
  return last;
}

bool wait_for_chunks(const fs::path& state_file, std::uint64_t at_least, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (chunks_received(state_file) < at_least) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(milliseconds{20});
  }
  return true;
}

constexpr std::uint64_t kResumeSize = std::uint64_t{64} << 20U;

TEST_F(FilesCliTest, AKilledSenderIsResumedWhereItStopped) {
  write_random(share() / "clip.mkv", kResumeSize, 7);
  const std::uint64_t chunks = files::chunk_count(kResumeSize, files::kChunkBytes);
  auto server = serve();
  auto getter = start({"files", "get", "clip.mkv", "-o", dest().string(), "--stall-timeout", "2",
                       "--retry-for", "60"});
  ASSERT_TRUE(wait_for_chunks(dest() / ".clip.mkv.peernet-state", chunks / 3, seconds{60}))
      << getter->err();
  server->kill_now();
  const std::uint64_t had = chunks_received(dest() / ".clip.mkv.peernet-state");
  server = serve();  // the same id: it takes its registration over with the token it kept

  const auto status = getter->wait(milliseconds{120'000});
  ASSERT_EQ(status, 0) << getter->err() << "\nserver:\n" << server->err();
  EXPECT_EQ(sha256_of(dest() / "clip.mkv"), sha256_of(share() / "clip.mkv"));
  EXPECT_NE(getter->err().find("reconnecting"), std::string::npos) << getter->err();
  // The restarted server sent only what the receiver did not have.
  const std::uint64_t resent = bytes_sent_last(server->err());
  EXPECT_GT(resent, 0U) << server->err();
  EXPECT_LE(resent, kResumeSize - had * files::kChunkBytes) << server->err();
}

TEST_F(FilesCliTest, AKilledReceiverResumesWhenRunAgain) {
  write_random(share() / "clip.mkv", kResumeSize, 8);
  const std::uint64_t chunks = files::chunk_count(kResumeSize, files::kChunkBytes);
  const auto server = serve();
  auto getter = start({"files", "get", "clip.mkv", "-o", dest().string()});
  ASSERT_TRUE(wait_for_chunks(dest() / ".clip.mkv.peernet-state", chunks / 2, seconds{60}))
      << getter->err();
  getter->kill_now();
  EXPECT_FALSE(fs::exists(dest() / "clip.mkv")) << "a half-written file has the final name";

  const Outcome again = run({"files", "get", "clip.mkv", "-o", dest().string()});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(sha256_of(dest() / "clip.mkv"), sha256_of(share() / "clip.mkv"));
  EXPECT_LT(bytes_sent_last(server->err()), kResumeSize * 2 / 3) << server->err();
  EXPECT_FALSE(fs::exists(dest() / ".clip.mkv.peernet-part"));
  EXPECT_FALSE(fs::exists(dest() / ".clip.mkv.peernet-state"));
}

TEST_F(FilesCliTest, AnUploadResumesAfterTheServerIsKilled) {
  TempDir local;
  write_random(local.path() / "clip.mkv", kResumeSize, 9);
  const std::uint64_t chunks = files::chunk_count(kResumeSize, files::kChunkBytes);
  auto server = serve({"--writable"});
  auto putter = start({"files", "put", (local.path() / "clip.mkv").string(), "--stall-timeout", "5",
                       "--retry-for", "60"});
  ASSERT_TRUE(wait_for_chunks(share() / ".clip.mkv.peernet-state", chunks / 3, seconds{60}))
      << putter->err();
  server->kill_now();
  server = serve({"--writable"});

  const auto status = putter->wait(milliseconds{120'000});
  ASSERT_EQ(status, 0) << putter->err() << "\nserver:\n" << server->err();
  EXPECT_EQ(sha256_of(share() / "clip.mkv"), sha256_of(local.path() / "clip.mkv"));
  EXPECT_NE(putter->err().find("reconnecting"), std::string::npos) << putter->err();
  // The restarted server kept what had arrived: it said so, and asked for the rest only.
  static const std::regex kReceiving(R"(receiving "clip.mkv" \((\d+) bytes, (\d+) already here\))");
  std::smatch match;
  const std::string log = server->err();
  ASSERT_TRUE(std::regex_search(log, match, kReceiving)) << log;
  EXPECT_GE(std::stoull(match[2].str()), chunks / 3 * files::kChunkBytes) << log;
  EXPECT_FALSE(fs::exists(share() / ".clip.mkv.peernet-part"));
}

TEST_F(FilesCliTest, AnExistingFileIsNotReplacedUnlessAsked) {
  write_random(share() / "a.mkv", 100, 1);
  std::ofstream(dest() / "a.mkv") << "mine";
  const auto server = serve();
  const Outcome refused = run({"files", "get", "a.mkv", "-o", dest().string()});
  EXPECT_EQ(refused.status, 8) << refused.err;
  EXPECT_NE(refused.err.find("--overwrite"), std::string::npos) << refused.err;
  EXPECT_EQ(read_file(dest() / "a.mkv"), "mine");

  const Outcome replaced = run({"files", "get", "a.mkv", "-o", dest().string(), "--overwrite"});
  ASSERT_EQ(replaced.status, 0) << replaced.err;
  EXPECT_EQ(read_file(dest() / "a.mkv"), read_file(share() / "a.mkv"));
}

TEST_F(FilesCliTest, PutNeedsAWritableShareAndArrivesIntact) {
  TempDir local;
  write_random(local.path() / "upload" / "x.bin", 300000, 5);
  write_random(local.path() / "upload" / "sub" / "y.bin", 0, 6);
  {
    const auto read_only = serve();
    const Outcome refused = run({"files", "put", (local.path() / "upload").string()});
    EXPECT_EQ(refused.status, 6) << refused.err;
    EXPECT_NE(refused.err.find("--writable"), std::string::npos) << refused.err;
    read_only->signal(SIGTERM);
    EXPECT_EQ(read_only->wait(milliseconds{10'000}), 0) << read_only->err();
  }
  const auto writable = serve({"--writable"});
  const Outcome sent = run({"files", "put", (local.path() / "upload").string(), "--dest", "in"});
  ASSERT_EQ(sent.status, 0) << sent.err << "\nserver:\n" << writable->err();
  EXPECT_EQ(read_file(share() / "in" / "upload" / "x.bin"),
            read_file(local.path() / "upload" / "x.bin"));
  EXPECT_TRUE(fs::exists(share() / "in" / "upload" / "sub" / "y.bin"));

  const Outcome again =
      run({"files", "put", (local.path() / "upload" / "x.bin").string(), "--dest", "in/upload"});
  EXPECT_EQ(again.status, 8) << again.err;
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
}

TEST_F(FilesCliTest, ErrorsSayWhatIsWrong) {
  const Outcome no_server = run({"files", "ls"});
  EXPECT_EQ(no_server.status, 5) << no_server.err;
  EXPECT_NE(no_server.err.find("no server offers peernet.file"), std::string::npos)
      << no_server.err;

  const Outcome no_room = run({"--room", "attic", "files", "ls"});
  EXPECT_EQ(no_room.status, 4) << no_room.err;
  EXPECT_NE(no_room.err.find("attic"), std::string::npos) << no_room.err;

  const auto server = serve();
  const Outcome missing = run({"files", "get", "nothing-here.mkv", "-o", dest().string()});
  EXPECT_EQ(missing.status, 8) << missing.err;
  EXPECT_NE(missing.err.find("nothing-here.mkv"), std::string::npos) << missing.err;

  const Outcome wrong_name = run({"files", "ls", "--from", "garage"});
  EXPECT_EQ(wrong_name.status, 5) << wrong_name.err;
  EXPECT_NE(wrong_name.err.find("footage"), std::string::npos) << wrong_name.err;

  const Outcome traversal = run({"files", "get", "../etc/passwd", "-o", dest().string()});
  EXPECT_EQ(traversal.status, 8) << traversal.err;
  EXPECT_NE(traversal.err.find("\"..\""), std::string::npos) << traversal.err;
}

TEST(FilesCliUnreachableTest, AnUnreachableDaemonIsNamed) {
  TempDir logs;
  // A port nothing listens on: bound and closed again by a daemon that has stopped.
  std::uint16_t port = 0;
  {
    DaemonProcess daemon;
    port = daemon.port();
  }
  Process process(PEERNET_PATH,
                  {"--daemon", "http://127.0.0.1:" + std::to_string(port), "files", "ls"},
                  logs.path() / "out", logs.path() / "err");
  EXPECT_EQ(process.wait(milliseconds{30'000}), 3) << process.err();
  EXPECT_NE(process.err().find("PEERNET_DAEMON"), std::string::npos) << process.err();
}

}  // namespace
}  // namespace peernet
