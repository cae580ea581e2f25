// libFuzzer target: the file protocol's decoders (src/files/wire.cpp), which read what a peer
// sends over a data channel.
//
// Input: one byte that picks text (even) or binary (odd), then the message.
// Invariants:
//   - text: a message decode() accepts encodes to text that decodes again and re-encodes to the
//     same text (the writer is deterministic and writes what the reader reads), within a data
//     channel's 64 KiB;
//   - binary: a chunk decode_chunk() accepts has 1 to kChunkBytes bytes, and its header encodes
//     back to the input's.
// Refusing (WireError, nullopt) is always fine; only these and crashes are findings.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "files/wire.h"

namespace {

using peernet::files::decode;
using peernet::files::encode;
using peernet::files::WireError;

[[noreturn]] void fail(const char* invariant, const std::string& detail) {
  std::fprintf(stderr, "invariant broken: %s\n%s\n", invariant, detail.c_str());
  std::abort();
}

void check_text(std::string_view text) {
  peernet::files::Message message;
  try {
    message = decode(text);
  } catch (const WireError&) {
    return;
  }
  const std::string encoded = encode(message);
  peernet::files::Message again;
  try {
    again = decode(encoded);
  } catch (const WireError& error) {
    fail("what encode() writes, decode() reads", std::string(error.what()) + "\n" + encoded);
  }
  if (encode(again) != encoded) {
    fail("the round trip re-encodes to the same text", encoded + "\n" + encode(again));
  }
}

void check_chunk(std::span<const std::byte> bytes) {
  const auto chunk = peernet::files::decode_chunk(bytes);
  if (!chunk) {
    return;
  }
  if (chunk->data.empty() || chunk->data.size() > peernet::files::kChunkBytes) {
    fail("a chunk has 1 to kChunkBytes bytes", std::to_string(chunk->data.size()));
  }
  std::vector<std::byte> header(peernet::files::kChunkHeaderBytes);
  peernet::files::encode_chunk_header(header, chunk->index, chunk->digest);
  if (!std::equal(header.begin(), header.end(), bytes.begin())) {
    fail("a chunk's header encodes back to itself", std::to_string(chunk->index));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const auto* bytes = reinterpret_cast<const std::byte*>(data + 1);
  if (data[0] % 2 == 0) {
    check_text({reinterpret_cast<const char*>(data + 1), size - 1});
  } else {
    check_chunk({bytes, size - 1});
  }
  return 0;
}
