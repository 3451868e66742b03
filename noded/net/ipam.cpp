#include "net/ipam.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "podwarp/pki.h"

namespace podwarp::noded::net {

namespace fs = std::filesystem;

namespace {

bool valid_uid(const std::string& uid) {
  if (uid.empty() || uid.size() > 128) return false;
  for (char c : uid)
    if (c == '\n' || c == '\0' || c == '/') return false;
  return true;
}

std::expected<void, SysError> write_record(const std::string& dir, Ipv4 ip,
                                           const std::string& uid) {
  // Not fsynced: the record must survive noded's restarts (the page cache does), not the
  // machine's; after a reboot every pod's sandbox is gone and its record released. The rename
  // keeps a crash of noded from leaving a half-written record.
  auto w = pki::write_file_atomic(dir + "/" + to_string(ip), uid + "\n", 0644,
                                  pki::Durability::kProcess);
  if (!w) return std::unexpected(SysError{EIO, w.error()});
  return {};
}

}  // namespace

std::expected<Ipam, SysError> Ipam::open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return std::unexpected(SysError{ec.value(), "mkdir " + dir + ": " + ec.message()});
  Ipam ipam;
  ipam.dir_ = dir;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(".") && name.find(".tmp") != std::string::npos) {
      std::error_code rm;
      fs::remove(e.path(), rm);  // an interrupted write: the record was never published
      continue;
    }
    auto ip = parse_ipv4(name);
    if (!ip || !e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::string uid;
    std::getline(in, uid);
    if (!valid_uid(uid)) continue;
    ipam.by_ip_[*ip] = uid;
  }
  if (ec) return std::unexpected(SysError{ec.value(), "read dir " + dir + ": " + ec.message()});
  return ipam;
}

bool Ipam::usable(Ipv4 ip) const {
  if (!cidr_ || !cidr_->contains(ip)) return false;
  std::uint64_t off = ip.value - cidr_->network.value;
  std::uint64_t n = cidr_->size();
  if (n <= 2) return true;         // /31, /32: no network or broadcast address to skip
  return off >= 2 && off < n - 1;  // not the network, the node's (first) or the broadcast one
}

std::uint64_t Ipam::capacity() const {
  if (!cidr_) return 0;
  std::uint64_t n = cidr_->size();
  return n <= 2 ? n : n - 3;
}

std::optional<Ipv4> Ipam::lookup(const std::string& pod_uid) const {
  for (const auto& [ip, uid] : by_ip_)
    if (uid == pod_uid) return ip;
  return std::nullopt;
}

std::expected<Ipv4, SysError> Ipam::allocate(const std::string& pod_uid) {
  if (!valid_uid(pod_uid))
    return std::unexpected(SysError{EINVAL, "ipam: invalid pod uid \"" + pod_uid + "\""});
  if (auto ip = lookup(pod_uid)) return *ip;
  if (!cidr_) return std::unexpected(logic_error("ipam: the node has no podCIDR yet"));
  std::uint64_t n = cidr_->size();
  std::uint64_t start = 0;
  if (last_ && cidr_->contains(*last_)) start = (last_->value - cidr_->network.value + 1) % n;
  for (std::uint64_t i = 0; i < n; ++i) {
    Ipv4 ip = cidr_->at((start + i) % n);
    if (!usable(ip) || by_ip_.contains(ip)) continue;
    if (auto w = write_record(dir_, ip, pod_uid); !w)
      return std::unexpected(w.error().wrap("ipam"));
    by_ip_[ip] = pod_uid;
    last_ = ip;
    return ip;
  }
  return std::unexpected(SysError{ENOSPC, "ipam: no free address in podCIDR " + to_string(*cidr_) +
                                              " (" + std::to_string(by_ip_.size()) +
                                              " allocated)"});
}

std::expected<void, SysError> Ipam::release(const std::string& pod_uid) {
  for (auto it = by_ip_.begin(); it != by_ip_.end();) {
    if (it->second != pod_uid) {
      ++it;
      continue;
    }
    std::string path = dir_ + "/" + to_string(it->first);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return std::unexpected(errno_error("ipam: unlink " + path));
    it = by_ip_.erase(it);
  }
  return {};
}

}  // namespace podwarp::noded::net
