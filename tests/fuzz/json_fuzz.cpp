// libFuzzer target: JSON decoding of every request message (and Server, Service, Knock).
//
// Input: one byte that picks the message type (see messages.h), then the JSON text.
// Invariants, for every text the decoder accepts:
//   - encoding the message gives valid JSON, which decodes again to an equal message and
//     re-encodes to the same text (the writer is deterministic);
//   - the binary encoding of the message decodes to an equal message.
// Nothing is lossy here: unknown fields cannot come from JSON (they are refused), the schema
// and its extensions have no floating-point fields (so no NaN), and every string that JSON can
// carry is valid UTF-8, which the binary decoder's check accepts.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/util/message_differencer.h>
#include <nlohmann/json.hpp>

#include "codec/codec.h"
#include "fuzz/messages.h"

namespace {

using google::protobuf::Message;
using google::protobuf::util::MessageDifferencer;
using peernet::codec::Encoding;
using peernet::fuzz::expect;
using peernet::fuzz::fail;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  peernet::fuzz::init_codec_target();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const auto message = peernet::fuzz::new_message(data[0]);
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (!peernet::codec::decode(text, Encoding::kJson, *message).ok()) {
    return 0;  // refusing is fine; accepting something that does not survive the trip is not
  }

  const std::string json = peernet::codec::encode(*message, Encoding::kJson);
  expect(nlohmann::json::accept(json), "the JSON encoder writes valid JSON", *message, json);

  const std::unique_ptr<Message> again(message->New());
  const auto decoded = peernet::codec::decode(json, Encoding::kJson, *again);
  if (!decoded.ok()) {
    fail("what the JSON encoder writes, the JSON decoder reads", *message,
         decoded.error().message + "\n" + json);
  }
  expect(MessageDifferencer::Equals(*message, *again), "JSON round trip gives an equal message",
         *message, json);
  expect(peernet::codec::encode(*again, Encoding::kJson) == json,
         "re-encoding a decoded message gives the same JSON", *message, json);

  const std::string binary = peernet::codec::encode(*message, Encoding::kProto);
  const std::unique_ptr<Message> from_binary(message->New());
  const auto parsed = peernet::codec::decode(binary, Encoding::kProto, *from_binary);
  if (!parsed.ok()) {
    fail("a message decoded from JSON survives binary encoding", *message, parsed.error().message);
  }
  expect(MessageDifferencer::Equals(*message, *from_binary),
         "binary round trip of a JSON-decoded message gives an equal message", *message);
  return 0;
}
