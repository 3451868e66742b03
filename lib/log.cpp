#include "podwarp/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace podwarp::log {

void set_level(std::string_view level) {
  // Logs go to stderr, as daemons' (and klog's) do: stdout carries only what a program
  // prints for its caller (podwarp-control's "serving on" line), and a caller that stops
  // reading stdout must never block the logger.
  static const bool once = [] {
    auto logger = spdlog::stderr_color_mt("podwarp");
    spdlog::set_default_logger(logger);
    return true;
  }();
  (void)once;
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
}

}  // namespace podwarp::log
