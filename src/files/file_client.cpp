#include "files/file_client.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <utility>

#include "files/chunk_sender.h"
#include "files/wire.h"

namespace peernet::files {

/// Shared between the caller's thread, which starts a request and waits, and the client's
/// thread, where its replies arrive. Everything in it is guarded by `mutex`; nothing here calls
/// the channel with the mutex held, since the channel may hop to the client's thread.
struct FileClient::State : std::enable_shared_from_this<FileClient::State> {
  enum class Kind { kNone, kList, kGet, kPut };
  using Clock = std::chrono::steady_clock;

  // Recursive: a ChunkSender reports from inside calls this state makes with the mutex held.
  std::recursive_mutex mutex;
  std::condition_variable_any changed;
  std::shared_ptr<Channel> channel;

  Kind kind = Kind::kNone;
  std::uint64_t id = 0;
  bool finished = false;
  std::exception_ptr error;
  Clock::time_point last_activity;
  TransferObserver observer;
  bool closed = false;

  // list
  std::vector<Entry> entries;
  // get
  PartFile* part = nullptr;
  std::optional<Digest> expected;
  // put
  UniqueFd upload;
  std::uint64_t upload_size = 0;
  std::int64_t upload_mtime = 0;
  std::shared_ptr<ChunkSender> sender;

  void begin(Kind what, std::uint64_t request, TransferObserver watch) {
    const std::lock_guard lock(mutex);
    if (closed) {
      throw Error(Errc::kClosed, "the connection to the file server closed");
    }
    kind = what;
    id = request;
    finished = false;
    error = nullptr;
    observer = std::move(watch);
    entries.clear();
    last_activity = Clock::now();
  }

  /// Waits for the request to finish; throws what it failed with, or kClosed on a stall.
  void wait(std::chrono::milliseconds stall_timeout) {
    std::unique_lock lock(mutex);
    while (!finished) {
      changed.wait_for(lock, std::chrono::milliseconds{250});
      if (!finished && Clock::now() - last_activity > stall_timeout) {
        finished = true;
        closed = true;  // a late reply must not be taken for the next request's
        error = std::make_exception_ptr(Error(
            Errc::kClosed, "nothing arrived for " + std::to_string(stall_timeout.count() / 1000) +
                               " s; the connection seems broken"));
      }
    }
    kind = Kind::kNone;
    part = nullptr;
    observer = {};
    auto stalled_sender = std::exchange(sender, {});
    auto failure = std::exchange(error, nullptr);
    lock.unlock();
    if (stalled_sender) {
      stalled_sender->cancel();  // hops onto the client's thread: never with the mutex held
    }
    if (failure) {
      std::rethrow_exception(failure);
    }
  }

  // Called with `mutex` held, on the client's thread.
  void finish(std::exception_ptr failure = nullptr) {
    if (sender) {
      sender->cancel();
      sender.reset();
    }
    if (!finished) {
      finished = true;
      error = std::move(failure);
      changed.notify_all();
    }
  }
  template <class E>
  void fail(E failure) {
    finish(std::make_exception_ptr(std::move(failure)));
  }

  void on_close() {
    const std::lock_guard lock(mutex);
    closed = true;
    fail(Error(Errc::kClosed, "the connection to the file server closed"));
  }

  void on_message(std::span<const std::byte> bytes, bool text) {
    const std::lock_guard lock(mutex);
    last_activity = Clock::now();
    if (finished || kind == Kind::kNone) {
      return;  // a late reply to a request given up on
    }
    if (!text) {
      on_chunk(bytes);
      return;
    }
    try {
      on_reply(decode({reinterpret_cast<const char*>(bytes.data()), bytes.size()}));
    } catch (const WireError& bad) {
      fail(TransferError("bad-reply",
                         std::string("the file server sent a bad reply: ") + bad.what()));
    } catch (const FileError&) {
      finish(std::current_exception());
    }
  }

  void on_reply(const Message& message) {
    const std::uint64_t reply_id = std::visit([](const auto& m) { return m.id; }, message);
    if (reply_id != id) {
      return;  // about an earlier request, or about none
    }
    if (const auto* failure = std::get_if<Failure>(&message)) {
      fail(TransferError(failure->code, failure->message));
      return;
    }
    if (std::holds_alternative<Working>(message)) {
      return;  // the silence it breaks is all it is for
    }
    if (const auto* listing = std::get_if<Listing>(&message); listing && kind == Kind::kList) {
      if (entries.size() + listing->entries.size() > kMaxListEntries) {
        fail(TransferError("too-many", "the listing is longer than " +
                                           std::to_string(kMaxListEntries) + " entries"));
        return;
      }
      entries.insert(entries.end(), listing->entries.begin(), listing->entries.end());
      if (!listing->more) {
        finish();
      }
    } else if (const auto* header = std::get_if<FileHeader>(&message);
               header && kind == Kind::kGet) {
      on_file(*header);
    } else if (const auto* end = std::get_if<EndOfFile>(&message); end && kind == Kind::kGet) {
      expected = end->sha256;
      finish();
    } else if (const auto* ready = std::get_if<Ready>(&message); ready && kind == Kind::kPut) {
      on_ready(*ready);
    } else if (std::holds_alternative<Done>(message) && kind == Kind::kPut) {
      finish();
    } else {
      fail(TransferError("bad-reply", "the file server sent a reply out of turn"));
    }
  }

  void on_file(const FileHeader& header) {
    if (header.chunk != kChunkBytes) {
      fail(TransferError("bad-reply", "the file server sends chunks of another size"));
      return;
    }
    const Source& source = part->source();
    if (header.restart || header.size != source.size || header.mtime != source.mtime ||
        header.chunk != source.chunk) {
      // The file is not the one the partial copy holds: everything comes again.
      part->restart(Source{source.path, header.size, header.mtime, header.chunk});
    }
    if (observer.started) {
      observer.started(header.size, part->bytes_present());
    }
  }

  void on_chunk(std::span<const std::byte> bytes) {
    const auto chunk = decode_chunk(bytes);
    if (kind != Kind::kGet || part == nullptr) {
      fail(TransferError("bad-reply", "the file server sent data out of turn"));
      return;
    }
    if (!chunk || !part->write(chunk->index, chunk->data, chunk->digest)) {
      fail(TransferError("checksum", "a chunk did not match its SHA-256 or its place"));
      return;
    }
    if (observer.moved) {
      observer.moved(chunk->data.size());
    }
  }

  void on_ready(const Ready& ready) {
    if (ready.chunk != kChunkBytes) {
      fail(TransferError("bad-reply", "the file server asked for chunks of another size"));
      return;
    }
    const std::uint64_t chunks = chunk_count(upload_size, kChunkBytes);
    const Ranges sending = complement(ready.have, chunks);
    std::uint64_t already = upload_size;
    for (const auto& [first, last] : sending) {
      already -= std::min(last * kChunkBytes, upload_size) - first * kChunkBytes;
    }
    if (observer.started) {
      observer.started(upload_size, already);
    }
    auto weak = weak_from_this();
    sender =
        ChunkSender::create(channel, std::move(upload), {id, upload_size, upload_mtime, sending},
                            {[weak](std::uint64_t bytes) {
                               if (auto self = weak.lock()) {
                                 const std::lock_guard lock(self->mutex);
                                 self->last_activity = Clock::now();
                                 if (!self->finished && self->observer.moved) {
                                   self->observer.moved(bytes);
                                 }
                               }
                             },
                             [weak](const std::optional<Failure>& failure) {
                               auto self = weak.lock();
                               if (self && failure) {
                                 const std::lock_guard lock(self->mutex);
                                 self->fail(TransferError(failure->code, failure->message));
                               }
                             }});
    std::shared_ptr<ChunkSender>(sender)->start();
  }
};

FileClient::FileClient(std::shared_ptr<Connection> connection, Options options)
    : connection_(std::move(connection)), state_(std::make_shared<State>()), options_(options) {
  const auto channels = connection_->channels();
  if (channels.empty()) {
    throw Error(Errc::kInvalid, "the connection has no channel for files");
  }
  channel_ = channels.front();
  state_->channel = channel_;
  std::weak_ptr<State> weak = state_;
  channel_->on_message([weak](std::span<const std::byte> bytes, bool text) {
    if (auto state = weak.lock()) {
      state->on_message(bytes, text);
    }
  });
  channel_->on_close([weak] {
    if (auto state = weak.lock()) {
      state->on_close();
    }
  });
  if (!channel_->is_open()) {
    state_->on_close();
  }
}

FileClient::~FileClient() {
  channel_->on_message({});
  channel_->on_close({});
}

std::vector<Entry> FileClient::list(const std::string& path, bool recursive) {
  const std::uint64_t id = ++next_id_;
  state_->begin(State::Kind::kList, id, {});
  if (!channel_->send_text(encode(ListRequest{id, path, recursive}))) {
    throw Error(Errc::kClosed, "the connection to the file server closed");
  }
  state_->wait(options_.stall_timeout);
  const std::lock_guard lock(state_->mutex);
  return std::exchange(state_->entries, {});
}

Digest FileClient::get(const std::string& remote, PartFile& part,
                       const TransferObserver& observer) {
  const std::uint64_t id = ++next_id_;
  state_->begin(State::Kind::kGet, id, observer);
  GetRequest request{id, remote, std::nullopt};
  {
    const std::lock_guard lock(state_->mutex);
    state_->part = &part;
    state_->expected.reset();
    if (part.bytes_present() > 0) {
      const Source& source = part.source();
      request.resume = Resume{source.size, source.mtime, source.chunk, clip_have(part.have())};
    }
  }
  if (!channel_->send_text(encode(request))) {
    throw Error(Errc::kClosed, "the connection to the file server closed");
  }
  state_->wait(options_.stall_timeout);
  std::optional<Digest> expected;
  {
    const std::lock_guard lock(state_->mutex);
    expected = state_->expected;
  }
  if (!expected || !part.complete()) {
    throw TransferError("bad-reply", "the file server ended before sending every chunk");
  }
  const auto digest = part.commit(*expected);
  if (!digest) {
    throw TransferError("checksum",
                        "the file's SHA-256 does not match the file server's; the copy was "
                        "discarded (the file may have changed while it was sent)");
  }
  return *digest;
}

void FileClient::put(const std::string& remote, UniqueFd file, std::uint64_t size,
                     std::int64_t mtime, bool overwrite, const TransferObserver& observer) {
  const std::uint64_t id = ++next_id_;
  state_->begin(State::Kind::kPut, id, observer);
  {
    const std::lock_guard lock(state_->mutex);
    state_->upload = std::move(file);
    state_->upload_size = size;
    state_->upload_mtime = mtime;
  }
  if (!channel_->send_text(encode(PutRequest{id, remote, size, mtime, overwrite}))) {
    throw Error(Errc::kClosed, "the connection to the file server closed");
  }
  state_->wait(options_.stall_timeout);
}

}  // namespace peernet::files
