#include "http/exchange.h"

#include <sstream>
#include <string>

#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include "core/api_error.h"
#include "peernet.pb.h"

namespace peernet::http {
namespace {

/// What Beast's own serializer writes for the response: the reference wire_header() must match.
std::string beast_bytes(const HttpResponse& response) {
  std::ostringstream out;
  out << response;
  return out.str();
}

std::string our_bytes(const HttpResponse& response) {
  return wire_header(response) + response.body();
}

TEST(ExchangeTest, WireBytesAreBeastsForEveryKindOfReply) {
  ReplyShape shape;
  Reply listing;
  ListServersResponse servers;
  servers.add_servers()->set_unique_id("cam");
  listing.message = std::make_shared<const ListServersResponse>(servers);
  const auto ok = render(listing, shape, true);
  EXPECT_EQ(our_bytes(ok), beast_bytes(ok));
  EXPECT_EQ(our_bytes(ok).substr(0, 17), "HTTP/1.1 200 OK\r\n");

  Reply busy = Reply::failure({core::ErrorCode::kUnavailable, "stopping", std::chrono::seconds{3}});
  shape.allow = "GET, POST";
  const auto refused = render(busy, shape, false);
  EXPECT_EQ(our_bytes(refused), beast_bytes(refused));
  EXPECT_NE(our_bytes(refused).find("Retry-After: 3\r\n"), std::string::npos);
  EXPECT_NE(our_bytes(refused).find("Connection: close\r\n"), std::string::npos);

  ReplyShape old_head;
  old_head.version = 10;
  old_head.head = true;
  Reply text;
  text.text = "ok\n";
  const auto head = render(text, old_head, true);
  EXPECT_EQ(our_bytes(head), beast_bytes(head));
  EXPECT_EQ(our_bytes(head).substr(0, 17), "HTTP/1.0 200 OK\r\n");
  EXPECT_NE(our_bytes(head).find("Content-Length: 3\r\n\r\n"), std::string::npos)
      << "HEAD tells the length a GET would get, and sends no body";
}

TEST(ExchangeTest, AnEncodedReplySendsTheEncodingAskedFor) {
  ListServersResponse servers;
  servers.add_servers()->set_unique_id("cam");
  Reply reply;
  reply.message = std::make_shared<const ListServersResponse>(servers);
  reply.encoded = std::make_shared<const EncodedMessage>(
      EncodedMessage{codec::encode(servers, codec::Encoding::kJson),
                     codec::encode(servers, codec::Encoding::kProto)});
  ReplyShape shape;
  EXPECT_EQ(render(reply, shape, true).body(), R"({"servers":[{"unique_id":"cam"}]})");
  shape.reply_type = {codec::Encoding::kProto, "application/proto"};
  const auto binary = render(reply, shape, true);
  EXPECT_EQ(binary.body(), servers.SerializeAsString());
  EXPECT_EQ(binary[boost::beast::http::field::content_type], "application/proto");
}

}  // namespace
}  // namespace peernet::http
