// podwarp: the command line tool. Subcommand trees live in their own files (image_cmd.cpp).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "image_cmd.h"
#include "trace_cmd.h"
#include "up_cmd.h"
#include "podwarp/log.h"

int main(int argc, char** argv) {
  CLI::App app{"podwarp: a Kubernetes-compatible cluster for bare metal"};
  app.require_subcommand(1);
  podwarp::cli::GlobalOptions globals;
  app.add_option("--root-dir", globals.root_dir, "noded's state directory")
      ->capture_default_str();
  app.add_option("--insecure-registry", globals.insecure_registries,
                 "registry host:port to reach over plain HTTP (repeatable; loopback always is)");
  app.add_option("--log-level", globals.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  int exit_code = 0;
  podwarp::cli::add_image_commands(app, globals, exit_code);
  podwarp::cli::add_up_commands(app, globals, exit_code);
  podwarp::cli::add_trace_command(app, globals, exit_code);
  app.parse_complete_callback([&] { podwarp::log::set_level(globals.log_level); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  spdlog::shutdown();
  // No destructors: an io_context must not be torn down with io_uring operations pending.
  ::_exit(exit_code);
}
