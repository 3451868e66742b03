// SHA-256 content digests and a file writer that verifies a digest while the bytes stream in.
// Not thread-safe per object; distinct objects are independent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "images/error.h"

namespace podwarp::images {

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::string_view data);
  // "sha256:<64 lowercase hex>"; the hasher must not be used afterwards.
  std::string finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// "sha256:<hex>" of data.
std::string sha256_digest(std::string_view data);
// The 64 hex digits of "sha256:<hex>" (the input unchanged when there is no prefix).
std::string_view digest_hex(std::string_view digest);

// Writes a blob to a temporary file beside `final_path`, hashing as it goes. commit() checks the
// digest (and the size when known) and renames the file into place; on a mismatch the file is
// deleted and the error (kind kDigestMismatch) names the expected and actual digests. A writer
// destroyed without a successful commit deletes its temporary file.
class VerifyingWriter {
 public:
  static Result<VerifyingWriter> create(std::filesystem::path final_path,
                                        std::string expected_digest,
                                        std::optional<std::uint64_t> expected_size = {});
  VerifyingWriter(VerifyingWriter&&) noexcept;
  VerifyingWriter& operator=(VerifyingWriter&&) = delete;
  ~VerifyingWriter();

  // Fails when the bytes exceed the expected size (a registry that sends too much).
  Result<void> write(std::string_view data);
  std::uint64_t written() const { return written_; }
  Result<void> commit();

 private:
  VerifyingWriter() = default;
  void discard();

  int fd_ = -1;
  std::filesystem::path tmp_path_;
  std::filesystem::path final_path_;
  std::string expected_;
  std::optional<std::uint64_t> expected_size_;
  std::uint64_t written_ = 0;
  Sha256 hash_;
};

}  // namespace podwarp::images
