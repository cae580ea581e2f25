#pragma once

// A folder laid out like /sys, for tests of sensor discovery: made under the system's temporary
// folder with a unique name, removed with everything in it when the FakeSysfs goes.

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace peernet::test {

class FakeSysfs {
 public:
  FakeSysfs() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "peernet-sysfs-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    root_ = pattern;
  }
  ~FakeSysfs() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  FakeSysfs(const FakeSysfs&) = delete;
  FakeSysfs& operator=(const FakeSysfs&) = delete;

  /// The folder that stands for /sys.
  const std::filesystem::path& root() const noexcept { return root_; }

  /// `relative` inside the tree ("class/hwmon/hwmon0/name").
  std::filesystem::path path(std::string_view relative) const { return root_ / relative; }

  /// Makes the folder `relative` and its parents.
  std::filesystem::path folder(std::string_view relative) const {
    auto p = path(relative);
    std::filesystem::create_directories(p);
    return p;
  }

  /// Writes `content` to the file `relative`, making its parents; replaces whatever was there
  /// (a file, a symlink, a FIFO or a folder).
  std::filesystem::path write(std::string_view relative, std::string_view content) const {
    auto p = fresh(relative);
    std::ofstream out(p, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) {
      throw std::runtime_error("cannot write " + p.string());
    }
    return p;
  }

  /// Makes `relative` a symlink to `target` (as given: relative targets stay relative, as the
  /// kernel's are), making its parents; replaces whatever was there.
  std::filesystem::path symlink(std::string_view relative,
                                const std::filesystem::path& target) const {
    auto p = fresh(relative);
    std::filesystem::create_symlink(target, p);
    return p;
  }

  /// Makes `relative` a FIFO, which blocks a reader that opens it without O_NONBLOCK.
  std::filesystem::path fifo(std::string_view relative) const {
    auto p = fresh(relative);
    if (::mkfifo(p.c_str(), 0600) != 0) {
      throw std::system_error(errno, std::generic_category(), "mkfifo " + p.string());
    }
    return p;
  }

  /// Removes `relative` and whatever is in it.
  void remove(std::string_view relative) const { std::filesystem::remove_all(path(relative)); }

 private:
  std::filesystem::path fresh(std::string_view relative) const {
    auto p = path(relative);
    std::filesystem::create_directories(p.parent_path());
    std::filesystem::remove_all(p);
    return p;
  }

  std::filesystem::path root_;
};

}  // namespace peernet::test
