#include "images/digest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

namespace podwarp::images {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::string_view data) { EVP_DigestUpdate(ctx_->md, data.data(), data.size()); }

std::string Sha256::finish() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  std::string s = "sha256:";
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    s += kHex[out[i] >> 4];
    s += kHex[out[i] & 15];
  }
  return s;
}

std::string sha256_digest(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

std::string_view digest_hex(std::string_view digest) {
  auto colon = digest.find(':');
  return colon == std::string_view::npos ? digest : digest.substr(colon + 1);
}

Result<VerifyingWriter> VerifyingWriter::create(std::filesystem::path final_path,
                                                std::string expected_digest,
                                                std::optional<std::uint64_t> expected_size) {
  static std::atomic<unsigned> counter{0};
  VerifyingWriter w;
  w.final_path_ = std::move(final_path);
  w.expected_ = std::move(expected_digest);
  w.expected_size_ = expected_size;
  w.tmp_path_ = w.final_path_;
  w.tmp_path_ += fmt::format(".tmp-{}-{}", ::getpid(), counter++);
  w.fd_ = ::open(w.tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (w.fd_ < 0) return fail_errno("open " + w.tmp_path_.string(), errno);
  return w;
}

VerifyingWriter::VerifyingWriter(VerifyingWriter&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      tmp_path_(std::move(o.tmp_path_)),
      final_path_(std::move(o.final_path_)),
      expected_(std::move(o.expected_)),
      expected_size_(o.expected_size_),
      written_(o.written_),
      hash_(std::move(o.hash_)) {
  o.tmp_path_.clear();
}

VerifyingWriter::~VerifyingWriter() { discard(); }

void VerifyingWriter::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  tmp_path_.clear();
}

Result<void> VerifyingWriter::write(std::string_view data) {
  if (fd_ < 0) return fail(ErrorKind::kIo, "write blob " + expected_ + ": writer is closed");
  if (expected_size_ && written_ + data.size() > *expected_size_) {
    auto err = fail(ErrorKind::kDigestMismatch,
                    fmt::format("blob {}: more than the expected {} bytes", expected_,
                                *expected_size_));
    discard();
    return err;
  }
  hash_.update(data);
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      auto err = fail_errno("write " + tmp_path_.string(), e);
      discard();
      return err;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    written_ += static_cast<std::uint64_t>(n);
  }
  return {};
}

Result<void> VerifyingWriter::commit() {
  if (fd_ < 0) return fail(ErrorKind::kIo, "commit blob " + expected_ + ": writer is closed");
  std::string got = hash_.finish();
  if (got != expected_) {
    discard();
    return fail(ErrorKind::kDigestMismatch,
                fmt::format("blob {}: digest mismatch: got {} ({} bytes); the download was "
                            "deleted",
                            expected_, got, written_));
  }
  if (expected_size_ && written_ != *expected_size_) {
    discard();
    return fail(ErrorKind::kDigestMismatch,
                fmt::format("blob {}: size mismatch: got {} bytes, expected {}", expected_,
                            written_, *expected_size_));
  }
  if (::fsync(fd_) != 0) {
    int e = errno;
    auto err = fail_errno("fsync " + tmp_path_.string(), e);
    discard();
    return err;
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
    int e = errno;
    auto err = fail_errno("rename to " + final_path_.string(), e);
    discard();
    return err;
  }
  tmp_path_.clear();
  return {};
}

}  // namespace podwarp::images
