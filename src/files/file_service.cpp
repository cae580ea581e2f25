#include "files/file_service.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>

#include "files/chunk_sender.h"
#include "files/part_file.h"
#include "files/stat.h"
#include "files/wire.h"

namespace peernet::files {

/// One "files" channel: its requests, one at a time, and the transfer in progress.
class ServeSession : public std::enable_shared_from_this<ServeSession> {
 public:
  ServeSession(std::shared_ptr<const SafeDir> dir, bool writable, std::shared_ptr<Channel> channel,
               std::string peer)
      : dir_(std::move(dir)),
        writable_(writable),
        channel_(std::move(channel)),
        peer_(std::move(peer)) {}

  void start() {
    seen_open_ = channel_->is_open();
    channel_->on_message([weak = weak_from_this()](std::span<const std::byte> bytes, bool text) {
      if (auto self = weak.lock()) {
        self->on_message(bytes, text);
      }
    });
    channel_->on_close([weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->stop();
      }
    });
  }

  /// Stopped, or its channel was open and is not any more.
  bool closed() const { return stopped_ || (seen_open_ && !channel_->is_open()); }

  void stop() {
    if (stopped_) {
      return;
    }
    stopped_ = true;
    if (sender_) {
      sender_->cancel();
      sender_.reset();
      spdlog::info("{}: the channel closed while sending \"{}\"", peer_, transfer_path_);
    }
    if (upload_) {
      spdlog::info("{}: the channel closed while receiving \"{}\"; {} bytes kept for a resume",
                   peer_, transfer_path_, upload_->part.bytes_present());
      upload_.reset();
    }
  }

 private:
  struct Upload {
    Upload(std::uint64_t request, UniqueFd parent, const std::string& name, const Source& source,
           bool overwrite, std::function<void()> busy)
        : id(request),
          folder(std::move(parent)),
          part(folder.get(), name, source, overwrite, std::move(busy)) {}
    std::uint64_t id;
    UniqueFd folder;  // the PartFile works relative to it
    PartFile part;
  };

  void on_message(std::span<const std::byte> bytes, bool text) {
    seen_open_ = true;
    if (!text) {
      on_chunk(bytes);
      return;
    }
    Message message;
    try {
      message = decode({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    } catch (const WireError& error) {
      reply(Failure{0, "bad-request", error.what()});
      return;
    }
    const std::uint64_t id = std::visit([](const auto& m) { return m.id; }, message);
    try {
      if (const auto* list = std::get_if<ListRequest>(&message)) {
        on_list(*list);
      } else if (const auto* get = std::get_if<GetRequest>(&message)) {
        on_get(*get);
      } else if (const auto* put = std::get_if<PutRequest>(&message)) {
        on_put(*put);
      } else if (const auto* end = std::get_if<EndOfFile>(&message)) {
        on_end(*end);
      } else {
        reply(Failure{id, "bad-request", "a client does not send that message"});
      }
    } catch (const FileError& error) {
      spdlog::info("{}: refused: {}", peer_, error.what());
      reply(Failure{id, std::string(to_string(error.code())), error.what()});
    }
  }

  bool busy(std::uint64_t id) {
    if (sender_ || upload_) {
      reply(Failure{id, "busy", "a transfer is in progress on this channel"});
      return true;
    }
    return false;
  }

  void on_list(const ListRequest& request) {
    if (channel_->buffered_amount() > kMaxQueuedListing) {
      reply(Failure{request.id, "busy", "earlier listings are still being sent"});
      return;
    }
    for (const std::string& part :
         encode_listing(request.id, dir_->list(request.path, request.recursive))) {
      channel_->send_text(part);
    }
  }

  void on_get(const GetRequest& request) {
    if (busy(request.id)) {
      return;
    }
    refuse_partial(request.path);
    UniqueFd file = dir_->open_file(request.path);
    struct stat status {};
    if (::fstat(file.get(), &status) != 0) {
      throw FileError(FileErrc::kIo, "\"" + request.path + "\" cannot be read");
    }
    FileHeader header{request.id,
                      static_cast<std::uint64_t>(status.st_size),
                      mtime_ns(status),
                      kChunkBytes,
                      false,
                      {}};
    const std::uint64_t chunks = chunk_count(header.size, kChunkBytes);
    const auto& resume = request.resume;
    if (resume && resume->size == header.size && resume->mtime == header.mtime &&
        resume->chunk == kChunkBytes) {
      header.sending = complement(clip_have(resume->have), chunks);
    } else {
      header.restart = resume.has_value();
      if (chunks > 0) {
        header.sending = {{0, chunks}};
      }
    }
    std::uint64_t to_send = 0;
    for (const auto& [first, last] : header.sending) {
      to_send += std::min(last * kChunkBytes, header.size) - first * kChunkBytes;
    }
    if (!channel_->send_text(encode(header))) {
      return;
    }
    transfer_path_ = request.path;
    spdlog::info("{}: sending \"{}\" ({} bytes{})", peer_, request.path, to_send,
                 to_send == header.size ? "" : ", the rest of a resumed transfer");
    const auto started = std::chrono::steady_clock::now();
    sender_ = ChunkSender::create(
        channel_, std::move(file), {request.id, header.size, header.mtime, header.sending},
        {{}, [weak = weak_from_this(), started, to_send](const std::optional<Failure>& failure) {
           auto self = weak.lock();
           if (!self) {
             return;
           }
           self->sender_.reset();
           if (failure) {
             spdlog::warn("{}: sending \"{}\" failed: {}", self->peer_, self->transfer_path_,
                          failure->message);
             self->reply(*failure);
             return;
           }
           const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
           spdlog::info("{}: sent \"{}\": {} bytes in {:.2f} s", self->peer_, self->transfer_path_,
                        to_send, took.count());
         }});
    sender_->start();
  }

  void on_put(const PutRequest& request) {
    if (!writable_) {
      reply(Failure{request.id, "read-only",
                    "this share does not accept uploads (its owner can allow them with "
                    "\"peernet files serve --writable\")"});
      return;
    }
    if (busy(request.id)) {
      return;
    }
    const std::string path = check_relative(request.path);
    if (path.empty()) {
      throw FileError(FileErrc::kBadPath, "an upload needs a file name");
    }
    refuse_partial(path);
    const auto slash = path.rfind('/');
    const std::string parent = slash == std::string::npos ? std::string{} : path.substr(0, slash);
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    upload_ = std::make_unique<Upload>(
        request.id, dir_->make_dirs(parent), name,
        Source{path, request.size, request.mtime, kChunkBytes}, request.overwrite,
        [channel = channel_, id = request.id] { channel->send_text(encode(Working{id})); });
    transfer_path_ = path;
    spdlog::info("{}: receiving \"{}\" ({} bytes, {} already here)", peer_, path, request.size,
                 upload_->part.bytes_present());
    reply(Ready{request.id, kChunkBytes, clip_have(upload_->part.have())});
  }

  void on_chunk(std::span<const std::byte> bytes) {
    if (!upload_) {
      reply(Failure{0, "bad-request", "a chunk arrived with no upload in progress"});
      return;
    }
    const std::uint64_t id = upload_->id;
    const auto chunk = decode_chunk(bytes);
    try {
      if (!chunk || !upload_->part.write(chunk->index, chunk->data, chunk->digest)) {
        upload_.reset();
        reply(Failure{id, "checksum", "a chunk did not match its SHA-256 or its place"});
      }
    } catch (const FileError& error) {
      upload_.reset();
      reply(Failure{id, std::string(to_string(error.code())), error.what()});
    }
  }

  void on_end(const EndOfFile& end) {
    if (!upload_ || upload_->id != end.id) {
      reply(Failure{end.id, "bad-request", "\"end\" arrived with no upload in progress"});
      return;
    }
    auto upload = std::move(upload_);
    if (!upload->part.complete()) {
      reply(Failure{end.id, "bad-request", "\"end\" arrived before every chunk"});
      return;
    }
    if (!upload->part.commit(end.sha256)) {
      spdlog::warn("{}: \"{}\" did not match its SHA-256; discarded", peer_, transfer_path_);
      reply(Failure{end.id, "checksum",
                    "the file's SHA-256 does not match what arrived; it was discarded"});
      return;
    }
    spdlog::info("{}: received \"{}\" ({} bytes)", peer_, transfer_path_,
                 upload->part.source().size);
    reply(Done{end.id});
  }

  void reply(const Message& message) { channel_->send_text(encode(message)); }

  /// PeerNet's own unfinished files are neither served nor written to by name.
  static void refuse_partial(const std::string& path) {
    const auto slash = path.rfind('/');
    if (is_partial_name(slash == std::string::npos ? path : path.substr(slash + 1))) {
      throw FileError(FileErrc::kBadPath, "\"" + path + "\" is the name of an unfinished transfer");
    }
  }

  /// Listings queued beyond this are refused until the channel drains.
  static constexpr std::uint64_t kMaxQueuedListing = std::uint64_t{8} * 1024 * 1024;

  std::shared_ptr<const SafeDir> dir_;
  bool writable_;
  std::shared_ptr<Channel> channel_;
  std::string peer_;
  std::shared_ptr<ChunkSender> sender_;
  std::unique_ptr<Upload> upload_;
  std::string transfer_path_;
  bool stopped_ = false;
  bool seen_open_ = false;
};

FileService::FileService(const std::filesystem::path& root, Options options)
    : dir_(std::make_shared<const SafeDir>(root)), options_(options) {}

FileService::~FileService() {
  for (const auto& session : sessions_) {
    session->stop();
  }
}

void FileService::attach(const std::shared_ptr<Connection>& connection, const std::string& peer) {
  // What has closed goes here rather than in close callbacks, which run inside the objects that
  // the service may be the last to hold.
  std::erase_if(sessions_, [](const auto& session) { return session->closed(); });
  std::erase_if(connections_, [](const auto& open) { return !open->is_open(); });
  connections_.push_back(connection);
  // A connection that fails closes its channels without their close callbacks: stop what they
  // were doing (a sender waiting on a channel that will never drain, an upload's open files).
  connection->on_closed([this](const Error&) {
    for (const auto& session : sessions_) {
      if (session->closed()) {
        session->stop();
      }
    }
  });
  connection->on_channel([this, peer](const std::shared_ptr<Channel>& channel) {
    if (channel->label() != kChannelLabel) {
      spdlog::info(R"({}: closing a channel labelled "{}", not "{}")", peer, channel->label(),
                   kChannelLabel);
      channel->close();
      return;
    }
    auto session = std::make_shared<ServeSession>(dir_, options_.writable, channel, peer);
    sessions_.push_back(session);
    session->start();
  });
}

}  // namespace peernet::files
