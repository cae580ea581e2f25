#include "files/safe_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <linux/openat2.h>

#include "files/stat.h"

namespace peernet::files {
namespace {

constexpr std::size_t kMaxNameBytes = 255;
// Enough of a path for a person to recognise it; a peer's 4 KiB of junk does not belong in a log.
constexpr std::size_t kMaxQuotedBytes = 160;
// openat2 answers EAGAIN when a rename raced with a ".." inside a link target; a few retries ride
// out an unlucky moment, and a steady attacker only gets the strict walk (which follows nothing).
constexpr int kBeneathAttempts = 4;

// Forced by tests (detail::force_no_openat2_for_testing) to reach the walk that kernels without
// openat2 get; production code never sets it.
std::atomic<bool> fallback_forced{false};
// Once the kernel has said ENOSYS it will not change its mind; later opens skip the syscall.
std::atomic<bool> openat2_missing{false};

bool is_control(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte < 0x20 || byte == 0x7f;
}

// Paths come from peers and their messages go back to peers and into logs: escape anything that
// could forge a log line or drive a terminal, and cut absurd lengths (at a UTF-8 boundary).
std::string quote_path(std::string_view path) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : path) {
    const auto byte = static_cast<unsigned char>(c);
    if (out.size() >= kMaxQuotedBytes && (byte & 0xC0U) != 0x80U) {
      out += "...";
      break;
    }
    if (is_control(c)) {
      out += "\\x";
      out += kHex[byte >> 4U];
      out += kHex[byte & 0xFU];
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  out += '"';
  return out;
}

std::string subject(std::string_view relative) {
  return relative.empty() ? std::string("the shared folder itself") : quote_path(relative);
}

[[noreturn]] void fail(FileErrc code, std::string_view relative, std::string_view reason) {
  throw FileError(code, subject(relative) + ": " + std::string(reason));
}

FileErrc code_for_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return FileErrc::kNotFound;
    case EACCES:
    case EPERM:
    case EROFS:
      return FileErrc::kPermission;
    case ENOSPC:
    case EDQUOT:
      return FileErrc::kNoSpace;
    default:
      return FileErrc::kIo;
  }
}

// The wording of an errno failure depends on what was being attempted.
struct Action {
  std::string_view missing;  // the whole reason, for kNotFound
  std::string_view failed;   // the start of the reason, for everything else
};
constexpr Action kOpening{"no such file in the shared folder", "could not be opened"};
constexpr Action kListing{"no such file or folder in the shared folder", "could not be listed"};
constexpr Action kCreating{"a folder on the way vanished while it was being created",
                           "could not be created"};

[[noreturn]] void fail_errno(int err, std::string_view relative, const Action& action) {
  const FileErrc code = code_for_errno(err);
  // std::system_category() rather than strerror(): the daemon serves peers from several threads.
  const std::string os = std::system_category().message(err);
  switch (code) {
    case FileErrc::kNotFound:
      fail(code, relative, action.missing);
    case FileErrc::kPermission:
      fail(code, relative,
           std::string(action.failed) + ": the operating system refused (" + os + ")");
    case FileErrc::kNoSpace:
      fail(code, relative, std::string(action.failed) + ": no space left (" + os + ")");
    default:
      fail(code, relative, std::string(action.failed) + " (" + os + ")");
  }
}

// What an open beneath a folder produced: a descriptor, or why not. A link leading outside is kept
// apart from errno because the kernel reports it with several codes (EXDEV, ELOOP).
struct Opened {
  UniqueFd fd;
  int error = 0;
  bool link_outside = false;

  static Opened failure(int err) { return Opened{UniqueFd(), err, false}; }
  static Opened outside() { return Opened{UniqueFd(), 0, true}; }
};

[[noreturn]] void fail_open(const Opened& opened, std::string_view relative, const Action& action) {
  if (opened.link_outside) {
    fail(FileErrc::kLinkOutside, relative, "the link leads outside the shared folder");
  }
  fail_errno(opened.error, relative, action);
}

bool is_link(int dir_fd, const std::string& name) {
  struct stat info {};
  return ::fstatat(dir_fd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(info.st_mode);
}

// For kernels without openat2 (or behind a seccomp filter that refuses it): one component at a
// time, none of them followed if it is a link. Stricter than openat2 (links that stay inside are
// refused too), but nothing weaker than "no link at all" can be proved safe from user space.
Opened open_by_walking(int dir_fd, std::string_view relative, int flags) {
  UniqueFd held;  // the folder reached so far, once the walk has left dir_fd
  int at = dir_fd;
  std::string_view rest = relative.empty() ? std::string_view(".") : relative;
  while (true) {
    const auto slash = rest.find('/');
    const bool last = slash == std::string_view::npos;
    const std::string name(rest.substr(0, slash));
    // Search permission is all that a folder on the way needs, hence O_PATH.
    const int step_flags =
        last ? (flags | O_NOFOLLOW) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    UniqueFd opened(::openat(at, name.c_str(), step_flags));
    if (!opened) {
      const int err = errno;
      // O_NOFOLLOW reports a link as ELOOP, or as ENOTDIR when O_DIRECTORY is also set, and
      // ENOTDIR alone cannot tell a link from a plain file in the way.
      if ((err == ELOOP || err == ENOTDIR) && is_link(at, name)) {
        return Opened::outside();
      }
      return Opened::failure(err);
    }
    if (last) {
      // O_PATH | O_NOFOLLOW opens a final link itself instead of refusing it.
      struct stat info {};
      if ((flags & O_PATH) != 0 && ::fstat(opened.get(), &info) == 0 && S_ISLNK(info.st_mode)) {
        return Opened::outside();
      }
      return Opened{std::move(opened)};
    }
    held = std::move(opened);
    at = held.get();
    rest = rest.substr(slash + 1);
  }
}

// Opens `relative` (already checked) beneath `dir_fd`. The kernel keeps every step, links
// included, inside dir_fd; `follow_links` false refuses any link on the way.
Opened open_beneath(int dir_fd, const std::string& relative, int flags, bool follow_links) {
  if (!fallback_forced.load() && !openat2_missing.load()) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.resolve =
        RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (follow_links ? 0U : RESOLVE_NO_SYMLINKS);
    const char* path = relative.empty() ? "." : relative.c_str();
    for (int attempt = 0; attempt < kBeneathAttempts; ++attempt) {
      const long fd = ::syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
      if (fd >= 0) {
        return Opened{UniqueFd(static_cast<int>(fd))};
      }
      const int err = errno;
      if (err == EAGAIN) {
        continue;
      }
      if (err == EXDEV || err == ELOOP) {
        return Opened::outside();
      }
      if (err == ENOSYS) {
        openat2_missing.store(true);
        break;
      }
      if (err == EPERM) {
        // Usually a seccomp filter that does not know openat2. Not remembered: a genuine EPERM
        // is reported again by the walk, and the cost is one syscall.
        break;
      }
      return Opened::failure(err);
    }
  }
  return open_by_walking(dir_fd, relative, flags);
}

/// True for well-formed UTF-8: names that are not cannot travel in the protocol's JSON.
bool is_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = lead < 0x80            ? 1
                               : (lead >> 5U) == 0x6  ? 2
                               : (lead >> 4U) == 0xe  ? 3
                               : (lead >> 3U) == 0x1e ? 4
                                                      : 0;
    if (length == 0 || i + length > text.size()) {
      return false;
    }
    std::uint32_t code = length == 1 ? lead : lead & (0x7fU >> length);
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next >> 6U) != 0x2) {
        return false;
      }
      code = (code << 6U) | (next & 0x3fU);
    }
    constexpr std::array<std::uint32_t, 5> kSmallest{0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return false;  // overlong, beyond Unicode, or a surrogate
    }
    i += length;
  }
  return true;
}

Entry make_entry(std::string path, const struct stat& info) {
  Entry entry;
  entry.path = std::move(path);
  entry.directory = S_ISDIR(info.st_mode);
  entry.size = entry.directory ? 0 : static_cast<std::uint64_t>(info.st_size);
  entry.mtime = mtime_ns(info);
  return entry;
}

std::string join(std::string_view parent, std::string_view name) {
  if (parent.empty() || name.empty()) {
    return std::string(parent.empty() ? name : parent);
  }
  std::string out;
  out.reserve(parent.size() + 1 + name.size());
  out.append(parent).append("/").append(name);
  return out;
}

struct DirCloser {
  void operator()(DIR* stream) const noexcept { ::closedir(stream); }
};
using DirStream = std::unique_ptr<DIR, DirCloser>;

// Walks the folder `top_fd` (reached as `top_path` from the root) without holding more than one
// folder open, so that neither a deep nor a wide tree can run the process out of descriptors.
class Lister {
 public:
  Lister(int root_fd, int top_fd, std::string top_path, bool recursive)
      : root_fd_(root_fd), top_fd_(top_fd), top_path_(std::move(top_path)), recursive_(recursive) {}

  std::vector<Entry> run() {
    std::vector<std::string> pending{""};  // folders still to read, relative to top_fd_
    while (!pending.empty()) {
      const std::string folder = std::move(pending.back());
      pending.pop_back();
      // No link is followed here: a folder that became a link since it was seen is not entered.
      Opened opened =
          open_beneath(top_fd_, folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC, /*follow_links=*/false);
      if (!opened.fd) {
        if (folder.empty()) {
          fail_open(opened, top_path_, kListing);
        }
        // One subfolder that vanished or is unreadable should not hide the rest of the share.
        continue;
      }
      read_folder(opened.fd.get(), folder, pending);
    }
    std::ranges::sort(entries_, {}, &Entry::path);
    return std::move(entries_);
  }

 private:
  void read_folder(int folder_fd, const std::string& folder, std::vector<std::string>& pending) {
    const std::string folder_path = join(top_path_, folder);
    // closedir() closes the descriptor it was given, and folder_fd belongs to the caller.
    const int copy = ::fcntl(folder_fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      fail_errno(errno, folder_path, kListing);
    }
    const DirStream stream(::fdopendir(copy));
    if (!stream) {
      const int err = errno;
      ::close(copy);
      fail_errno(err, folder_path, kListing);
    }
    while (true) {
      errno = 0;
      const dirent* item = ::readdir(stream.get());
      if (item == nullptr) {
        if (errno != 0) {
          fail_errno(errno, folder_path, kListing);
        }
        return;
      }
      const std::string_view name = item->d_name;
      if (name == "." || name == ".." || is_partial_name(name) ||
          std::ranges::any_of(name, is_control) || !is_utf8(name)) {
        // Control characters: check_relative() would refuse the path; names that are not UTF-8
        // cannot travel in JSON. Offering either to a peer would invite a request that must fail.
        continue;
      }
      std::string path = join(folder_path, name);
      if (path.size() > kMaxPathBytes) {
        continue;  // likewise unaddressable
      }
      struct stat info {};
      if (::fstatat(folder_fd, item->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
          continue;  // removed since readdir() saw it
        }
        fail_errno(errno, path, kListing);
      }
      if (S_ISLNK(info.st_mode)) {
        // Resolved from the root, so that a link may lead anywhere inside the share, not only
        // beneath the folder being listed. Its target is listed but never entered: that is what
        // keeps a link to a parent folder from making the listing endless.
        Opened target = open_beneath(root_fd_, path, O_PATH | O_CLOEXEC, /*follow_links=*/true);
        if (!target.fd || ::fstat(target.fd.get(), &info) != 0) {
          continue;  // escapes, dangles, or loops
        }
      } else if (S_ISDIR(info.st_mode) && recursive_) {
        pending.push_back(join(folder, name));
      }
      // Devices, FIFOs and sockets cannot be downloaded; listing them would only offer a failure.
      if (!S_ISDIR(info.st_mode) && !S_ISREG(info.st_mode)) {
        continue;
      }
      entries_.push_back(make_entry(std::move(path), info));
      if (entries_.size() > kMaxListEntries) {
        fail(FileErrc::kTooMany, top_path_,
             "has more than " + std::to_string(kMaxListEntries) +
                 " entries to list; ask for a subfolder or without recursion");
      }
    }
  }

  int root_fd_;
  int top_fd_;
  std::string top_path_;
  bool recursive_;
  std::vector<Entry> entries_;
};

}  // namespace

namespace detail {

// Test hook, declared only in tests/files/safe_dir_test.cpp: true makes every open take the
// component-by-component walk that kernels without openat2 get, so that path can be tested on a
// kernel that has openat2. Not part of the public header on purpose.
void force_no_openat2_for_testing(bool force) { fallback_forced.store(force); }

}  // namespace detail

std::string_view to_string(FileErrc code) noexcept {
  switch (code) {
    case FileErrc::kBadPath:
      return "bad-path";
    case FileErrc::kNotFound:
      return "not-found";
    case FileErrc::kNotAFile:
      return "not-a-file";
    case FileErrc::kLinkOutside:
      return "link-outside";
    case FileErrc::kExists:
      return "exists";
    case FileErrc::kNoSpace:
      return "no-space";
    case FileErrc::kPermission:
      return "permission";
    case FileErrc::kTooMany:
      return "too-many";
    case FileErrc::kBusy:
      return "busy";
    case FileErrc::kIo:
      return "io";
  }
  return "io";  // a value outside the enum: say "something failed" rather than nothing
}

std::string check_relative(std::string_view path) {
  const auto refuse = [path](std::string_view reason) {
    throw FileError(FileErrc::kBadPath, quote_path(path) + ": " + std::string(reason));
  };
  if (path.size() > kMaxPathBytes) {
    refuse("the path is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  }
  if (path.starts_with('/')) {
    refuse("absolute paths are not allowed");
  }
  if (path.find('\0') != std::string_view::npos) {
    refuse("a NUL byte is not allowed in a path");
  }
  if (std::ranges::any_of(path, is_control)) {
    refuse("control characters are not allowed in a path");
  }
  std::string out;
  out.reserve(path.size());
  std::string_view rest = path;
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const std::string_view name = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (name.empty() || name == ".") {
      continue;
    }
    if (name == "..") {
      refuse("\"..\" is not allowed in a path");
    }
    if (name.size() > kMaxNameBytes) {
      refuse("a name in the path is longer than " + std::to_string(kMaxNameBytes) + " bytes");
    }
    if (!out.empty()) {
      out += '/';
    }
    out += name;
  }
  return out;
}

bool is_partial_name(std::string_view file_name) noexcept {
  return file_name.starts_with('.') &&
         (file_name.ends_with(".peernet-part") || file_name.ends_with(".peernet-state"));
}

SafeDir::SafeDir(const std::filesystem::path& root) : root_(root) {
  fd_.reset(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd_) {
    return;
  }
  const int err = errno;
  // The root comes from the operator's configuration, not from a peer, and the operator needs to
  // know which folder is wrong; this is the one message that names an absolute path.
  const std::string name = "shared folder " + quote_path(root.native());
  switch (err) {
    case ENOENT:
      throw FileError(FileErrc::kNotFound, name + " does not exist");
    case ENOTDIR:
      throw FileError(FileErrc::kNotAFile, name + " is not a folder");
    case EACCES:
    case EPERM:
      throw FileError(FileErrc::kPermission,
                      name + " could not be opened: the operating system refused (" +
                          std::system_category().message(err) + ")");
    default:
      throw FileError(FileErrc::kIo,
                      name + " could not be opened (" + std::system_category().message(err) + ")");
  }
}

UniqueFd SafeDir::open_file(std::string_view relative) const {
  const std::string path = check_relative(relative);
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever if a peer
  // asked for one on purpose.
  Opened opened = open_beneath(fd_.get(), path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                               /*follow_links=*/true);
  if (!opened.fd) {
    fail_open(opened, path, kOpening);
  }
  struct stat info {};
  if (::fstat(opened.fd.get(), &info) != 0) {
    fail_errno(errno, path, kOpening);
  }
  if (S_ISDIR(info.st_mode)) {
    fail(FileErrc::kNotAFile, path, "is a folder, not a file");
  }
  if (!S_ISREG(info.st_mode)) {
    fail(FileErrc::kNotAFile, path, "is not a regular file (a device, FIFO or socket)");
  }
  // Callers expect reads that wait for the disk, not EAGAIN.
  const int flags = ::fcntl(opened.fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(opened.fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    fail_errno(errno, path, kOpening);
  }
  return std::move(opened.fd);
}

std::vector<Entry> SafeDir::list(std::string_view relative, bool recursive) const {
  std::string path = check_relative(relative);
  // O_PATH: only fstat is needed to tell a file from a folder, and opening a device for real can
  // have side effects.
  Opened top = open_beneath(fd_.get(), path, O_PATH | O_CLOEXEC, /*follow_links=*/true);
  if (!top.fd) {
    fail_open(top, path, kListing);
  }
  struct stat info {};
  if (::fstat(top.fd.get(), &info) != 0) {
    fail_errno(errno, path, kListing);
  }
  if (S_ISREG(info.st_mode)) {
    return {make_entry(std::move(path), info)};
  }
  if (!S_ISDIR(info.st_mode)) {
    fail(FileErrc::kNotAFile, path, "is neither a file nor a folder");
  }
  return Lister(fd_.get(), top.fd.get(), std::move(path), recursive).run();
}

UniqueFd SafeDir::make_dirs(std::string_view relative) const {
  const std::string path = check_relative(relative);
  // A fresh open, not dup(): a dup would share the root's directory offset with the caller.
  UniqueFd current(::openat(fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!current) {
    fail_errno(errno, path, kCreating);
  }
  // Names the part of the path that is in the way when it is not the whole path.
  const auto in_the_way = [&path](std::string_view so_far, std::string_view what) {
    return (so_far == path ? std::string("it") : quote_path(so_far)) + std::string(what);
  };
  std::size_t start = 0;
  while (start < path.size()) {
    const auto slash = path.find('/', start);
    const std::size_t end = slash == std::string::npos ? path.size() : slash;
    const std::string name = path.substr(start, end - start);
    const std::string_view so_far = std::string_view(path).substr(0, end);
    if (::mkdirat(current.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      fail_errno(errno, path, kCreating);
    }
    // O_NOFOLLOW: whatever mkdirat found already existing may be a link planted by anyone.
    UniqueFd next(
        ::openat(current.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) {
      const int err = errno;
      if (err == ELOOP || err == ENOTDIR) {
        if (is_link(current.get(), name)) {
          fail(FileErrc::kLinkOutside, path,
               in_the_way(so_far, " is a link, and PeerNet never writes through one"));
        }
        fail(FileErrc::kNotAFile, path, in_the_way(so_far, " is in the way and is not a folder"));
      }
      fail_errno(err, path, kCreating);
    }
    current = std::move(next);
    start = end + 1;
  }
  return current;
}

std::uint64_t SafeDir::free_bytes() const {
  struct statvfs info {};
  if (::fstatvfs(fd_.get(), &info) != 0) {
    const int err = errno;
    throw FileError(FileErrc::kIo, "the free space of the shared folder could not be read (" +
                                       std::system_category().message(err) + ")");
  }
  return static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
}

}  // namespace peernet::files
