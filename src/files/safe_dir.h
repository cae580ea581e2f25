#pragma once

// The one way PeerNet's file service touches a folder: every path that arrives from a peer is a
// hostile string until check_relative() has accepted it, and every open goes through a SafeDir so
// that nothing is read or written outside the folder it was given.

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"

namespace peernet::files {

/// Why a file operation was refused or failed. The wire names (to_string) travel to the peer.
enum class FileErrc {
  kBadPath,      ///< "bad-path": absolute, "..", empty component, NUL, too long
  kNotFound,     ///< "not-found": nothing at that path
  kNotAFile,     ///< "not-a-file": a folder where a file was expected (or a device, FIFO...)
  kLinkOutside,  ///< "link-outside": a symbolic link that leads out of the folder (or, when
                 ///< writing, any link: PeerNet never writes through one)
  kExists,       ///< "exists": the target exists and overwriting was not asked for
  kNoSpace,      ///< "no-space": not enough free space for the file
  kPermission,   ///< "permission": the operating system refused (EACCES, EPERM, EROFS)
  kTooMany,      ///< "too-many": a listing larger than kMaxListEntries
  kBusy,         ///< "busy": another transfer is writing that file right now
  kIo,           ///< "io": any other error from the operating system
};

std::string_view to_string(FileErrc code) noexcept;

/// A refused or failed file operation. what() is a sentence a person can act on and names the
/// path (relative to the folder, never the serving machine's absolute path).
class FileError : public std::runtime_error {
 public:
  FileError(FileErrc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  FileErrc code() const noexcept { return code_; }

 private:
  FileErrc code_;
};

/// One file or folder of a listing.
struct Entry {
  std::string path;  ///< relative to the SafeDir's root, '/'-separated, as check_relative() returns
  bool directory = false;
  std::uint64_t size = 0;  ///< bytes; 0 for folders
  std::int64_t mtime = 0;  ///< modification time, nanoseconds since the Unix epoch
  bool operator==(const Entry&) const = default;
};

/// Paths longer than this are refused, on the wire and on disk.
inline constexpr std::size_t kMaxPathBytes = 4096;

/// Listings stop (with kTooMany) beyond this many entries.
inline constexpr std::size_t kMaxListEntries = 100000;

/// Validates a path from the wire and returns it normalized: components joined by single '/',
/// with empty and "." components dropped ("a//./b/" -> "a/b"; "" and "." -> "", the root itself).
/// Throws FileError(kBadPath) for a leading '/', any ".." component, a NUL or other control
/// character (< 0x20 or 0x7f), a component longer than 255 bytes, or more than 4096 bytes in all.
std::string check_relative(std::string_view path);

/// True for the names PeerNet itself uses for unfinished downloads (".NAME.peernet-part" and
/// ".NAME.peernet-state"); listings leave them out.
bool is_partial_name(std::string_view file_name) noexcept;

/// A folder opened once; everything below is reached from its descriptor, never by a path string
/// joined onto the root. Reads follow symbolic links only while they stay inside the folder
/// (openat2 with RESOLVE_BENEATH; where the kernel lacks openat2, no link is followed at all).
/// Writes never follow a link.
class SafeDir {
 public:
  /// Opens `root`, which must be an existing folder. Throws FileError (kNotFound, kNotAFile,
  /// kPermission).
  explicit SafeDir(const std::filesystem::path& root);

  const std::filesystem::path& root() const noexcept { return root_; }
  int fd() const noexcept { return fd_.get(); }

  /// Opens an existing regular file for reading. `relative` is checked with check_relative().
  /// Throws FileError: kBadPath, kNotFound, kNotAFile, kLinkOutside, kPermission, kIo. Never
  /// blocks on a FIFO.
  UniqueFd open_file(std::string_view relative) const;

  /// `relative` names a file: a listing of that one entry. A folder: its entries (all of them
  /// beneath it when `recursive`), sorted by path, folders included, PeerNet's partial files left
  /// out. Links are listed as what they point to when that stays inside the folder and left out
  /// otherwise; a recursive listing does not descend into a linked folder. Throws FileError.
  std::vector<Entry> list(std::string_view relative, bool recursive) const;

  /// Creates the folder `relative` and its parents as needed (mode 0755), never following a
  /// link (an existing link anywhere on the way is kLinkOutside), and returns it opened
  /// (O_DIRECTORY). "" returns a new descriptor of the root. Throws FileError.
  UniqueFd make_dirs(std::string_view relative) const;

  /// Bytes free for an unprivileged user on the folder's file system.
  std::uint64_t free_bytes() const;

 private:
  std::filesystem::path root_;
  UniqueFd fd_;
};

}  // namespace peernet::files
