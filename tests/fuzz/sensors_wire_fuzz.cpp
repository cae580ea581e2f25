// libFuzzer target: the sensor protocol's decoder (src/sensors/wire.cpp), which reads what a
// peer sends over a "sensors" data channel.
//
// Input: one text message.
// Invariants, for every message decode() accepts:
//   - it encodes to text that decodes again and re-encodes to the same text (the writer is
//     deterministic and writes what the reader reads);
//   - readings and rollups, cut into batches by encode_readings() and encode_rollups(), fit a
//     data channel's 64 KiB each and decode back to the same rows.
// Refusing (WireError) is always fine; only these and crashes are findings.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sensors/wire.h"

namespace {

namespace sensors = peernet::sensors;

constexpr std::size_t kChannelBytes = std::size_t{64} * 1024;

[[noreturn]] void fail(const char* invariant, const std::string& detail) {
  std::fprintf(stderr, "invariant broken: %s\n%s\n", invariant, detail.c_str());
  std::abort();
}

sensors::Message must_decode(const std::string& text, const char* invariant) {
  try {
    return sensors::decode(text);
  } catch (const sensors::WireError& error) {
    fail(invariant, std::string(error.what()) + "\n" + text);
  }
}

/// The rows of `batches`, decoded, each batch checked for size.
template <typename Part, typename Rows>
void check_batches(const std::vector<std::string>& batches, const Rows& rows) {
  Rows decoded;
  for (const std::string& batch : batches) {
    if (batch.size() > kChannelBytes) {
      fail("a batch fits a data channel", std::to_string(batch.size()));
    }
    const auto part = std::get<Part>(must_decode(batch, "a batch decodes"));
    if constexpr (std::is_same_v<Part, sensors::Readings>) {
      decoded.insert(decoded.end(), part.readings.begin(), part.readings.end());
    } else {
      decoded.insert(decoded.end(), part.rows.begin(), part.rows.end());
    }
  }
  if (decoded != rows) {
    fail("batches decode to the rows they were cut from", std::to_string(rows.size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sensors::Message message;
  try {
    message = sensors::decode(text);
  } catch (const sensors::WireError&) {
    return 0;
  }
  const std::string encoded = sensors::encode(message);
  const sensors::Message again = must_decode(encoded, "what encode() writes, decode() reads");
  if (sensors::encode(again) != encoded) {
    fail("the round trip re-encodes to the same text", encoded + "\n" + sensors::encode(again));
  }
  if (const auto* readings = std::get_if<sensors::Readings>(&message)) {
    check_batches<sensors::Readings>(sensors::encode_readings(readings->readings, readings->live),
                                     readings->readings);
  } else if (const auto* rollups = std::get_if<sensors::Rollups>(&message)) {
    check_batches<sensors::Rollups>(sensors::encode_rollups(rollups->resolution, rollups->rows),
                                    rollups->rows);
  }
  return 0;
}
