#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <peernet/peernet.h>

#include "common/unique_fd.h"
#include "files/sha256.h"
#include "files/wire.h"

namespace peernet::files {

/// Streams one file's chunks over a channel, as fast as the channel drains and no faster: it
/// queues while the channel's buffered amount is under a high-water mark and resumes when it
/// falls to the low one. It reads every chunk in order, so that the EndOfFile it sends last
/// carries the whole file's SHA-256, but sends only those in `sending` (the rest the receiver
/// has). Lives on the client's thread; owns the channel's on_buffered_amount_low until it ends.
class ChunkSender : public std::enable_shared_from_this<ChunkSender> {
 public:
  static constexpr std::uint64_t kHighWater = std::uint64_t{4} * 1024 * 1024;
  static constexpr std::uint64_t kLowWater = std::uint64_t{1} * 1024 * 1024;
  /// While reading chunks the receiver has, a Working message goes every this many (64 MiB).
  static constexpr std::uint64_t kWorkingEvery = 1024;

  struct Plan {
    std::uint64_t id = 0;    ///< the request this answers
    std::uint64_t size = 0;  ///< the file's size and mtime when the transfer began
    std::int64_t mtime = 0;
    Ranges sending;
  };
  /// `sent` after each chunk with its byte count; `ended` once, with nullopt after the EndOfFile
  /// went out, or the reason it did not ("changed" when the file changed while it was read;
  /// "closed" when the channel closed).
  struct Callbacks {
    std::function<void(std::uint64_t bytes)> sent;
    std::function<void(const std::optional<Failure>& failure)> ended;
  };

  static std::shared_ptr<ChunkSender> create(std::shared_ptr<Channel> channel, UniqueFd file,
                                             Plan plan, Callbacks callbacks);
  /// Begins sending. A small file is sent, and `ended` called, before start() returns: keep the
  /// sender from create() first.
  void start();
  /// Stops without sending anything more; `ended` does not run.
  void cancel();

  ChunkSender(std::shared_ptr<Channel> channel, UniqueFd file, Plan plan, Callbacks callbacks);

 private:
  void pump();
  void end(const std::optional<Failure>& failure);

  std::shared_ptr<Channel> channel_;
  UniqueFd file_;
  Plan plan_;
  Callbacks callbacks_;
  std::uint64_t chunks_;
  std::uint64_t next_ = 0;
  std::uint64_t skipped_ = 0;
  Sha256 whole_;
  std::vector<std::byte> buffer_;
  bool done_ = false;
};

}  // namespace peernet::files
