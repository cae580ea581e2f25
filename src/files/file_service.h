#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <peernet/peernet.h>

#include "files/safe_dir.h"

namespace peernet::files {

class ServeSession;

/// The serving side of the file protocol: one shared folder, answering list, get and (when
/// writable) put on every "files" channel attached to it. Runs on the client's thread.
class FileService {
 public:
  struct Options {
    bool writable = false;  ///< accept uploads ("peernet files put")
  };

  /// Opens `root`; throws FileError when it is not a readable folder.
  FileService(const std::filesystem::path& root, Options options);
  ~FileService();
  FileService(const FileService&) = delete;
  FileService& operator=(const FileService&) = delete;

  /// Keeps `connection` open and serves the requests on each "files" channel its peer opens,
  /// until it closes; `peer` names the other side in logs. Call on the client's thread, from
  /// ServeHandlers::connection; the service must outlive the Client that calls it.
  void attach(const std::shared_ptr<Connection>& connection, const std::string& peer);

  const SafeDir& dir() const noexcept { return *dir_; }

 private:
  std::shared_ptr<const SafeDir> dir_;
  Options options_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::vector<std::shared_ptr<ServeSession>> sessions_;
};

}  // namespace peernet::files
