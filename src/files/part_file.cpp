#include "files/part_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

namespace peernet::files {
namespace {

constexpr std::array<char, 8> kMagic{'P', 'N', 'P', 'A', 'R', 'T', '0', '1'};
constexpr std::size_t kHeaderBytes = 64;
constexpr std::size_t kSlotBytes = 32;

struct StateHeader {
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::uint32_t chunk = 0;
  Digest path_digest{};
};

std::array<std::byte, kHeaderBytes> encode_header(const StateHeader& header) {
  std::array<std::byte, kHeaderBytes> bytes{};
  std::memcpy(bytes.data(), kMagic.data(), kMagic.size());
  std::memcpy(bytes.data() + 8, &header.size, sizeof header.size);
  std::memcpy(bytes.data() + 16, &header.mtime, sizeof header.mtime);
  std::memcpy(bytes.data() + 24, &header.chunk, sizeof header.chunk);
  std::memcpy(bytes.data() + 32, header.path_digest.data(), header.path_digest.size());
  return bytes;
}

std::optional<StateHeader> decode_header(const std::array<std::byte, kHeaderBytes>& bytes) {
  if (std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) {
    return std::nullopt;
  }
  StateHeader header;
  std::memcpy(&header.size, bytes.data() + 8, sizeof header.size);
  std::memcpy(&header.mtime, bytes.data() + 16, sizeof header.mtime);
  std::memcpy(&header.chunk, bytes.data() + 24, sizeof header.chunk);
  std::memcpy(header.path_digest.data(), bytes.data() + 32, header.path_digest.size());
  return header;
}

Digest digest_of(std::string_view text) {
  return Sha256::of(std::as_bytes(std::span(text.data(), text.size())));
}

[[noreturn]] void fail(int error, const std::string& what) {
  const FileErrc code = (error == ENOSPC || error == EDQUOT) ? FileErrc::kNoSpace
                        : (error == ELOOP)                   ? FileErrc::kLinkOutside
                        : (error == EACCES || error == EPERM || error == EROFS)
                            ? FileErrc::kPermission
                            : FileErrc::kIo;
  throw FileError(code, what + ": " + std::strerror(error));
}

void write_all(int fd, std::span<const std::byte> data, std::uint64_t offset,
               const std::string& what) {
  while (!data.empty()) {
    const ssize_t written = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      fail(errno, what);
    }
    data = data.subspan(static_cast<std::size_t>(written));
    offset += static_cast<std::uint64_t>(written);
  }
}

/// Reads exactly `out.size()` bytes; false at an early end of file.
bool read_all(int fd, std::span<std::byte> out, std::uint64_t offset) {
  while (!out.empty()) {
    const ssize_t got = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return false;
    }
    out = out.subspan(static_cast<std::size_t>(got));
    offset += static_cast<std::uint64_t>(got);
  }
  return true;
}

/// Adds `index` to sorted, disjoint, non-adjacent ranges.
void insert(Ranges& ranges, std::uint64_t index) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), index,
                             [](std::uint64_t i, const auto& range) { return i < range.first; });
  if (it != ranges.begin()) {
    auto previous = std::prev(it);
    if (index < previous->second) {
      return;
    }
    if (index == previous->second) {
      previous->second = index + 1;
      if (it != ranges.end() && it->first == index + 1) {
        previous->second = it->second;
        ranges.erase(it);
      }
      return;
    }
  }
  if (it != ranges.end() && it->first == index + 1) {
    it->first = index;
    return;
  }
  ranges.insert(it, {index, index + 1});
}

}  // namespace

PartFile::PartFile(int dir_fd, std::string name, Source source, bool overwrite,
                   std::function<void()> busy)
    : dir_fd_(dir_fd),
      name_(std::move(name)),
      part_name_("." + name_ + ".peernet-part"),
      state_name_("." + name_ + ".peernet-state"),
      source_(std::move(source)),
      overwrite_(overwrite),
      busy_(std::move(busy)) {
  if (name_.empty() || name_ == "." || name_ == ".." || name_.find('/') != std::string::npos ||
      part_name_.size() > 255) {
    throw FileError(FileErrc::kBadPath, "\"" + name_ + "\" is not a usable file name");
  }
  struct stat existing {};
  if (::fstatat(dir_fd_, name_.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(existing.st_mode)) {
      throw FileError(FileErrc::kExists, "\"" + name_ + "\" exists and is a folder");
    }
    if (!overwrite_) {
      throw FileError(FileErrc::kExists, "\"" + name_ + "\" exists; use --overwrite to replace it");
    }
  }
  // The hidden names are PeerNet's own: a link planted under one is removed, never followed.
  for (const std::string* own : {&part_name_, &state_name_}) {
    struct stat planted {};
    if (::fstatat(dir_fd_, own->c_str(), &planted, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(planted.st_mode)) {
      ::unlinkat(dir_fd_, own->c_str(), 0);
    }
  }
  // One writer per partial file: a second transfer of the same name (another peer, or another
  // channel) must not write over this one's chunks or rename its half-written bytes into place.
  state_.reset(
      ::openat(dir_fd_, state_name_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!state_) {
    fail(errno, "cannot open \"" + state_name_ + "\"");
  }
  if (::flock(state_.get(), LOCK_EX | LOCK_NB) != 0) {
    throw FileError(FileErrc::kBusy, "\"" + name_ + "\" is being received by another transfer");
  }
  if (!try_resume()) {
    open_fresh();
  }
}

PartFile::~PartFile() = default;

bool PartFile::complete() const noexcept { return covered(have_) == chunks_; }

std::uint64_t PartFile::chunk_size(std::uint64_t index) const {
  const std::uint64_t offset = index * source_.chunk;
  return std::min<std::uint64_t>(source_.chunk, source_.size - offset);
}

bool PartFile::try_resume() {
  data_.reset(::openat(dir_fd_, part_name_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!data_) {
    return false;
  }
  std::array<std::byte, kHeaderBytes> header_bytes{};
  if (!read_all(state_.get(), header_bytes, 0)) {
    return false;
  }
  const auto header = decode_header(header_bytes);
  if (!header || header->size != source_.size || header->mtime != source_.mtime ||
      header->chunk != source_.chunk || header->path_digest != digest_of(source_.path)) {
    return false;
  }
  chunks_ = chunk_count(source_.size, source_.chunk);
  std::vector<std::byte> slots(chunks_ * kSlotBytes);
  if (!read_all(state_.get(), slots, kHeaderBytes)) {
    return false;
  }
  std::vector<std::byte> buffer(source_.chunk);
  for (std::uint64_t index = 0; index < chunks_; ++index) {
    tick(index);
    Digest slot{};
    std::copy_n(slots.begin() + static_cast<std::ptrdiff_t>(index * kSlotBytes), kSlotBytes,
                slot.begin());
    if (slot == Digest{}) {
      continue;
    }
    const std::span<std::byte> data(buffer.data(), chunk_size(index));
    if (!read_all(data_.get(), data, index * source_.chunk) || Sha256::of(data) != slot) {
      continue;  // torn by a crash: fetched again
    }
    if (hashed_ == index) {
      whole_.update(data);
      ++hashed_;
    }
    insert(have_, index);
    bytes_present_ += data.size();
  }
  check_space();
  return true;
}

void PartFile::open_fresh() {
  // Close before unlinking, so that the old bytes' space is free when the space is checked.
  data_.reset();
  ::unlinkat(dir_fd_, part_name_.c_str(), 0);
  if (::ftruncate(state_.get(), 0) != 0) {
    fail(errno, "cannot write \"" + state_name_ + "\"");
  }
  chunks_ = chunk_count(source_.size, source_.chunk);
  have_.clear();
  bytes_present_ = 0;
  whole_ = Sha256();
  hashed_ = 0;
  check_space();
  data_.reset(::openat(dir_fd_, part_name_.c_str(),
                       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!data_) {
    fail(errno, "cannot create \"" + part_name_ + "\"");
  }
  if (source_.size > 0 && ::fallocate(data_.get(), 0, 0, static_cast<off_t>(source_.size)) != 0 &&
      errno != EOPNOTSUPP) {
    // Reserved now, so that a full disk shows before the transfer rather than in it. Where the
    // file system cannot reserve, the writes will tell.
    const int error = errno;
    discard();
    fail(error, "cannot reserve " + std::to_string(source_.size) + " bytes for \"" + name_ + "\"");
  }
  const StateHeader header{source_.size, source_.mtime, source_.chunk, digest_of(source_.path)};
  write_all(state_.get(), encode_header(header), 0, "cannot write \"" + state_name_ + "\"");
  if (::ftruncate(state_.get(), static_cast<off_t>(kHeaderBytes + chunks_ * kSlotBytes)) != 0) {
    fail(errno, "cannot write \"" + state_name_ + "\"");
  }
}

void PartFile::check_space() const {
  struct statvfs fs {};
  if (::fstatvfs(dir_fd_, &fs) != 0) {
    return;  // unknown: the reservation or the writes will tell
  }
  // What the partial file holds already (it was reserved whole) needs no more room.
  std::uint64_t allocated = 0;
  struct stat status {};
  if (data_ && ::fstat(data_.get(), &status) == 0) {
    allocated = static_cast<std::uint64_t>(status.st_blocks) * 512;
  }
  const std::uint64_t free = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  const std::uint64_t needed = source_.size > allocated ? source_.size - allocated : 0;
  if (needed > free) {
    throw FileError(FileErrc::kNoSpace, "\"" + name_ + "\" needs " + std::to_string(needed) +
                                            " more bytes and the folder has " +
                                            std::to_string(free) + " free");
  }
}

void PartFile::tick(std::uint64_t index) const {
  if (busy_ && index % kBusyEvery == kBusyEvery - 1) {
    busy_();
  }
}

void PartFile::restart(const Source& source) {
  source_ = source;
  open_fresh();
}

void PartFile::hash_through(std::uint64_t index) {
  std::vector<std::byte> buffer;
  while (hashed_ < index && contains(have_, hashed_)) {
    tick(hashed_);
    buffer.resize(chunk_size(hashed_));
    if (!read_all(data_.get(), buffer, hashed_ * source_.chunk)) {
      fail(EIO, "cannot read back \"" + part_name_ + "\"");
    }
    whole_.update(buffer);
    ++hashed_;
  }
}

bool PartFile::write(std::uint64_t index, std::span<const std::byte> data, const Digest& digest) {
  if (index >= chunks_ || data.size() != chunk_size(index) || Sha256::of(data) != digest) {
    return false;
  }
  if (contains(have_, index)) {
    return true;
  }
  write_all(data_.get(), data, index * source_.chunk, "cannot write \"" + part_name_ + "\"");
  write_all(state_.get(), digest, kHeaderBytes + index * kSlotBytes,
            "cannot write \"" + state_name_ + "\"");
  hash_through(index);
  if (hashed_ == index) {
    whole_.update(data);
    ++hashed_;
  }
  insert(have_, index);
  bytes_present_ += data.size();
  return true;
}

std::optional<Digest> PartFile::commit(const Digest& expected) {
  hash_through(chunks_);
  if (hashed_ != chunks_) {
    return std::nullopt;
  }
  const Digest digest = whole_.finish();
  if (digest != expected) {
    discard();
    return std::nullopt;
  }
  // The copy keeps the source's modification time: footage is sorted by it.
  const std::array<timespec, 2> times{timespec{0, UTIME_OMIT},
                                      timespec{static_cast<time_t>(source_.mtime / 1'000'000'000),
                                               static_cast<long>(source_.mtime % 1'000'000'000)}};
  if (source_.mtime >= 0) {
    ::futimens(data_.get(), times.data());
  }
  if (::fsync(data_.get()) != 0) {
    fail(errno, "cannot flush \"" + part_name_ + "\"");
  }
  const unsigned flags = overwrite_ ? 0U : RENAME_NOREPLACE;
  if (::renameat2(dir_fd_, part_name_.c_str(), dir_fd_, name_.c_str(), flags) != 0) {
    if (errno == EEXIST) {
      throw FileError(FileErrc::kExists, "\"" + name_ + "\" appeared meanwhile; use --overwrite");
    }
    fail(errno, "cannot rename \"" + part_name_ + "\" to \"" + name_ + "\"");
  }
  ::unlinkat(dir_fd_, state_name_.c_str(), 0);
  ::fsync(dir_fd_);
  return digest;
}

void PartFile::discard() {
  ::unlinkat(dir_fd_, part_name_.c_str(), 0);
  ::unlinkat(dir_fd_, state_name_.c_str(), 0);
  have_.clear();
  bytes_present_ = 0;
}

}  // namespace peernet::files
