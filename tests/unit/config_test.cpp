#include "daemon/config.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <source_location>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <toml++/toml.h>

namespace peernet::daemon {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

/// Runs the command-line parser as `peernetd <args...>`.
Invocation parse(std::vector<std::string> args) {
  args.insert(args.begin(), "peernetd");
  std::vector<const char*> argv;
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

/// A directory of its own for each test, removed afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  ConfigTest() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("peernet-config-test-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::create_directories(dir_);
  }
  ~ConfigTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string write_file(std::string_view text, std::string_view name = "peernetd.conf") {
    const auto path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, Defaults) {
  const auto run = parse({});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_FALSE(run.output.has_value());
  const auto& c = run.config;
  EXPECT_EQ(c.listen, "::");
  EXPECT_EQ(c.port, 8470);
  EXPECT_EQ(c.port_file, "");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.http.max_wait, seconds{30});
  EXPECT_EQ(c.registry.default_room, "default");
  EXPECT_EQ(c.registry.server_ttl_default, seconds{30});
  EXPECT_EQ(c.registry.knock_ttl, seconds{60});
  EXPECT_EQ(c.registry.max_sdp_bytes, 65'536U);
}

TEST_F(ConfigTest, FlagsOverrideDefaults) {
  const auto run = parse({"--listen", "127.0.0.1", "--port", "0", "--port-file", "/run/p.port",
                          "--max-wait", "10", "--default-room", "", "--knock-ttl", "90",
                          "--max-pending-knocks-per-server", "3"});
  ASSERT_EQ(run.exit_code, 0) << run.output.value_or("");
  const auto& c = run.config;
  EXPECT_EQ(c.listen, "127.0.0.1");
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.port_file, "/run/p.port");
  EXPECT_EQ(c.http.max_wait, seconds{10});
  EXPECT_EQ(c.registry.default_room, "");
  EXPECT_EQ(c.registry.knock_ttl, seconds{90});
  EXPECT_EQ(c.registry.max_pending_knocks_per_server, 3U);
  EXPECT_EQ(c.registry.knock_linger, seconds{10}) << "untouched options keep their defaults";
}

TEST_F(ConfigTest, FileIsReadAndFlagsOverrideIt) {
  const auto path = write_file(R"(
# a home box
listen = "127.0.0.1"
port = 9000
knock_ttl = 120
default_room = "home"
)");
  const auto from_file = parse({"--config", path});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.output.value_or("");
  EXPECT_EQ(from_file.config.listen, "127.0.0.1");
  EXPECT_EQ(from_file.config.port, 9000);
  EXPECT_EQ(from_file.config.registry.knock_ttl, seconds{120});
  EXPECT_EQ(from_file.config.registry.default_room, "home");

  const auto overridden = parse({"--port", "9100", "-c", path, "--default-room", "lab"});
  ASSERT_EQ(overridden.exit_code, 0) << overridden.output.value_or("");
  EXPECT_EQ(overridden.config.port, 9100);
  EXPECT_EQ(overridden.config.registry.default_room, "lab");
  EXPECT_EQ(overridden.config.listen, "127.0.0.1");
  EXPECT_EQ(overridden.config.registry.knock_ttl, seconds{120});
}

/// Expects the run to fail with a message that names `mentions`.
void expect_refused(const Invocation& run, std::string_view mentions,
                    std::source_location where = std::source_location::current()) {
  const ::testing::ScopedTrace trace(where.file_name(), static_cast<int>(where.line()),
                                     "expect_refused");
  EXPECT_NE(run.exit_code, 0);
  ASSERT_TRUE(run.output.has_value());
  EXPECT_THAT(*run.output, HasSubstr(std::string(mentions)));
}

TEST_F(ConfigTest, UnknownOptionInFileIsRefused) {
  expect_refused(parse({"--config", write_file("port = 9000\nmax_wiat = 10\n")}), "max_wiat");
}

TEST_F(ConfigTest, BadNumbersAreRefused) {
  expect_refused(parse({"--config", write_file("port = 70000\n")}), "port");
  expect_refused(parse({"--config", write_file("max_body_bytes = -1\n")}), "max_body_bytes");
  expect_refused(parse({"--config", write_file("knock_ttl = \"soon\"\n")}), "knock_ttl");
  expect_refused(parse({"--max-wait", "abc"}), "max_wait");
  expect_refused(parse({"--port", "65536"}), "port");
  expect_refused(parse({"--max-rooms", "12x"}), "max_rooms");
}

TEST_F(ConfigTest, BooleansAreNeitherNumbersNorText) {
  expect_refused(parse({"--config", write_file("threads = true\n")}), "threads");
  expect_refused(parse({"--config", write_file("default_room = false\n")}), "default_room");
}

TEST_F(ConfigTest, BrokenFileIsRefused) {
  const auto path = write_file("port = \n");
  expect_refused(parse({"--config", path}), path);
  expect_refused(parse({"--config", (dir_ / "missing.conf").string()}), "missing.conf");
}

TEST_F(ConfigTest, TtlBoundsMustHoldTheDefault) {
  expect_refused(parse({"--server-ttl", "400"}), "server_ttl");
  expect_refused(parse({"--server-ttl-min", "60"}), "server_ttl");
}

TEST_F(ConfigTest, UnknownFlagIsRefused) { EXPECT_NE(parse({"--colour", "red"}).exit_code, 0); }

TEST_F(ConfigTest, PrintedConfigReadsBackTheSame) {
  const auto printed = parse({"--print-config", "--port", "0", "--listen", "127.0.0.1",
                              "--port-file", "/tmp/peernetd port", "--default-room", "",
                              "--server-ttl-max", "600", "--max-body-bytes", "1048576"});
  ASSERT_EQ(printed.exit_code, 0);
  ASSERT_TRUE(printed.output.has_value());

  const auto reread = parse({"--config", write_file(*printed.output)});
  ASSERT_EQ(reread.exit_code, 0) << reread.output.value_or("") << "\n" << *printed.output;
  EXPECT_EQ(to_toml(reread.config), to_toml(printed.config));
  EXPECT_EQ(reread.config.port, 0);
  EXPECT_EQ(reread.config.port_file, "/tmp/peernetd port");
  EXPECT_EQ(reread.config.registry.default_room, "");
  EXPECT_EQ(reread.config.registry.server_ttl_max, seconds{600});
  EXPECT_EQ(reread.config.http.max_body_bytes, 1'048'576U);
}

TEST_F(ConfigTest, PrintedConfigKeepsQuotesAndBackslashes) {
  const auto printed = parse({"--print-config", "--port-file", R"(C:\peernet\"port".txt)"});
  ASSERT_TRUE(printed.output.has_value());
  const auto reread = parse({"--config", write_file(*printed.output)});
  ASSERT_EQ(reread.exit_code, 0) << reread.output.value_or("");
  EXPECT_EQ(reread.config.port_file, R"(C:\peernet\"port".txt)");
}

TEST_F(ConfigTest, OptionNamesAreTheKeysOfThePrintedConfig) {
  const auto names = option_names();
  const std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), names.size()) << "an option is listed twice";

  const auto table = toml::parse(to_toml(Config{}));
  std::set<std::string> keys;
  for (const auto& [key, value] : table) {
    keys.emplace(key.str());
  }
  EXPECT_EQ(keys, unique);
}

TEST_F(ConfigTest, EveryLimitIsAnOption) {
  // Each field of Config, HttpLimits and RegistryLimits, by the option name it should have.
  const std::vector<std::string> expected = {
      "listen", "port", "port_file", "threads", "log_level", "drain_timeout",
      // http::HttpLimits
      "max_body_bytes", "max_header_bytes", "request_timeout", "idle_timeout", "write_timeout",
      "max_wait", "max_connections",
      // core::RegistryLimits
      "default_room", "server_ttl", "server_ttl_min", "server_ttl_max", "knock_ttl", "knock_linger",
      "max_rooms", "max_servers", "max_servers_per_room", "max_services_per_server",
      "max_pending_knocks_per_server", "max_candidates_per_side", "max_candidate_bytes",
      "max_sdp_bytes", "max_text_bytes", "max_service_bytes"};
  const auto names = option_names();
  for (const auto& name : expected) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

TEST_F(ConfigTest, IdLengthLimitIsAnOption) {
  const auto names = option_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "max_id_length"), names.end());
  EXPECT_EQ(parse({"--max-id-length", "64"}).config.registry.max_id_length, 64U);
}

TEST_F(ConfigTest, HelpListsAFlagForEveryOption) {
  const auto help = parse({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  ASSERT_TRUE(help.output.has_value());
  for (auto name : option_names()) {
    std::replace(name.begin(), name.end(), '_', '-');
    EXPECT_THAT(*help.output, HasSubstr("--" + name)) << *help.output;
  }
  EXPECT_THAT(*help.output, HasSubstr("--config"));
  EXPECT_THAT(*help.output, HasSubstr("--print-config"));
}

TEST_F(ConfigTest, SampleConfigFileDocumentsEveryOptionWithItsDefault) {
  // tests/unit/config_test.cpp -> config/peernetd.conf
  const auto sample = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                      "config" / "peernetd.conf";
  if (!std::filesystem::exists(sample)) {
    GTEST_SKIP() << sample << " does not exist yet";
  }
  std::ifstream in(sample);
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& name : option_names()) {
    EXPECT_THAT(text.str(), HasSubstr("\n" + name + " = ")) << name << " is not in " << sample;
  }
  const auto run = parse({"--config", sample.string()});
  ASSERT_EQ(run.exit_code, 0) << run.output.value_or("");
  EXPECT_EQ(to_toml(run.config), to_toml(Config{})) << "the sample's values are the defaults";
}

}  // namespace
}  // namespace peernet::daemon
