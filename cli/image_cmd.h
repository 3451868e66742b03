// `podwarp image pull|import|ls|rm`: the node's image store from the command line.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace podwarp::cli {

struct GlobalOptions {
  std::string root_dir = "/var/lib/podwarp";
  std::vector<std::string> insecure_registries;
  std::string log_level = "warn";
};

// Adds the `image` subcommand tree to app. The commands set `exit_code` when they run.
void add_image_commands(CLI::App& app, GlobalOptions& globals, int& exit_code);

// "2.04MB", as crictl prints sizes (decimal units, 4 significant digits).
std::string human_size(double bytes);

}  // namespace podwarp::cli
