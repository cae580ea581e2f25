// peernet: the command line of PeerNet. One executable with subcommands, as git or docker:
// `peernet files serve|ls|get|put`, `peernet sensors serve|ls|watch|export`,
// `peernet camera serve|view`.
#include <cstdio>
#include <exception>
#include <functional>

#include <CLI/CLI.hpp>

#include "cli/camera_command.h"
#include "cli/common.h"
#include "cli/files_command.h"
#include "cli/sensors_command.h"
#include "daemon/version.h"

int main(int argc, char** argv) {
  using namespace peernet::cli;
  CLI::App app{"peernet: find services in a room of peernetd and talk to them peer to peer"};
  app.set_version_flag("--version", "peernet " + std::string(peernet::daemon::kVersion));
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions global;
  add_global_options(app, global);
  std::function<int()> run;
  add_files_command(app, global, run);
  add_sensors_command(app, global, run);
  add_camera_command(app, global, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);
    return status == 0 ? kOk : kUsage;
  }
  set_up_logging(global.verbosity);
  try {
    return run ? run() : kUsage;
  } catch (...) {
    return report(std::current_exception(), global);
  }
}
