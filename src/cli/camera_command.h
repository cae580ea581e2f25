#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace peernet::cli {

/// Adds `peernet camera serve|view` to `app`. The chosen subcommand sets `run`, which the caller
/// runs after parsing and which returns the exit status.
void add_camera_command(CLI::App& app, const GlobalOptions& global, std::function<int()>& run);

}  // namespace peernet::cli
