#include "images/error.h"

#include <fmt/format.h>
#include <string.h>

namespace podwarp::images {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidReference:
      return "InvalidReference";
    case ErrorKind::kNotFound:
      return "NotFound";
    case ErrorKind::kNeverPull:
      return "NeverPull";
    case ErrorKind::kUnauthorized:
      return "Unauthorized";
    case ErrorKind::kDigestMismatch:
      return "DigestMismatch";
    case ErrorKind::kBadContent:
      return "BadContent";
    case ErrorKind::kUnsafeLayer:
      return "UnsafeLayer";
    case ErrorKind::kNetwork:
      return "Network";
    case ErrorKind::kRegistry:
      return "Registry";
    case ErrorKind::kIo:
      return "Io";
    case ErrorKind::kInUse:
      return "InUse";
  }
  return "Unknown";
}

std::string errno_name(int err) {
  const char* name = strerrorname_np(err);
  if (name) return name;
  return fmt::format("errno {}", err);
}

std::unexpected<Error> fail_errno(std::string what, int err) {
  return std::unexpected(Error{ErrorKind::kIo, fmt::format("{}: {}", what, errno_name(err))});
}

}  // namespace podwarp::images
