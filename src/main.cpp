#include <cstdio>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/config.h"
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  const auto invocation = peernet::daemon::parse_command_line(argc, argv);
  if (invocation.output) {
    std::fputs(invocation.output->c_str(), invocation.exit_code == 0 ? stdout : stderr);
    return invocation.exit_code;
  }
  const auto level = spdlog::level::from_str(invocation.config.log_level);
  if (level == spdlog::level::off && invocation.config.log_level != "off") {
    std::fprintf(
        stderr,
        "peernetd: log_level: '%s' is not one of trace, debug, info, warn, error, critical, off\n",
        invocation.config.log_level.c_str());
    return 2;
  }
  // Logs go to stderr (the journal under systemd); stdout stays free for --print-config and such.
  spdlog::set_default_logger(spdlog::stderr_color_mt("peernetd"));
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  return peernet::daemon::run(invocation.config);
}
