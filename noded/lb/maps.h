// LbMaps: the map operations ServiceMap needs from the datapath, behind an interface so the
// slot/diff logic is testable without root (FakeLbMaps below records every operation).
// Datapath::maps() is the real one (one bpf() syscall per call). Key and value types are the
// kernel ABI structs of bpf/lib/lb.h.
#pragma once

#include <cstdint>
#include <cstring>
#include <expected>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "cgroup/sys_error.h"
#include "lib/lb.h"

namespace podwarp::noded::lb {

using Error = SysError;

class LbMaps {
 public:
  virtual ~LbMaps() = default;
  virtual std::expected<void, Error> update_service(const podwarp_lb_svc_key& k,
                                                    const podwarp_lb_svc& v) = 0;
  // Deleting a missing entry is not an error.
  virtual std::expected<void, Error> delete_service(const podwarp_lb_svc_key& k) = 0;
  virtual std::expected<void, Error> update_backend(std::uint32_t id,
                                                    const podwarp_lb_backend& v) = 0;
  virtual std::expected<void, Error> delete_backend(std::uint32_t id) = 0;
  virtual std::expected<void, Error> update_member(const podwarp_lb_member_key& k) = 0;
  virtual std::expected<void, Error> delete_member(const podwarp_lb_member_key& k) = 0;

  // Full scans, for recovering the programmed state after a restart.
  using ServiceFn = std::function<void(const podwarp_lb_svc_key&, const podwarp_lb_svc&)>;
  using BackendFn = std::function<void(std::uint32_t, const podwarp_lb_backend&)>;
  using MemberFn = std::function<void(const podwarp_lb_member_key&)>;
  virtual std::expected<void, Error> for_each_service(const ServiceFn& fn) = 0;
  virtual std::expected<void, Error> for_each_backend(const BackendFn& fn) = 0;
  virtual std::expected<void, Error> for_each_member(const MemberFn& fn) = 0;
};

// Byte-wise ordering of the ABI structs (they have no padding holes: pads are set to 0).
template <typename T>
struct AbiLess {
  bool operator()(const T& a, const T& b) const { return std::memcmp(&a, &b, sizeof(T)) < 0; }
};

// An in-memory LbMaps that counts operations: for tests of ServiceMap and of its callers.
// `fail_after` > 0 makes the n-th following update fail with E2BIG (a full map).
class FakeLbMaps : public LbMaps {
 public:
  std::map<podwarp_lb_svc_key, podwarp_lb_svc, AbiLess<podwarp_lb_svc_key>> services;
  std::map<std::uint32_t, podwarp_lb_backend> backends;
  std::map<podwarp_lb_member_key, int, AbiLess<podwarp_lb_member_key>> members;
  int updates = 0;
  int deletes = 0;
  int fail_after = 0;

  void reset_counts() { updates = deletes = 0; }
  int ops() const { return updates + deletes; }

  std::expected<void, Error> update_service(const podwarp_lb_svc_key& k,
                                            const podwarp_lb_svc& v) override {
    if (auto f = fail("services"); !f) return f;
    services[k] = v;
    return {};
  }
  std::expected<void, Error> delete_service(const podwarp_lb_svc_key& k) override {
    ++deletes;
    services.erase(k);
    return {};
  }
  std::expected<void, Error> update_backend(std::uint32_t id,
                                            const podwarp_lb_backend& v) override {
    if (auto f = fail("backends"); !f) return f;
    backends[id] = v;
    return {};
  }
  std::expected<void, Error> delete_backend(std::uint32_t id) override {
    ++deletes;
    backends.erase(id);
    return {};
  }
  std::expected<void, Error> update_member(const podwarp_lb_member_key& k) override {
    if (auto f = fail("members"); !f) return f;
    members[k] = 1;
    return {};
  }
  std::expected<void, Error> delete_member(const podwarp_lb_member_key& k) override {
    ++deletes;
    members.erase(k);
    return {};
  }
  std::expected<void, Error> for_each_service(const ServiceFn& fn) override {
    for (const auto& [k, v] : services) fn(k, v);
    return {};
  }
  std::expected<void, Error> for_each_backend(const BackendFn& fn) override {
    for (const auto& [k, v] : backends) fn(k, v);
    return {};
  }
  std::expected<void, Error> for_each_member(const MemberFn& fn) override {
    for (const auto& [k, v] : members) fn(k);
    return {};
  }

 private:
  std::expected<void, Error> fail(const char* map) {
    ++updates;
    if (fail_after > 0 && --fail_after == 0)
      return std::unexpected(sys_error(E2BIG, std::string("bpf_map_update_elem ") + map));
    return {};
  }
};

}  // namespace podwarp::noded::lb
