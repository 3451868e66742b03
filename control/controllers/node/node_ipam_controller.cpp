#include "node/node_ipam_controller.h"

#include <fmt/format.h>

#include "loop/api.h"
#include "podwarp/log.h"

namespace podwarp::controllers {

namespace {

using client::Awaitable;
using client::ObjectPtr;
using client::Result;

}  // namespace

NodeIpamController::NodeIpamController(loop::ControllerContext& ctx)
    : ctx_(ctx),
      recorder_(ctx.recorder("cidrAllocator")),
      queue_(
          ctx.executor, "node-ipam", [this](std::string key) { return sync(std::move(key)); }, 1),
      nodes_(ctx.informers.informer(loop::resource("", "nodes"))) {
  auto& inf = ctx.informers;
  auto seen = [this](const json::value& n) {
    if (!started_ || !allocator_) return;
    std::string_view cidr = get_string(n, {"spec", "podCIDR"});
    if (!cidr.empty()) {
      allocator_->occupy(cidr);
    } else {
      queue_.add(std::string(get_string(n, {"metadata", "name"})));
    }
  };
  inf.on_add(loop::resource("", "nodes"), seen);
  inf.on_update(loop::resource("", "nodes"),
                [seen](const json::value&, const json::value& n) { seen(n); });
  inf.on_delete(loop::resource("", "nodes"), [this](const json::value& n) {
    if (!started_ || !allocator_) return;
    std::string name(get_string(n, {"metadata", "name"}));
    std::string cidr(get_string(n, {"spec", "podCIDR"}));
    if (auto it = pending_.find(name); it != pending_.end()) {
      if (cidr.empty()) cidr = it->second;
      pending_.erase(it);
    }
    // Another node may have taken the subnet meanwhile (a recreated node); only free it when
    // no node has it.
    bool in_use = false;
    for (const auto& o : nodes_.list()) {
      if (get_string(*o, {"spec", "podCIDR"}) == cidr) in_use = true;
    }
    if (!cidr.empty() && !in_use && allocator_->release(cidr)) {
      log::info("node-ipam: released {} of deleted node {}", cidr, name);
      enqueue_unassigned();
    }
  });
}

void NodeIpamController::start() {
  auto a = CidrAllocator::create(ctx_.options.cluster_cidr, ctx_.options.node_cidr_mask_size);
  if (!a) {
    log::error("node-ipam: disabled: {}", a.error());
    return;
  }
  allocator_ = std::move(*a);
  // Rebuild from the nodes first, then hand out subnets.
  for (const auto& n : nodes_.list()) {
    std::string_view cidr = get_string(*n, {"spec", "podCIDR"});
    if (!cidr.empty() && !allocator_->occupy(cidr)) {
      log::warn("node-ipam: node {} has podCIDR {} outside cluster CIDR {}",
                get_string(*n, {"metadata", "name"}), cidr, ctx_.options.cluster_cidr);
    }
  }
  started_ = true;
  queue_.start();
  enqueue_unassigned();
}

void NodeIpamController::stop() {
  started_ = false;
  queue_.stop();
}

void NodeIpamController::enqueue_unassigned() {
  for (const auto& n : nodes_.list()) {
    if (get_string(*n, {"spec", "podCIDR"}).empty()) {
      queue_.add(std::string(get_string(*n, {"metadata", "name"})));
    }
  }
}

Awaitable<Result<void>> NodeIpamController::sync(std::string name) {
  ObjectPtr node = nodes_.get("", name);
  if (!node || !allocator_) co_return Result<void>{};
  if (std::string_view cidr = get_string(*node, {"spec", "podCIDR"}); !cidr.empty()) {
    allocator_->occupy(cidr);
    pending_.erase(name);
    co_return Result<void>{};
  }
  std::string cidr;
  if (auto it = pending_.find(name); it != pending_.end()) {
    cidr = it->second;
  } else if (auto next = allocator_->allocate()) {
    cidr = *next;
    pending_[name] = cidr;
  } else {
    recorder_.record(*node, "Normal", "CIDRNotAvailable",
                     fmt::format("Node {} status is now: CIDRNotAvailable", name));
    log::warn("node-ipam: no free /{} left in {} for node {}", ctx_.options.node_cidr_mask_size,
              ctx_.options.cluster_cidr, name);
    co_return Result<void>{};  // retried when a subnet is released
  }
  std::string patch = to_json(json::object{
      {"spec", json::object{{"podCIDR", cidr}, {"podCIDRs", json::array{json::value(cidr)}}}}});
  auto r = co_await loop::api_patch(ctx_.client, loop::resource("", "nodes"), std::string(), name,
                                    patch);
  if (!r) {
    if (r.error().is_not_found() || r.error().code == 422) {
      // Gone, or its podCIDR was set meanwhile (immutable): the informer brings the truth.
      allocator_->release(cidr);
      pending_.erase(name);
      co_return Result<void>{};
    }
    recorder_.record(*node, "Normal", "CIDRAssignmentFailed",
                     fmt::format("Node {} status is now: CIDRAssignmentFailed", name));
    co_return std::unexpected(r.error());  // retried with the same pending subnet
  }
  std::string_view got = get_string(*r, {"spec", "podCIDR"});
  if (got != cidr) {
    // Someone else set it first: keep theirs.
    allocator_->release(cidr);
    if (!got.empty()) allocator_->occupy(got);
  }
  pending_.erase(name);
  log::info("node-ipam: node {} gets podCIDR {}", name, got);
  co_return Result<void>{};
}

}  // namespace podwarp::controllers
