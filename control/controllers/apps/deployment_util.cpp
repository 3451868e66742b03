#include "controllers/apps/deployment_util.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "controllers/apps/common.h"

namespace podwarp::apps {

DeploymentParams deployment_params(const json::value& d) {
  DeploymentParams p;
  p.replicas = get_int(d, {"spec", "replicas"}, 1);
  p.recreate = get_string(d, {"spec", "strategy", "type"}) == "Recreate";
  if (p.recreate) {
    p.max_surge = 0;
    p.max_unavailable = 0;
  } else {
    auto [s, u] = resolve_fenceposts(find_path(d, {"spec", "strategy", "rollingUpdate", "maxSurge"}),
                                     find_path(d, {"spec", "strategy", "rollingUpdate",
                                                   "maxUnavailable"}),
                                     p.replicas);
    p.max_surge = s;
    p.max_unavailable = std::min(u, p.replicas);  // upstream MaxUnavailable caps at replicas
  }
  p.min_ready_seconds = get_int(d, {"spec", "minReadySeconds"});
  if (const json::value* v = find_path(d, {"spec", "revisionHistoryLimit"}); v && v->is_number()) {
    p.revision_history_limit = get_int(d, {"spec", "revisionHistoryLimit"});
  }
  if (const json::value* v = find_path(d, {"spec", "progressDeadlineSeconds"});
      v && v->is_number()) {
    std::int64_t s = get_int(d, {"spec", "progressDeadlineSeconds"});
    p.progress_deadline_seconds = s == 2147483647 ? std::nullopt : std::optional<std::int64_t>(s);
  }
  p.paused = get_bool(d, {"spec", "paused"});
  return p;
}

std::int64_t new_rs_replicas_rolling(const DeploymentParams& p, std::int64_t all_rs_replicas,
                                     std::int64_t new_rs_replicas) {
  if (p.recreate) return p.replicas;
  std::int64_t max_total = p.replicas + p.max_surge;
  if (all_rs_replicas >= max_total) return new_rs_replicas;
  std::int64_t scale_up = max_total - all_rs_replicas;
  scale_up = std::min(scale_up, p.replicas - new_rs_replicas);
  return new_rs_replicas + std::max<std::int64_t>(scale_up, 0);
}

std::int64_t max_scaled_down(const DeploymentParams& p, std::int64_t all_rs_replicas,
                             std::int64_t new_rs_replicas, std::int64_t new_rs_available) {
  std::int64_t min_available = p.replicas - p.max_unavailable;
  std::int64_t new_unavailable = std::max<std::int64_t>(new_rs_replicas - new_rs_available, 0);
  return all_rs_replicas - min_available - new_unavailable;
}

std::vector<std::int64_t> plan_old_scale_down(const DeploymentParams& p, std::vector<RsView> olds,
                                              std::int64_t max_scale_down,
                                              std::int64_t new_rs_available) {
  std::vector<std::size_t> order(olds.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (olds[a].created != olds[b].created) return olds[a].created < olds[b].created;
    return olds[a].name < olds[b].name;
  });
  // 1. cleanupUnhealthyReplicas: drop unavailable old replicas first, within the budget.
  std::int64_t cleaned = 0;
  for (std::size_t i : order) {
    if (cleaned >= max_scale_down) break;
    RsView& rs = olds[i];
    if (rs.replicas == 0 || rs.replicas == rs.available) continue;
    std::int64_t n = std::min(max_scale_down - cleaned, rs.replicas - rs.available);
    rs.replicas -= n;
    cleaned += n;
  }
  // 2. scaleDownOldReplicaSetsForRollingUpdate: keep minAvailable available.
  std::int64_t min_available = p.replicas - p.max_unavailable;
  std::int64_t available = new_rs_available;
  for (const RsView& rs : olds) available += std::min(rs.available, rs.replicas);
  if (available > min_available) {
    std::int64_t total = available - min_available, done = 0;
    for (std::size_t i : order) {
      if (done >= total) break;
      RsView& rs = olds[i];
      if (rs.replicas == 0) continue;
      std::int64_t n = std::min(rs.replicas, total - done);
      rs.replicas -= n;
      done += n;
    }
  }
  std::vector<std::int64_t> out;
  for (const RsView& rs : olds) out.push_back(rs.replicas);
  return out;
}

std::vector<std::int64_t> proportional_scale(const DeploymentParams& p, std::vector<RsView> active,
                                             std::int64_t status_replicas) {
  std::int64_t all = 0;
  for (const RsView& rs : active) all += rs.replicas;
  std::int64_t allowed = p.replicas > 0 ? p.replicas + p.max_surge : 0;
  std::int64_t to_add = allowed - all;
  std::vector<std::size_t> order(active.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (active[a].replicas != active[b].replicas) return active[a].replicas > active[b].replicas;
    if (active[a].created != active[b].created) {
      return to_add > 0 ? active[a].created > active[b].created
                        : active[a].created < active[b].created;
    }
    return active[a].name < active[b].name;
  });
  std::vector<std::int64_t> size(active.size());
  std::int64_t added = 0;
  for (std::size_t i : order) {
    const RsView& rs = active[i];
    std::int64_t proportion = 0;
    if (to_add != 0 && rs.replicas != 0 && to_add != added) {
      std::int64_t fraction;
      if (p.replicas == 0) {
        fraction = -rs.replicas;
      } else {
        std::int64_t annotated = rs.max_replicas_annotation.value_or(status_replicas);
        if (annotated == 0) {
          fraction = 0;
        } else {
          double n = static_cast<double>(rs.replicas * (p.replicas + p.max_surge)) /
                     static_cast<double>(annotated);
          fraction = static_cast<std::int64_t>(std::llround(n)) - rs.replicas;
        }
      }
      std::int64_t allowed_left = to_add - added;
      proportion = to_add > 0 ? std::min(fraction, allowed_left) : std::max(fraction, allowed_left);
    }
    size[i] = rs.replicas + proportion;
    added += proportion;
  }
  if (to_add != 0 && !order.empty()) {
    std::size_t first = order.front();
    size[first] = std::max<std::int64_t>(size[first] + (to_add - added), 0);
  }
  return size;
}

}  // namespace podwarp::apps
