#include "codec/codec.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "camera.pb.h"
#include "codec/json_codec.h"
#include "file.pb.h"
#include "peernet.pb.h"
#include "sensor.pb.h"

namespace peernet::codec {
namespace {

namespace pb = google::protobuf;
using core::ErrorCode;
using nlohmann::json;
using ::testing::AnyOf;
using ::testing::HasSubstr;

/// Decodes JSON that must be valid for M.
template <typename M>
M from_json(std::string_view text) {
  M message;
  if (auto status = decode(text, Encoding::kJson, message); !status) {
    throw std::runtime_error("decoding failed: " + status.error().message);
  }
  return message;
}

/// The error decoding `body` into M gives; an empty kInternal error when it decoded.
template <typename M>
core::ApiError decode_error(std::string_view body, Encoding encoding = Encoding::kJson) {
  M message;
  auto status = decode(body, encoding, message);
  if (status) {
    return {ErrorCode::kInternal, "<decoded without error>"};
  }
  return status.error();
}

json to_json(const pb::Message& message) { return json::parse(encode(message, Encoding::kJson)); }

bool is_timestamp(const pb::Descriptor* descriptor) {
  return descriptor == pb::Timestamp::descriptor();
}

// ---- every message type ---------------------------------------------------------------------

/// Sets every field of `message` (two elements for repeated ones) to values that are awkward to
/// encode: extremes of each integer type, text with quotes, escapes and non-ASCII characters.
void fill(pb::Message& message, int salt) {
  const auto* descriptor = message.GetDescriptor();
  const auto* r = message.GetReflection();
  if (is_timestamp(descriptor)) {
    auto& ts = dynamic_cast<pb::Timestamp&>(message);
    ts.set_seconds(1'714'564'800 + salt);
    ts.set_nanos(250'000'000);
    return;
  }
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const auto* field = descriptor->field(i);
    const int count = field->is_repeated() ? 2 : 1;
    for (int n = 0; n < count; ++n) {
      const int v = salt + n;
      const bool rep = field->is_repeated();
      switch (field->cpp_type()) {
        case pb::FieldDescriptor::CPPTYPE_INT32: {
          const std::int32_t x = INT32_MIN + v;
          rep ? r->AddInt32(&message, field, x) : r->SetInt32(&message, field, x);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_UINT32: {
          const std::uint32_t x = UINT32_MAX - static_cast<std::uint32_t>(v);
          rep ? r->AddUInt32(&message, field, x) : r->SetUInt32(&message, field, x);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_INT64: {
          const std::int64_t x = INT64_MIN + v;
          rep ? r->AddInt64(&message, field, x) : r->SetInt64(&message, field, x);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_UINT64: {
          const std::uint64_t x = UINT64_MAX - static_cast<std::uint64_t>(v);
          rep ? r->AddUInt64(&message, field, x) : r->SetUInt64(&message, field, x);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_BOOL:
          rep ? r->AddBool(&message, field, true) : r->SetBool(&message, field, true);
          break;
        case pb::FieldDescriptor::CPPTYPE_STRING: {
          const std::string x =
              "a \"quoted\" \\ line\n\t\x01 caf\xc3\xa9 \xe2\x82\xac " + std::to_string(v);
          rep ? r->AddString(&message, field, x) : r->SetString(&message, field, x);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_ENUM: {
          const auto* type = field->enum_type();
          const auto* x = type->value(type->value_count() - 1);
          rep ? r->AddEnum(&message, field, x) : r->SetEnum(&message, field, x);
          break;
        }
        case pb::FieldDescriptor::CPPTYPE_MESSAGE:
          fill(rep ? *r->AddMessage(&message, field) : *r->MutableMessage(&message, field), v + 1);
          break;
        default:
          FAIL() << "no sample value for " << field->full_name();
      }
    }
  }
}

/// The same document with every field name in lowerCamelCase (protobuf's json_name).
json camel_case(const json& document, const pb::Descriptor* descriptor) {
  if (is_timestamp(descriptor)) {
    return document;
  }
  json out = json::object();
  for (const auto& [key, value] : document.items()) {
    const auto* field = descriptor->FindFieldByName(key);
    if (field == nullptr) {
      out[key] = value;
      continue;
    }
    json renamed = value;
    if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (auto& element : renamed) {
          element = camel_case(element, field->message_type());
        }
      } else {
        renamed = camel_case(value, field->message_type());
      }
    }
    out[field->json_name()] = renamed;
  }
  return out;
}

std::vector<std::string> schema_message_names() {
  const auto* file = Knock::descriptor()->file();
  std::vector<std::string> names;
  for (int i = 0; i < file->message_type_count(); ++i) {
    names.push_back(file->message_type(i)->full_name());
  }
  return names;
}

class EveryMessageTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<pb::Message> make_empty() const {
    const auto* descriptor =
        pb::DescriptorPool::generated_pool()->FindMessageTypeByName(GetParam());
    return std::unique_ptr<pb::Message>(
        pb::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
  }
  std::unique_ptr<pb::Message> make_filled() const {
    auto message = make_empty();
    fill(*message, 0);
    return message;
  }
  void expect_decodes_to(const pb::Message& expected, const std::string& body, Encoding encoding) {
    auto decoded = make_empty();
    const auto status = decode(body, encoding, *decoded);
    ASSERT_TRUE(status.ok()) << status.error().message << "\n" << body;
    EXPECT_TRUE(pb::util::MessageDifferencer::Equals(expected, *decoded))
        << "sent:     " << expected.ShortDebugString()
        << "\nreceived: " << decoded->ShortDebugString();
  }
};

TEST_P(EveryMessageTest, JsonRoundTripWithFieldNamesAsInTheProto) {
  const auto message = make_filled();
  const auto text = encode(*message, Encoding::kJson);
  json document;
  ASSERT_NO_THROW(document = json::parse(text)) << text;
  const auto* descriptor = message->GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    EXPECT_TRUE(document.contains(descriptor->field(i)->name()))
        << descriptor->field(i)->name() << " missing from " << text;
  }
  expect_decodes_to(*message, text, Encoding::kJson);
}

TEST_P(EveryMessageTest, JsonInLowerCamelCaseIsRead) {
  const auto message = make_filled();
  const auto camel = camel_case(to_json(*message), message->GetDescriptor()).dump();
  expect_decodes_to(*message, camel, Encoding::kJson);
}

TEST_P(EveryMessageTest, BinaryRoundTrip) {
  const auto message = make_filled();
  expect_decodes_to(*message, encode(*message, Encoding::kProto), Encoding::kProto);
}

TEST_P(EveryMessageTest, EmptyBodyIsEmptyMessage) {
  expect_decodes_to(*make_empty(), "", Encoding::kJson);
  expect_decodes_to(*make_empty(), "{}", Encoding::kJson);
  expect_decodes_to(*make_empty(), "", Encoding::kProto);
}

INSTANTIATE_TEST_SUITE_P(Schema, EveryMessageTest, ::testing::ValuesIn(schema_message_names()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           return param.param.substr(param.param.rfind('.') + 1);
                         });

// ---- JSON reading ---------------------------------------------------------------------------

TEST(JsonCodecTest, ReadsWebRtcCandidateSpelling) {
  const auto knock = from_json<Knock>(
      R"({"iceCandidates": [{"candidate": "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host",
          "sdpMid": "0", "sdpMLineIndex": 1, "usernameFragment": "abcd"}],
          "server_ice_candidates": [{"sdp_line_index": 2}]})");
  ASSERT_EQ(knock.ice_candidates_size(), 1);
  EXPECT_EQ(knock.ice_candidates(0).sdp_mid(), "0");
  EXPECT_EQ(knock.ice_candidates(0).sdp_line_index(), 1);
  EXPECT_EQ(knock.ice_candidates(0).username_fragment(), "abcd");
  ASSERT_EQ(knock.server_ice_candidates_size(), 1);
  EXPECT_EQ(knock.server_ice_candidates(0).sdp_line_index(), 2);
}

TEST(JsonCodecTest, SixtyFourBitIntegersAreStringsOrNumbers) {
  EXPECT_EQ(from_json<ListKnocksRequest>(R"({"since": "18446744073709551615"})").since(),
            UINT64_MAX);
  EXPECT_EQ(from_json<ListKnocksRequest>(R"({"since": 18446744073709551615})").since(), UINT64_MAX);
  EXPECT_EQ(from_json<ListKnocksRequest>(R"({"since": 42, "wait_seconds": "7"})").wait_seconds(),
            7U);

  ListKnocksResponse response;
  response.set_revision(9'007'199'254'740'993ULL);  // not exact as a JavaScript number
  EXPECT_EQ(to_json(response)["revision"], "9007199254740993");
}

TEST(JsonCodecTest, EnumsByNameOrNumber) {
  EXPECT_EQ(from_json<Knock>(R"({"state": "KNOCK_STATE_ANSWERED"})").state(), KNOCK_STATE_ANSWERED);
  EXPECT_EQ(from_json<Knock>(R"({"state": 3})").state(), KNOCK_STATE_REJECTED);

  Knock knock;
  knock.set_state(KNOCK_STATE_EXPIRED);
  EXPECT_EQ(to_json(knock)["state"], "KNOCK_STATE_EXPIRED");

  EXPECT_THAT(decode_error<Knock>(R"({"state": "ANSWERED"})").message, HasSubstr("state"));
  EXPECT_THAT(decode_error<Knock>(R"({"state": 99})").message, HasSubstr("state"));
}

TEST(JsonCodecTest, TimestampsAreRfc3339) {
  const auto utc = from_json<Knock>(R"({"create_time": "2024-05-01T12:00:00.250Z"})");
  EXPECT_EQ(utc.create_time().seconds(), 1'714'564'800);
  EXPECT_EQ(utc.create_time().nanos(), 250'000'000);
  const auto offset = from_json<Knock>(R"({"create_time": "2024-05-01T14:00:00+02:00"})");
  EXPECT_EQ(offset.create_time().seconds(), 1'714'564'800);

  EXPECT_EQ(to_json(utc)["create_time"], "2024-05-01T12:00:00.250Z");

  for (const auto* bad : {R"({"create_time": "yesterday"})", R"({"create_time": 1714564800})",
                          R"({"create_time": {"seconds": 1}})"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(decode_error<Knock>(bad).message, HasSubstr("create_time"));
  }
}

TEST(JsonCodecTest, KnownExtensionsAreReadAndWrittenByName) {
  const auto service = from_json<Service>(
      R"({"protocol": "peernet.camera", "[peernet.camera.codec]": "VP8",
          "[peernet.camera.width]": 1280, "[peernet.camera.snapshot]": true})");
  EXPECT_EQ(service.GetExtension(peernet::camera::codec), "VP8");
  EXPECT_EQ(service.GetExtension(peernet::camera::width), 1280U);
  EXPECT_TRUE(service.GetExtension(peernet::camera::snapshot));

  const auto written = to_json(service);
  EXPECT_EQ(written["[peernet.camera.codec]"], "VP8");
  EXPECT_EQ(written["[peernet.camera.width]"], 1280);
  EXPECT_EQ(written["protocol"], "peernet.camera");
}

TEST(JsonCodecTest, RepeatedMessageExtension) {
  const auto service = from_json<Service>(
      R"({"protocol": "peernet.sensor", "[peernet.sensor.sensors]": [
            {"id": "outside", "kind": "SENSOR_KIND_TEMPERATURE", "unit": "°C"},
            {"id": "cellar", "kind": 2, "name": "Cellar"}],
          "[peernet.file.share_name]": "footage"})");
  ASSERT_EQ(service.ExtensionSize(peernet::sensor::sensors), 2);
  const auto& outside = service.GetExtension(peernet::sensor::sensors, 0);
  EXPECT_EQ(outside.id(), "outside");
  EXPECT_EQ(outside.kind(), peernet::sensor::SENSOR_KIND_TEMPERATURE);
  EXPECT_EQ(outside.unit(), "°C");
  EXPECT_EQ(service.GetExtension(peernet::sensor::sensors, 1).kind(),
            peernet::sensor::SENSOR_KIND_HUMIDITY);

  const auto written = to_json(service);
  ASSERT_TRUE(written["[peernet.sensor.sensors]"].is_array());
  EXPECT_EQ(written["[peernet.sensor.sensors]"][0]["kind"], "SENSOR_KIND_TEMPERATURE");
  EXPECT_EQ(written["[peernet.sensor.sensors]"][1]["name"], "Cellar");
  EXPECT_EQ(written["[peernet.file.share_name]"], "footage");
}

TEST(JsonCodecTest, UnknownExtensionIsAnError) {
  EXPECT_THAT(decode_error<Service>(R"({"[peernet.camera.colour]": "red"})").message,
              HasSubstr("[peernet.camera.colour]"));
  // A real extension, but of another message.
  EXPECT_THAT(decode_error<Knock>(R"({"[peernet.camera.codec]": "VP8"})").message,
              HasSubstr("[peernet.camera.codec]"));
}

TEST(JsonCodecTest, UnknownFieldIsAnErrorNamingIt) {
  const auto error = decode_error<CreateServerRequest>(R"({"server": {"colour": "red"}})");
  EXPECT_THAT(error.code, AnyOf(ErrorCode::kMalformed, ErrorCode::kInvalidValue));
  EXPECT_THAT(error.message, HasSubstr("server.colour"));
  EXPECT_THAT(decode_error<Room>(R"({"uniqueID": "x"})").message, HasSubstr("uniqueID"));
}

struct WrongType {
  std::string_view body;
  std::string_view path;
};

TEST(JsonCodecTest, WrongTypesAreErrorsNamingTheFieldPath) {
  const std::vector<WrongType> cases = {
      {R"({"server": {"ttl_seconds": "thirty"}})", "server.ttl_seconds"},
      {R"({"server": {"ttl_seconds": 1.5}})", "server.ttl_seconds"},
      {R"({"server": {"ttl_seconds": -1}})", "server.ttl_seconds"},
      {R"({"server": {"ttl_seconds": 4294967296}})", "server.ttl_seconds"},
      {R"({"server": {"ttl_seconds": "4294967296"}})", "server.ttl_seconds"},
      {R"({"server": {"ttl_seconds": true}})", "server.ttl_seconds"},
      {R"({"server": {"unique_id": {}}})", "server.unique_id"},
      {R"({"server": {"unique_id": 7}})", "server.unique_id"},
      {R"({"server": {"services": {"protocol": "x"}}})", "server.services"},
      {R"({"server": {"services": [{}, {"protocol": ["x"]}]}})", "server.services[1].protocol"},
      {R"({"server": "cam"})", "server"},
      {R"({"server": {"expireTime": "soon"}})", "server.expireTime"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    const auto error = decode_error<CreateServerRequest>(c.body);
    EXPECT_THAT(error.code, AnyOf(ErrorCode::kMalformed, ErrorCode::kInvalidValue));
    EXPECT_THAT(error.message, HasSubstr(std::string(c.path)));
  }
  const auto int32_error =
      decode_error<UpdateKnockRequest>(R"({"ice_candidates": [{"sdpMLineIndex": 2147483648}]})");
  EXPECT_THAT(int32_error.message, HasSubstr("ice_candidates[0].sdpMLineIndex"));
  EXPECT_THAT(decode_error<UpdateKnockRequest>(R"({"reject": "yes"})").message,
              HasSubstr("reject"));

  EXPECT_EQ(from_json<CreateServerRequest>(R"({"server": {"ttl_seconds": 4294967295}})")
                .server()
                .ttl_seconds(),
            UINT32_MAX);
}

TEST(JsonCodecTest, MalformedJsonIsMalformed) {
  for (const auto* bad :
       {R"({"room": )", "[1, 2", "nul", "{'room': 'x'}", R"({"room": "x"} x)", "[]", "\"room\""}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(decode_error<GetRoomRequest>(bad).code, ErrorCode::kMalformed);
  }
}

TEST(JsonCodecTest, DeepNestingIsRefusedWithoutCrashing) {
  const std::string arrays = std::string(100, '[') + std::string(100, ']');
  EXPECT_EQ(decode_error<Knock>(arrays).code, ErrorCode::kMalformed);

  std::string objects;
  for (int i = 0; i < 100; ++i) {
    objects += R"({"knock":)";
  }
  objects += "{}" + std::string(100, '}');
  EXPECT_EQ(decode_error<CreateKnockRequest>(objects).code, ErrorCode::kMalformed);

  const std::string huge = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_EQ(decode_error<Knock>(huge).code, ErrorCode::kMalformed);
}

TEST(JsonCodecTest, BracketsInsideStringsAreNotNesting) {
  const std::string text = std::string(100, '[') + "\\\"" + std::string(100, '{');
  const auto room = from_json<Room>(R"({"display_name": ")" + text + R"("})");
  EXPECT_EQ(room.display_name(), std::string(100, '[') + "\"" + std::string(100, '{'));
}

TEST(JsonCodecTest, InvalidUtf8InJsonIsMalformed) {
  EXPECT_EQ(decode_error<Room>("{\"display_name\": \"\xff\xfe\"}").code, ErrorCode::kMalformed);
}

// ---- binary ---------------------------------------------------------------------------------

/// A protobuf field key (tag and wire type) followed by a length and the bytes.
std::string length_delimited(int field_number, std::string_view bytes) {
  std::string out;
  auto varint = [&out](std::uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  varint((static_cast<std::uint64_t>(field_number) << 3) | 2);
  varint(bytes.size());
  out += bytes;
  return out;
}

TEST(BinaryCodecTest, InvalidUtf8InAStringFieldIsMalformed) {
  const google::protobuf::LogSilencer quiet;  // protobuf logs the bad bytes, then parses them
  const auto body = length_delimited(1, length_delimited(2, "caf\xe9"));  // Latin-1, not UTF-8
  const auto error = decode_error<CreateRoomRequest>(body, Encoding::kProto);
  EXPECT_EQ(error.code, ErrorCode::kMalformed);
  EXPECT_THAT(error.message, HasSubstr("room.display_name"));

  IceCandidate good;
  good.set_candidate("fine");
  const auto knock = length_delimited(1, good.SerializeAsString()) +
                     length_delimited(1, length_delimited(1, "\xc0\xaf"));  // an overlong '/'
  EXPECT_THAT(decode_error<Knock>(knock, Encoding::kProto).message,
              HasSubstr("ice_candidates[1].candidate"));
}

TEST(BinaryCodecTest, UnknownExtensionSurvivesBinaryButNotJson) {
  Service known;
  known.set_protocol("org.example.thing");
  const auto body = known.SerializeAsString() + length_delimited(1000, "\x01\x02opaque");

  Service service;
  ASSERT_TRUE(decode(body, Encoding::kProto, service).ok());
  EXPECT_EQ(encode(service, Encoding::kProto), body);
  EXPECT_EQ(to_json(service), json({{"protocol", "org.example.thing"}}));

  // Nested in a response, too.
  ListServersResponse listed;
  *listed.add_servers()->add_services() = service;
  ListServersResponse reread;
  ASSERT_TRUE(decode(encode(listed, Encoding::kProto), Encoding::kProto, reread).ok());
  EXPECT_EQ(reread.servers(0).services(0).SerializeAsString(), body);
}

TEST(BinaryCodecTest, TruncatedBodyIsMalformed) {
  CreateKnockRequest request;
  request.set_server("cam");
  request.mutable_knock()->set_protocol("peernet.camera");
  request.mutable_knock()->set_offer(std::string(200, 'o'));
  const auto whole = request.SerializeAsString();
  const auto error =
      decode_error<CreateKnockRequest>(whole.substr(0, whole.size() - 50), Encoding::kProto);
  EXPECT_EQ(error.code, ErrorCode::kMalformed);
  EXPECT_THAT(error.message, HasSubstr("peernet.CreateKnockRequest"));
  EXPECT_EQ(decode_error<CreateKnockRequest>("\xff\xff\xff", Encoding::kProto).code,
            ErrorCode::kMalformed);
}

// ---- content types --------------------------------------------------------------------------

std::optional<Encoding> encoding_of(std::string_view content_type) {
  const auto type = media_type_of(content_type);
  return type ? std::optional(type->encoding) : std::nullopt;
}

TEST(MediaTypeTest, ReadsEveryKnownSpelling) {
  EXPECT_EQ(encoding_of("application/json"), Encoding::kJson);
  EXPECT_EQ(encoding_of("application/json; charset=utf-8"), Encoding::kJson);
  EXPECT_EQ(encoding_of("Application/JSON"), Encoding::kJson);
  EXPECT_EQ(encoding_of(""), Encoding::kJson);
  EXPECT_EQ(encoding_of("application/x-protobuf"), Encoding::kProto);
  EXPECT_EQ(encoding_of("application/protobuf"), Encoding::kProto);
  EXPECT_EQ(encoding_of("application/proto"), Encoding::kProto);
  EXPECT_EQ(encoding_of(" application/proto ;charset=binary"), Encoding::kProto);
  EXPECT_EQ(encoding_of("text/html"), std::nullopt);
  EXPECT_EQ(encoding_of("application/jsonl"), std::nullopt);
  EXPECT_EQ(encoding_of("text/plain"), std::nullopt);
}

TEST(MediaTypeTest, AnswersInTheSpellingAsked) {
  EXPECT_EQ(media_type_of("application/protobuf")->name, "application/protobuf");
  EXPECT_EQ(media_type_of("application/x-protobuf")->name, "application/x-protobuf");
  EXPECT_EQ(media_type_of("")->name, "application/json");
}

const MediaType kJsonType{Encoding::kJson, "application/json"};
const MediaType kProtoType{Encoding::kProto, "application/proto"};

TEST(NegotiateTest, FollowsAcceptElseTheRequestsType) {
  EXPECT_EQ(negotiate("", kJsonType).encoding, Encoding::kJson);
  EXPECT_EQ(negotiate("", kProtoType).encoding, Encoding::kProto);
  EXPECT_EQ(negotiate("application/x-protobuf", kJsonType).name, "application/x-protobuf");
  EXPECT_EQ(negotiate("application/json", kProtoType).encoding, Encoding::kJson);
  EXPECT_EQ(negotiate("text/html", kProtoType).encoding, Encoding::kProto);
  EXPECT_EQ(negotiate("*/*", kProtoType).encoding, Encoding::kProto);
  EXPECT_EQ(negotiate("text/html, application/*", kProtoType).encoding, Encoding::kProto);
}

TEST(NegotiateTest, WeighsQValues) {
  EXPECT_EQ(negotiate("application/json;q=0.5, application/protobuf", kJsonType).name,
            "application/protobuf");
  EXPECT_EQ(negotiate("application/protobuf;q=0.2, application/json;q=0.9", kProtoType).encoding,
            Encoding::kJson);
  EXPECT_EQ(negotiate("application/json, application/x-protobuf", kProtoType).encoding,
            Encoding::kJson)
      << "the first of equal weight wins";
  EXPECT_EQ(negotiate("application/json;q=0", kProtoType).encoding, Encoding::kProto)
      << "q=0 means not acceptable";
  EXPECT_EQ(negotiate("application/x-protobuf ; q=0, */*;q=0.1", kJsonType).encoding,
            Encoding::kJson);
}

TEST(NegotiateTest, QValueAfterAnotherParameter) {
  EXPECT_EQ(
      negotiate("application/json; charset=utf-8; q=0.1, application/x-protobuf; q=0.5", kJsonType)
          .encoding,
      Encoding::kProto);
  EXPECT_EQ(negotiate("application/json; charset=utf-8; q=0", kProtoType).encoding,
            Encoding::kProto);
}

}  // namespace
}  // namespace peernet::codec
