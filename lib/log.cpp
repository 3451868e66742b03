#include "podwarp/log.h"

#include <string>

namespace podwarp::log {

void set_level(std::string_view level) {
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
}

}  // namespace podwarp::log
