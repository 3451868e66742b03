// Logging: spdlog behind a small facade so every component logs the same way
// ("<time> <level> <component>: message"). Thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace podwarp::log {

// Sets the level from a name ("trace", "debug", "info", "warn", "error").
void set_level(std::string_view level);

using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::trace;
using spdlog::warn;

}  // namespace podwarp::log
