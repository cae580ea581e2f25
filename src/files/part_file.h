#pragma once

// A file being received, kept under a hidden name next to where it will end up:
//   .NAME.peernet-part   the bytes, at their final offsets
//   .NAME.peernet-state  what they are: the source's size, mtime and path, the chunk size, and
//                        one SHA-256 slot per chunk (all zero until the chunk is written)
// A transfer that breaks, or a receiver that is killed, leaves both behind; the next attempt
// re-hashes every chunk the state lists, keeps those that match and asks only for the rest. The
// final name appears only once every chunk is in and the whole file's SHA-256 matches the
// sender's.

#include <cstdint>
#include <functional>
#include <string>

#include "common/unique_fd.h"
#include "files/sha256.h"
#include "files/wire.h"

namespace peernet::files {

/// The file a PartFile is receiving, as its sender describes it.
struct Source {
  std::string path;  ///< the sender's name for it (a remote path, or a local one for uploads)
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::uint32_t chunk = kChunkBytes;
};

class PartFile {
 public:
  /// Opens or creates the partial file for `name` in the folder `dir_fd` (which the caller has
  /// opened safely; `name` is one path component). What an earlier attempt left for the same
  /// source is verified and kept; anything else there is discarded. Checks that the folder has
  /// room for the rest. Throws FileError: kExists (the final name exists and `overwrite` is
  /// false, or it is a folder), kBusy (another PartFile is receiving it), kNoSpace,
  /// kLinkOutside, kIo. `busy` runs now and then during long reads (verifying what is there,
  /// hashing it), so that the caller can tell its peer it is still at work.
  PartFile(int dir_fd, std::string name, Source source, bool overwrite,
           std::function<void()> busy = {});
  ~PartFile();
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  const Source& source() const noexcept { return source_; }
  /// The chunks already present and verified.
  const Ranges& have() const noexcept { return have_; }
  std::uint64_t bytes_present() const noexcept { return bytes_present_; }
  bool complete() const noexcept;

  /// Starts over for a source that changed (the sender said "restart"): every chunk is dropped.
  void restart(const Source& source);

  /// Writes chunk `index` after checking it against `digest` and the chunk size. Throws
  /// FileError(kIo or kNoSpace) when the disk fails; returns false when the chunk does not match
  /// its digest or is out of place (the caller reports a protocol error).
  bool write(std::uint64_t index, std::span<const std::byte> data, const Digest& digest);

  /// Once complete(): checks the whole file's SHA-256 against `expected`, flushes it to disk and
  /// gives it its final name (never replacing a file unless `overwrite`). Returns the digest.
  /// Throws FileError(kExists) if the final name appeared meanwhile; returns nullopt on a
  /// mismatch, after discarding everything (the source changed while it was read).
  std::optional<Digest> commit(const Digest& expected);

  /// Removes the partial file and its state.
  void discard();

 private:
  void open_fresh();
  bool try_resume();
  void hash_through(std::uint64_t index);
  void mark(std::uint64_t index);
  std::uint64_t chunk_size(std::uint64_t index) const;
  void check_space() const;
  void tick(std::uint64_t index) const;

  /// busy_ runs once every this many chunks read back (about 64 MiB).
  static constexpr std::uint64_t kBusyEvery = 1024;

  int dir_fd_;
  std::string name_;
  std::string part_name_;
  std::string state_name_;
  Source source_;
  bool overwrite_;
  std::function<void()> busy_;
  UniqueFd data_;
  UniqueFd state_;
  std::uint64_t chunks_ = 0;
  Ranges have_;
  std::uint64_t bytes_present_ = 0;
  // The whole-file digest advances over the chunks in order, reading back from disk only what
  // it did not see arrive (what an earlier attempt wrote).
  Sha256 whole_;
  std::uint64_t hashed_ = 0;
};

}  // namespace peernet::files
