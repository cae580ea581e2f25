#include "files/chunk_sender.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "files/stat.h"

namespace peernet::files {

std::shared_ptr<ChunkSender> ChunkSender::create(std::shared_ptr<Channel> channel, UniqueFd file,
                                                 Plan plan, Callbacks callbacks) {
  return std::make_shared<ChunkSender>(std::move(channel), std::move(file), std::move(plan),
                                       std::move(callbacks));
}

void ChunkSender::start() {
  auto self = shared_from_this();  // alive through a pump() that ends the transfer
  channel_->set_buffered_amount_low_threshold(kLowWater);
  channel_->on_buffered_amount_low([weak = weak_from_this()] {
    if (auto sender = weak.lock()) {
      sender->pump();
    }
  });
  pump();
}

ChunkSender::ChunkSender(std::shared_ptr<Channel> channel, UniqueFd file, Plan plan,
                         Callbacks callbacks)
    : channel_(std::move(channel)),
      file_(std::move(file)),
      plan_(std::move(plan)),
      callbacks_(std::move(callbacks)),
      chunks_(chunk_count(plan_.size, kChunkBytes)),
      buffer_(kChunkHeaderBytes + kChunkBytes) {}

void ChunkSender::cancel() {
  if (!done_) {
    done_ = true;
    channel_->on_buffered_amount_low({});
  }
}

void ChunkSender::pump() {
  const auto changed = [this](const char* how) {
    end(Failure{plan_.id, "changed", std::string("the file ") + how + " while it was sent"});
  };
  while (!done_ && next_ < chunks_) {
    if (channel_->buffered_amount() >= kHighWater) {
      return;  // on_buffered_amount_low calls again
    }
    const std::uint64_t offset = next_ * kChunkBytes;
    const std::size_t length = std::min<std::uint64_t>(kChunkBytes, plan_.size - offset);
    const std::span<std::byte> data(buffer_.data() + kChunkHeaderBytes, length);
    std::size_t got = 0;
    while (got < length) {
      const ssize_t n =
          ::pread(file_.get(), data.data() + got, length - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        changed(n == 0 ? "shrank" : "could not be read");
        return;
      }
      got += static_cast<std::size_t>(n);
    }
    whole_.update(data);
    const bool wanted = contains(plan_.sending, next_);
    if (!wanted && ++skipped_ % kWorkingEvery == 0) {
      // Reading what the receiver has only for the hash sends nothing; say so now and then, or
      // a long resume would look like a broken connection.
      channel_->send_text(encode(Working{plan_.id}));
    }
    if (wanted) {
      encode_chunk_header(buffer_, next_, Sha256::of(data));
      if (!channel_->send(std::span<const std::byte>(buffer_.data(), kChunkHeaderBytes + length))) {
        end(Failure{plan_.id, "closed", "the channel closed"});
        return;
      }
      if (callbacks_.sent) {
        callbacks_.sent(length);
      }
    }
    ++next_;
  }
  if (done_) {
    return;
  }
  struct stat status {};
  if (::fstat(file_.get(), &status) != 0 ||
      static_cast<std::uint64_t>(status.st_size) != plan_.size || mtime_ns(status) != plan_.mtime) {
    changed("changed");
    return;
  }
  if (!channel_->send_text(encode(EndOfFile{plan_.id, whole_.finish()}))) {
    end(Failure{plan_.id, "closed", "the channel closed"});
    return;
  }
  end(std::nullopt);
}

void ChunkSender::end(const std::optional<Failure>& failure) {
  done_ = true;
  channel_->on_buffered_amount_low({});
  if (callbacks_.ended) {
    std::exchange(callbacks_.ended, {})(failure);
  }
}

}  // namespace peernet::files
