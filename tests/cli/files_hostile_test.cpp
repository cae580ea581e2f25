// The serving side against a hostile client: requests sent raw through libpeernet, past every
// check the peernet command makes, to a real `peernet files serve` process.
#include <fcntl.h>
#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "cli/process.h"
#include "files/file_client.h"
#include "files/part_file.h"
#include "files/wire.h"
#include "integration/daemon_process.h"

namespace peernet {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class FilesHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(outside_.path() / "secret") << "not shared";
    std::ofstream(share_.path() / "ok.txt") << "shared";
    fs::create_symlink(outside_.path() / "secret", share_.path() / "escape");
    fs::create_symlink(outside_.path(), share_.path() / "escape-dir");
    fs::create_symlink("ok.txt", share_.path() / "inside");
    ASSERT_EQ(::mkfifo((share_.path() / "fifo").c_str(), 0644), 0);

    const std::string daemon = "http://127.0.0.1:" + std::to_string(daemon_.port());
    server_ = std::make_unique<testing::Process>(
        PEERNET_PATH,
        std::vector<std::string>{"--daemon", daemon, "--loopback", "files", "serve",
                                 share_.path().string(), "--writable", "--state-dir",
                                 (logs_.path() / "state").string()},
        logs_.path() / "out", logs_.path() / "err");
    client_ = std::make_unique<Client>(testing::loopback_client(daemon_.port()));
    const std::vector<Server> servers =
        testing::wait_for_servers(*client_, "peernet.file", *server_);
    ASSERT_FALSE(servers.empty());
    connection_ = client_->connect(servers.front(), "peernet.file", {"files"});
    files_ = std::make_unique<files::FileClient>(connection_, files::FileClient::Options{});
  }

  /// The code of the error the server answers `request` with ("" when it does not refuse).
  template <class Request>
  std::string refusal(Request request) {
    try {
      request();
    } catch (const files::TransferError& error) {
      return error.code();
    }
    return "";
  }

  std::string refusal_to_list(const std::string& path) {
    return refusal([&] { files_->list(path, false); });
  }
  std::string refusal_to_get(const std::string& path) {
    files::PartFile part(received_fd(), "got", {path, 6, 0, files::kChunkBytes}, true);
    return refusal([&] { files_->get(path, part, {}); });
  }
  std::string refusal_to_put(const std::string& path) {
    const fs::path local = logs_.path() / "upload";
    std::ofstream(local) << "upload";
    UniqueFd file(::open(local.c_str(), O_RDONLY | O_CLOEXEC));
    return refusal([&] { files_->put(path, std::move(file), 6, 0, false, {}); });
  }
  int received_fd() {
    if (!received_) {
      received_ = UniqueFd(::open(received_dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
    }
    return received_.get();
  }

  testing::DaemonProcess daemon_;
  testing::TempDir share_;
  testing::TempDir outside_;
  testing::TempDir logs_;
  testing::TempDir received_dir_;
  UniqueFd received_;
  std::unique_ptr<testing::Process> server_;
  std::unique_ptr<Client> client_;
  std::shared_ptr<Connection> connection_;
  std::unique_ptr<files::FileClient> files_;
};

TEST_F(FilesHostileTest, PathsOutOfTheShareAreRefused) {
  EXPECT_EQ(refusal_to_list("../"), "bad-path");
  EXPECT_EQ(refusal_to_list("/etc"), "bad-path");
  EXPECT_EQ(refusal_to_list("ok.txt/../.."), "bad-path");
  EXPECT_EQ(refusal_to_list("escape-dir"), "link-outside");
  EXPECT_EQ(refusal_to_get("../../etc/passwd"), "bad-path");
  EXPECT_EQ(refusal_to_get("/etc/passwd"), "bad-path");
  EXPECT_EQ(refusal_to_get("escape"), "link-outside");
  EXPECT_EQ(refusal_to_get("escape-dir/secret"), "link-outside");
  EXPECT_EQ(refusal_to_get("fifo"), "not-a-file");
  EXPECT_EQ(refusal_to_get(std::string("ok\0.txt", 7)), "bad-path");
  EXPECT_EQ(refusal_to_get(".ok.txt.peernet-part"), "bad-path");  // another transfer's bytes
}

TEST_F(FilesHostileTest, LinksThatStayInsideWorkAndOthersAreNotListed) {
  EXPECT_EQ(refusal_to_get("inside"), "");
  std::ifstream in(received_dir_.path() / "got");
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "shared");

  std::vector<std::string> names;
  for (const auto& entry : files_->list("", false)) {
    names.push_back(entry.path);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"inside", "ok.txt"}));
}

TEST_F(FilesHostileTest, UploadsCannotLandOutsideTheShare) {
  EXPECT_EQ(refusal_to_put("../planted"), "bad-path");
  EXPECT_EQ(refusal_to_put("/tmp/planted"), "bad-path");
  EXPECT_EQ(refusal_to_put("escape-dir/planted"), "link-outside");
  EXPECT_EQ(refusal_to_put("escape"), "exists");
  EXPECT_EQ(refusal_to_put(""), "bad-path");
  EXPECT_EQ(refusal_to_put("in/.x.peernet-state"), "bad-path");  // another upload's state
  EXPECT_FALSE(fs::exists(outside_.path() / "planted"));
  EXPECT_FALSE(fs::exists(share_.path().parent_path() / "planted"));
  std::ifstream secret(outside_.path() / "secret");
  std::string text;
  std::getline(secret, text);
  EXPECT_EQ(text, "not shared");
}

TEST_F(FilesHostileTest, GarbageOnTheChannelIsAnsweredNotCrashedOn) {
  const auto channel = connection_->channels().front();
  files_.reset();  // read the replies raw
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<files::Message> replies;
  channel->on_message([&](std::span<const std::byte> bytes, bool text) {
    const std::lock_guard lock(mutex);
    if (text) {
      replies.push_back(files::decode({reinterpret_cast<const char*>(bytes.data()), bytes.size()}));
    }
    arrived.notify_all();
  });
  EXPECT_FALSE(channel->send_text("")) << "an empty message would fail the connection";
  const std::vector<std::string> garbage = {
      "{",
      "[]",
      "\"get\"",
      R"({"op":"get"})",
      R"({"op":"get","id":1})",
      R"({"op":"end","id":1,"sha256":"00"})",
      R"({"op":"done","id":2})",
      R"({"op":"get","id":3,"path":"ok.txt","resume":{"size":6,"mtime":0,"chunk":0,"have":[]}})"};
  for (const auto& message : garbage) {
    EXPECT_TRUE(channel->send_text(message));
  }
  const std::vector<std::byte> stray_chunk(100);
  EXPECT_TRUE(channel->send(stray_chunk));
  {
    std::unique_lock lock(mutex);
    arrived.wait_for(lock, seconds{10}, [&] { return replies.size() >= garbage.size() + 1; });
    ASSERT_EQ(replies.size(), garbage.size() + 1) << "every bad message gets its answer";
    for (const auto& reply : replies) {
      const auto* failure = std::get_if<files::Failure>(&reply);
      ASSERT_NE(failure, nullptr) << files::encode(reply);
      EXPECT_EQ(failure->code, "bad-request") << failure->message;
      EXPECT_FALSE(failure->message.empty());
    }
  }
  channel->on_message({});
  // Still serving, and still correct.
  files_ = std::make_unique<files::FileClient>(connection_, files::FileClient::Options{});
  EXPECT_EQ(refusal_to_get("ok.txt"), "");
  EXPECT_TRUE(server_->running());
}

}  // namespace
}  // namespace peernet
