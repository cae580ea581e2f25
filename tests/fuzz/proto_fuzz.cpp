// libFuzzer target: binary protobuf decoding of every request message (and Server, Service,
// Knock).
//
// Input: one byte that picks the message type (see messages.h), then the binary message.
// Invariants, for every body the decoder accepts:
//   - its binary encoding decodes again to an equal message, unknown fields included (the daemon
//     keeps extensions it cannot name and hands them back to binary readers);
//   - its JSON encoding is valid JSON, and decodes to the same message minus its unknown fields.
// The one documented loss is that last one: JSON has no way to carry unknown fields (or
// extensions this build cannot name), so the encoder leaves them out.

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
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (!peernet::codec::decode(body, Encoding::kProto, *message).ok()) {
    return 0;
  }

  const std::string binary = peernet::codec::encode(*message, Encoding::kProto);
  const std::unique_ptr<Message> again(message->New());
  const auto reparsed = peernet::codec::decode(binary, Encoding::kProto, *again);
  if (!reparsed.ok()) {
    fail("what the binary encoder writes, the binary decoder reads", *message,
         reparsed.error().message);
  }
  expect(MessageDifferencer::Equals(*message, *again),
         "binary round trip gives an equal message (unknown fields included)", *message);

  const std::string json = peernet::codec::encode(*message, Encoding::kJson);
  expect(nlohmann::json::accept(json), "the JSON encoder writes valid JSON", *message, json);
  const std::unique_ptr<Message> from_json(message->New());
  const auto decoded = peernet::codec::decode(json, Encoding::kJson, *from_json);
  if (!decoded.ok()) {
    fail("the JSON encoding of an accepted binary message decodes", *message,
         decoded.error().message + "\n" + json);
  }

  const std::unique_ptr<Message> known(message->New());
  known->CopyFrom(*message);
  known->DiscardUnknownFields();
  expect(MessageDifferencer::Equals(*known, *from_json), "JSON round trip keeps every known field",
         *message, json);
  return 0;
}
