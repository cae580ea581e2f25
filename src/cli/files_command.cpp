#include "cli/files_command.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/progress.h"
#include "cli/serving.h"
#include "file.pb.h"
#include "files/file_client.h"
#include "files/file_service.h"
#include "files/part_file.h"
#include "files/safe_dir.h"
#include "files/stat.h"
#include "files/wire.h"

namespace peernet::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct ServeArgs {
  std::string dir;
  std::string name;
  std::string id;
  std::string state_dir;
  bool writable = false;
};

struct RemoteArgs {
  std::string server;  // --from / --to
  int retry_for = 60;
  int stall_timeout = 15;
};

struct ListArgs {
  RemoteArgs remote;
  std::string path;
  bool recursive = false;
  bool json = false;
};

struct GetArgs {
  RemoteArgs remote;
  std::vector<std::string> paths;
  std::string output = ".";
  bool overwrite = false;
  bool skip_existing = false;
  bool print_sha256 = false;
};

struct PutArgs {
  RemoteArgs remote;
  std::vector<std::string> paths;
  std::string dest;
  bool overwrite = false;
};

// ---------------------------------------------------------------------------------------------
// Serving

int serve(const GlobalOptions& global, const ServeArgs& args) {
  // Before the client's thread starts, so that it inherits the mask and the signal reaches us.
  block_stop_signals();
  files::FileService service(args.dir, {args.writable});
  const fs::path root = fs::absolute(args.dir).lexically_normal();
  // "~/footage/" and "." have no file name of their own: take the folder's.
  std::string share_name = args.name;
  if (share_name.empty()) {
    share_name = (root.has_filename() ? root : root.parent_path()).filename().string();
  }
  if (share_name.empty()) {
    share_name = "share";
  }
  const std::string id = !args.id.empty() ? args.id : default_server_id("files", share_name);

  Serving serving;
  serving.server.set_unique_id(id);
  serving.server.set_display_name(share_name);
  Service* offered = serving.server.add_services();
  offered->set_protocol(std::string(files::kProtocol));
  offered->set_version(std::string(files::kVersion));
  offered->SetExtension(file::share_name, share_name);
  offered->SetExtension(file::writable, args.writable);
  serving.state_dir = args.state_dir.empty() ? default_state_dir() : fs::path(args.state_dir);
  serving.owner = root.string();
  serving.attach = [&service](const std::shared_ptr<Connection>& connection,
                              const std::string& peer) { service.attach(connection, peer); };
  serving.banner = "sharing " + service.dir().root().string() + " as \"" + share_name + "\" (" +
                   id + (args.writable ? ", writable" : ", read-only") + ")";
  Client client(global.client);
  return run_server(client, serving);
}

// ---------------------------------------------------------------------------------------------
// The knocking side

bool worth_retrying(Errc code) {
  switch (code) {
    case Errc::kClosed:
    case Errc::kIceFailed:
    case Errc::kNoAnswer:
    case Errc::kNotFound:
    case Errc::kNoSuchService:
    case Errc::kUnreachable:
      return true;
    default:
      return false;
  }
}

/// The connection to the chosen file server, opened again after it breaks.
class Session {
 public:
  Session(const GlobalOptions& global, const RemoteArgs& args, const char* flag)
      : client_(global.client), args_(args), flag_(flag) {}

  files::FileClient& files() {
    if (!files_) {
      const auto started = Clock::now();
      const Server server = choose_server(client_, std::string(files::kProtocol),
                                          std::string(files::kVersion), args_.server, flag_);
      const auto found = Clock::now();
      connection_ = client_.connect(server, std::string(files::kProtocol),
                                    {std::string(files::kChannelLabel)});
      const auto ms = [](Clock::duration d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
      };
      spdlog::info("connected to \"{}\": found in {} ms, knock to open channel {} ms",
                   server.display_name(), ms(found - started), ms(Clock::now() - found));
      files_ = std::make_unique<files::FileClient>(
          connection_, files::FileClient::Options{std::chrono::seconds{args_.stall_timeout}});
    }
    return *files_;
  }

  /// Runs `attempt` until it succeeds; after a broken connection, reconnects (for up to
  /// --retry-for seconds) and runs it again, which resumes where the last one stopped.
  template <class Attempt>
  auto with_retries(Attempt attempt, const std::function<void()>& on_break) {
    std::optional<Clock::time_point> busy_since;
    for (;;) {
      try {
        return attempt(files());
      } catch (const Error& error) {
        if (!worth_retrying(error.code()) || args_.retry_for == 0) {
          throw;
        }
        on_break();
        std::fprintf(stderr, "peernet: %s; reconnecting (for up to %d s)\n",
                     printable(error.what()).c_str(), args_.retry_for);
        reconnect();
      } catch (const files::TransferError& error) {
        // After a reconnect the server may still hold the file for the transfer we gave up on,
        // until it sees that connection end: ask again shortly, with the same patience.
        const auto now = Clock::now();
        busy_since = busy_since.value_or(now);
        if (error.code() != "busy" || now - *busy_since > std::chrono::seconds{args_.retry_for}) {
          throw;
        }
        on_break();
        std::this_thread::sleep_for(std::chrono::milliseconds{250});
      }
    }
  }

 private:
  void drop() {
    files_.reset();
    if (connection_) {
      connection_->close();
      connection_.reset();
    }
  }

  void reconnect() {
    drop();
    const auto deadline = Clock::now() + std::chrono::seconds{args_.retry_for};
    auto pause = std::chrono::milliseconds{250};
    for (;;) {
      try {
        files();
        return;
      } catch (const Error& error) {
        drop();
        if (!worth_retrying(error.code()) || Clock::now() + pause > deadline) {
          throw;
        }
        spdlog::info("reconnecting failed: {}", error.what());
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds{4000});
    }
  }

  Client client_;
  const RemoteArgs& args_;
  const char* flag_;
  std::shared_ptr<Connection> connection_;
  std::unique_ptr<files::FileClient> files_;
};

std::string format_time(std::int64_t mtime_ns) {
  const auto seconds = static_cast<std::time_t>(mtime_ns / 1'000'000'000);
  std::tm local{};
  ::localtime_r(&seconds, &local);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M", &local);
  return text.data();
}

int list(const GlobalOptions& global, const ListArgs& args) {
  Session session(global, args.remote, "--from");
  const auto entries = session.files().list(args.path, args.recursive);
  if (args.json) {
    nlohmann::json array = nlohmann::json::array();
    for (const auto& entry : entries) {
      nlohmann::json object{{"path", entry.path}, {"mtime_ns", entry.mtime}};
      object["type"] = entry.directory ? "dir" : "file";
      if (!entry.directory) {
        object["size"] = entry.size;
      }
      array.push_back(std::move(object));
    }
    std::printf("%s\n",
                array.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kOk;
  }
  for (const auto& entry : entries) {
    const std::string size = entry.directory ? "-" : format_bytes(entry.size);
    std::printf("%10s  %s  %s%s\n", size.c_str(), format_time(entry.mtime).c_str(),
                printable(entry.path).c_str(), entry.directory ? "/" : "");
  }
  return kOk;
}

Progress::Options progress_options() {
  Progress::Options options;
  options.terminal = Progress::is_terminal(stderr, options.width);
  return options;
}

/// Watches one transfer for a person; a resumed attempt starts a new bar.
class Watch {
 public:
  explicit Watch(std::string label) : label_(std::move(label)) {}

  files::TransferObserver observer() {
    return {[this](std::uint64_t total, std::uint64_t already) {
              progress_ =
                  std::make_unique<Progress>(stderr, label_, total, already, progress_options());
            },
            [this](std::uint64_t bytes) {
              moved_ += bytes;
              if (progress_) {
                progress_->add(bytes);
              }
            }};
  }
  void finish() {
    if (progress_) {
      progress_->finish();
    }
  }
  void abandon() {
    if (progress_) {
      progress_->abandon();
    }
  }
  std::uint64_t moved() const { return moved_; }

 private:
  std::string label_;
  std::unique_ptr<Progress> progress_;
  std::uint64_t moved_ = 0;
};

struct GetJob {
  std::string remote;
  std::string local;  // relative to the output folder, checked
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
};

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string{} : path.substr(0, slash);
}

std::string join(const std::string& a, const std::string& b) {
  return a.empty() ? b : b.empty() ? a : a + "/" + b;
}

/// What to fetch for each path asked for: a file, or every file beneath a folder (whose empty
/// folders are made at once). Every name the server sends is checked before it becomes a path.
std::vector<GetJob> plan_get(files::FileClient& client, const files::SafeDir& out,
                             const GetArgs& args) {
  std::vector<GetJob> jobs;
  for (const std::string& asked : args.paths) {
    const std::string remote = files::check_relative(asked);
    const auto entries = client.list(remote, /*recursive=*/true);
    if (entries.size() == 1 && !entries.front().directory && entries.front().path == remote) {
      jobs.push_back({remote, files::check_relative(base_name(remote)), entries.front().size,
                      entries.front().mtime});
      continue;
    }
    const std::string prefix = remote.empty() ? std::string{} : remote + "/";
    const std::string base = base_name(remote);
    out.make_dirs(base);
    for (const auto& entry : entries) {
      if (entry.path.compare(0, prefix.size(), prefix) != 0) {
        throw files::TransferError("bad-reply", "the file server listed \"" + entry.path +
                                                    "\", which is not inside \"" + remote + "\"");
      }
      const std::string local = files::check_relative(join(base, entry.path.substr(prefix.size())));
      if (entry.directory) {
        out.make_dirs(local);
      } else {
        jobs.push_back({entry.path, local, entry.size, entry.mtime});
      }
    }
  }
  return jobs;
}

bool same_file_there(const files::SafeDir& out, const GetJob& job) {
  struct stat status {};
  return ::fstatat(out.fd(), job.local.c_str(), &status, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISREG(status.st_mode) && static_cast<std::uint64_t>(status.st_size) == job.size;
}

int get(const GlobalOptions& global, const GetArgs& args) {
  std::error_code ignored;
  fs::create_directories(args.output, ignored);
  const files::SafeDir out(args.output);
  Session session(global, args.remote, "--from");
  std::vector<GetJob> jobs = plan_get(session.files(), out, args);
  if (args.skip_existing) {
    std::erase_if(jobs, [&out](const GetJob& job) { return same_file_there(out, job); });
  }
  // What partial files from earlier attempts hold (reserved whole) needs no more room.
  std::uint64_t total = 0;
  for (const auto& job : jobs) {
    const std::string parent = parent_of(job.local);
    const std::string part = join(parent, "." + base_name(job.local) + ".peernet-part");
    struct stat status {};
    const std::uint64_t held =
        ::fstatat(out.fd(), part.c_str(), &status, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISREG(status.st_mode)
            ? static_cast<std::uint64_t>(status.st_blocks) * 512
            : 0;
    total += job.size > held ? job.size - held : 0;
  }
  if (const std::uint64_t free = out.free_bytes(); total > free) {
    throw files::FileError(files::FileErrc::kNoSpace, "the files need " + format_bytes(total) +
                                                          " and " + args.output + " has " +
                                                          format_bytes(free) + " free");
  }
  const auto started = Clock::now();
  std::uint64_t moved = 0;
  for (const GetJob& job : jobs) {
    const UniqueFd folder = out.make_dirs(parent_of(job.local));
    files::PartFile part(folder.get(), base_name(job.local),
                         files::Source{job.remote, job.size, job.mtime, files::kChunkBytes},
                         args.overwrite);
    Watch watch(job.local);
    const files::Digest digest = session.with_retries(
        [&](files::FileClient& client) { return client.get(job.remote, part, watch.observer()); },
        [&watch] { watch.abandon(); });
    watch.finish();
    moved += watch.moved();
    if (args.print_sha256) {
      std::printf("%s  %s\n", files::to_hex(digest).c_str(),
                  (fs::path(args.output) / job.local).c_str());
    }
  }
  const std::chrono::duration<double> took = Clock::now() - started;
  std::fprintf(
      stderr, "peernet: %zu file%s, %s received in %s (%s)\n", jobs.size(),
      jobs.size() == 1 ? "" : "s", format_bytes(moved).c_str(),
      format_duration(took.count()).c_str(),
      format_rate(took.count() > 0 ? static_cast<double>(moved) / took.count() : 0).c_str());
  return kOk;
}

struct PutJob {
  fs::path local;
  std::string remote;
};

std::vector<PutJob> plan_put(const PutArgs& args) {
  const std::string dest = files::check_relative(args.dest);
  std::vector<PutJob> jobs;
  for (const std::string& given : args.paths) {
    const fs::path path = fs::path(given).lexically_normal();
    const std::string name =
        (path.filename().empty() ? path.parent_path() : path).filename().string();
    if (fs::is_regular_file(path)) {
      jobs.push_back({path, files::check_relative(join(dest, name))});
    } else if (fs::is_directory(path)) {
      for (const auto& entry : fs::recursive_directory_iterator(path)) {
        if (entry.is_regular_file() && !entry.is_symlink() &&
            !files::is_partial_name(entry.path().filename().string())) {
          const std::string relative = entry.path().lexically_relative(path).generic_string();
          jobs.push_back({entry.path(), files::check_relative(join(join(dest, name), relative))});
        }
      }
    } else {
      throw files::FileError(files::FileErrc::kNotFound,
                             "\"" + given + "\": no such file or folder");
    }
  }
  return jobs;
}

int put(const GlobalOptions& global, const PutArgs& args) {
  const std::vector<PutJob> jobs = plan_put(args);
  Session session(global, args.remote, "--to");
  session.files();  // the first connection fails at once: retrying is for connections that break
  const auto started = Clock::now();
  std::uint64_t moved = 0;
  for (const PutJob& job : jobs) {
    Watch watch(job.remote);
    session.with_retries(
        [&](files::FileClient& client) {
          UniqueFd file(::open(job.local.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
          struct stat status {};
          if (!file || ::fstat(file.get(), &status) != 0) {
            throw files::FileError(files::FileErrc::kIo, "cannot read " + job.local.string() +
                                                             ": " + std::strerror(errno));
          }
          client.put(job.remote, std::move(file), static_cast<std::uint64_t>(status.st_size),
                     files::mtime_ns(status), args.overwrite, watch.observer());
          return 0;
        },
        [&watch] { watch.abandon(); });
    watch.finish();
    moved += watch.moved();
  }
  const std::chrono::duration<double> took = Clock::now() - started;
  std::fprintf(stderr, "peernet: %zu file%s, %s sent in %s\n", jobs.size(),
               jobs.size() == 1 ? "" : "s", format_bytes(moved).c_str(),
               format_duration(took.count()).c_str());
  return kOk;
}

void add_remote_options(CLI::App& command, RemoteArgs& args, const char* flag,
                        bool transfers = true) {
  command.add_option(flag, args.server,
                     "the file server (its name or id) when the room has several");
  if (!transfers) {
    return;
  }
  command
      .add_option("--retry-for", args.retry_for,
                  "seconds to keep reconnecting after a broken connection (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  command
      .add_option("--stall-timeout", args.stall_timeout,
                  "seconds without data after which a connection counts as broken")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
}

}  // namespace

void add_files_command(CLI::App& app, const GlobalOptions& global, std::function<int()>& run) {
  CLI::App* files = app.add_subcommand("files", "share a folder, or list and move files of one");
  files->require_subcommand(1);

  auto serve_args = std::make_shared<ServeArgs>();
  CLI::App* serve_command = files->add_subcommand("serve", "share DIR in the room");
  serve_command->add_option("DIR", serve_args->dir, "the folder to share")
      ->required()
      ->check(CLI::ExistingDirectory);
  serve_command->add_option("--name", serve_args->name, "the share's name (default: DIR's name)");
  serve_command->add_option("--id", serve_args->id, "the server's id (default: files-HOST-NAME)");
  serve_command->add_flag("--writable", serve_args->writable, "accept uploads (peernet files put)");
  serve_command->add_option("--state-dir", serve_args->state_dir,
                            "where to keep the registration's token (default: "
                            "$XDG_STATE_HOME/peernet or ~/.local/state/peernet)");
  serve_command->callback([&run, &global, serve_args] {
    run = [&global, serve_args] { return serve(global, *serve_args); };
  });

  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list_command = files->add_subcommand("ls", "list a shared folder");
  list_command->add_option("PATH", list_args->path, "a folder or file in the share (default: all)");
  list_command->add_flag("-r,--recursive", list_args->recursive, "everything beneath PATH");
  list_command->add_flag("--json", list_args->json, "print JSON");
  add_remote_options(*list_command, list_args->remote, "--from", /*transfers=*/false);
  list_command->callback([&run, &global, list_args] {
    run = [&global, list_args] { return list(global, *list_args); };
  });

  auto get_args = std::make_shared<GetArgs>();
  CLI::App* get_command = files->add_subcommand("get", "fetch files or folders");
  get_command->add_option("PATH", get_args->paths, "files or folders in the share")->required();
  get_command->add_option("-o,--output", get_args->output, "the folder to put them in")
      ->capture_default_str();
  get_command->add_flag("--overwrite", get_args->overwrite, "replace files that exist");
  get_command->add_flag("--skip-existing", get_args->skip_existing,
                        "leave out files that exist with the same size");
  get_command->add_flag("--sha256", get_args->print_sha256,
                        "print each file's SHA-256 as sha256sum does");
  add_remote_options(*get_command, get_args->remote, "--from");
  get_command->callback(
      [&run, &global, get_args] { run = [&global, get_args] { return get(global, *get_args); }; });

  auto put_args = std::make_shared<PutArgs>();
  CLI::App* put_command = files->add_subcommand("put", "send files or folders to a writable share");
  put_command->add_option("PATH", put_args->paths, "local files or folders")->required();
  put_command->add_option("--dest", put_args->dest, "the folder in the share (default: its top)");
  put_command->add_flag("--overwrite", put_args->overwrite, "replace files that exist");
  add_remote_options(*put_command, put_args->remote, "--to");
  put_command->callback(
      [&run, &global, put_args] { run = [&global, put_args] { return put(global, *put_args); }; });
}

}  // namespace peernet::cli
