// The error type of the image store: a kind that callers branch on, and a message that names
// what failed ("blob sha256:ab12...: digest mismatch: got sha256:cd34...", "openat2 etc/x in
// layer sha256:...: EXDEV").
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace podwarp::images {

enum class ErrorKind {
  kInvalidReference,  // a reference that does not parse (kubelet reason InvalidImageName)
  kNotFound,          // image, manifest, blob or tag absent (locally or in the registry)
  kNeverPull,         // policy Never and the image is not present (ErrImageNeverPull)
  kUnauthorized,      // 401/403 from a registry or its token server
  kDigestMismatch,    // content does not hash to its digest (blob, manifest or diffID)
  kBadContent,        // malformed manifest/config/archive, unsupported media type or platform
  kUnsafeLayer,       // a layer entry that would escape its directory
  kNetwork,           // connect, TLS, timeout, protocol errors
  kRegistry,          // any other non-2xx reply of a registry
  kIo,                // a failed syscall on the local store
  kInUse,             // removing an image a container uses, or a busy mount
};

std::string_view to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kIo;
  std::string message;

  // "<message>" (the kind is for branching; the message says what happened).
  const std::string& to_string() const { return message; }
};

template <class T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(ErrorKind kind, std::string message) {
  return std::unexpected(Error{kind, std::move(message)});
}

// "<what>: <strerror name>" for a syscall failure, e.g. "mkdirat bin in layer x: EACCES".
std::unexpected<Error> fail_errno(std::string what, int err);
// The errno name ("ENOENT"), or the number when unknown.
std::string errno_name(int err);

}  // namespace podwarp::images
