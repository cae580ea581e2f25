#include "http/error_reply.h"

#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/api_error.h"

namespace peernet::http {
namespace {

using core::ApiError;
using core::ErrorCode;

/// The documented meaning of each error code (docs/routes.md and the Connect protocol).
struct Mapping {
  ErrorCode code;
  unsigned status;
  std::string_view connect;
};

constexpr Mapping kMappings[] = {
    {ErrorCode::kMalformed, 400, "invalid_argument"},
    {ErrorCode::kUnauthenticated, 401, "unauthenticated"},
    {ErrorCode::kNotFound, 404, "not_found"},
    {ErrorCode::kMethodNotAllowed, 405, "unimplemented"},
    {ErrorCode::kAlreadyExists, 409, "already_exists"},
    {ErrorCode::kPayloadTooLarge, 413, "resource_exhausted"},
    {ErrorCode::kUnsupportedMediaType, 415, "invalid_argument"},
    {ErrorCode::kInvalidValue, 422, "invalid_argument"},
    {ErrorCode::kLimitExceeded, 429, "resource_exhausted"},
    {ErrorCode::kHeadersTooLarge, 431, "resource_exhausted"},
    {ErrorCode::kUriTooLong, 414, "resource_exhausted"},
    {ErrorCode::kNotImplemented, 501, "unimplemented"},
    {ErrorCode::kUnavailable, 503, "unavailable"},
    {ErrorCode::kInternal, 500, "internal"},
};
static_assert(std::size(kMappings) == static_cast<std::size_t>(ErrorCode::kInternal) + 1,
              "every ErrorCode has a row");

/// The error body as a client's JSON parser reads it; fails the test when it is not JSON.
nlohmann::json parsed_body(const ApiError& error) {
  const auto body = error_body(error);
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << body;
    return {};
  }
}

TEST(ErrorReplyTest, EveryCodeHasItsStatusAndConnectCode) {
  for (const auto& m : kMappings) {
    SCOPED_TRACE(m.status);
    EXPECT_EQ(http_status(m.code), m.status);
    EXPECT_EQ(connect_code(m.code), m.connect);

    const auto body =
        parsed_body({m.code, "server.ttl_seconds: 4 is outside the allowed 5 to 300"});
    EXPECT_EQ(body["code"], m.connect);
    EXPECT_EQ(body["message"], "server.ttl_seconds: 4 is outside the allowed 5 to 300");
    EXPECT_EQ(body.size(), 2U);
  }
}

TEST(ErrorReplyTest, BodyIsJsonWhateverTheMessageHolds) {
  const std::string nasty = std::string("path /rooms/\xff\xfe\xc3 with \"quotes\", \\ and ") +
                            std::string("\x01\x02\x1f\x7f\n\r\t", 7) + std::string(1, '\0') + "end";
  const auto body = parsed_body(ApiError::not_found(nasty));
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body["code"], "not_found");
  const auto message = body["message"].get<std::string>();
  EXPECT_NE(message.find("with \"quotes\", \\ and \x01\x02\x1f"), std::string::npos) << message;
  EXPECT_NE(message.find(std::string(1, '\0') + "end"), std::string::npos) << message;
  EXPECT_EQ(message.find('\xff'), std::string::npos);
}

TEST(ErrorReplyTest, InvalidUtf8ShapesAreAllReplaced) {
  for (const std::string bad : {"overlong \xc0\xaf", "surrogate \xed\xa0\x80", "cut \xe2\x82",
                                "too big \xf4\x90\x80\x80", "lone \x80"}) {
    SCOPED_TRACE(bad);
    const auto body = parsed_body(ApiError::malformed(bad));
    EXPECT_EQ(body["code"], "invalid_argument");
  }
}

TEST(ErrorReplyTest, ValidUtf8IsKeptAsIs) {
  const std::string text = "room 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5' not found";
  EXPECT_EQ(parsed_body(ApiError::not_found(text))["message"], text);
}

}  // namespace
}  // namespace peernet::http
