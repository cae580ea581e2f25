#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <peernet/peernet.h>

#include "common/unique_fd.h"
#include "files/part_file.h"
#include "files/safe_dir.h"
#include "files/sha256.h"

namespace peernet::files {

/// A transfer that failed at the protocol level: the serving side's "error" reply (its `code`
/// is the wire's: "not-found", "read-only", "exists", ...), or a check of ours ("checksum",
/// "bad-reply").
class TransferError : public std::runtime_error {
 public:
  TransferError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

/// What a transfer reports as it goes (on the client's thread).
struct TransferObserver {
  /// Once, when the transfer begins: the file's size and how much of it was already there.
  std::function<void(std::uint64_t total, std::uint64_t already)> started;
  /// After each chunk, with its size.
  std::function<void(std::uint64_t bytes)> moved;
};

/// The knocking side of the file protocol over one connection's "files" channel. Its calls block
/// (call them from your own thread, never from a libpeernet callback) and run one at a time.
/// They throw peernet::Error(kClosed) when the connection breaks or stalls, TransferError,
/// or FileError for what happens on this side's disk.
class FileClient {
 public:
  struct Options {
    /// A transfer with nothing received or sent for this long counts as broken.
    std::chrono::milliseconds stall_timeout{std::chrono::seconds{15}};
  };

  FileClient(std::shared_ptr<Connection> connection, Options options);
  ~FileClient();
  FileClient(const FileClient&) = delete;
  FileClient& operator=(const FileClient&) = delete;

  /// The entries at `path` on the serving side (see SafeDir::list).
  std::vector<Entry> list(const std::string& path, bool recursive);

  /// Receives the file `remote` into `part`, which was opened for it (and may hold part of it
  /// already); only the missing chunks travel. Commits it under its final name and returns its
  /// SHA-256.
  Digest get(const std::string& remote, PartFile& part, const TransferObserver& observer);

  /// Sends the local `file` (`size` bytes, modified at `mtime`) to `remote`, resuming what an
  /// earlier attempt left there. Returns when the serving side has checked and committed it.
  void put(const std::string& remote, UniqueFd file, std::uint64_t size, std::int64_t mtime,
           bool overwrite, const TransferObserver& observer);

 private:
  struct State;
  std::shared_ptr<Connection> connection_;
  std::shared_ptr<Channel> channel_;
  std::shared_ptr<State> state_;
  Options options_;
  std::uint64_t next_id_ = 0;
};

}  // namespace peernet::files
