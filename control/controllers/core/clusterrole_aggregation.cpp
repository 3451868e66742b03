#include "core/clusterrole_aggregation.h"

#include <algorithm>

#include "podwarp/informer.h"
#include "podwarp/selector.h"

namespace podwarp::controllers {

json::array aggregate_rules(const json::value& role, const std::vector<client::ObjectPtr>& all) {
  json::array rules;
  const json::value* sels = find_path(role, {"aggregationRule", "clusterRoleSelectors"});
  if (sels == nullptr || !sels->is_array()) return rules;
  std::vector<client::ObjectPtr> sorted = all;
  std::sort(sorted.begin(), sorted.end(),
            [](const client::ObjectPtr& a, const client::ObjectPtr& b) { return name_of(*a) < name_of(*b); });
  for (const json::value& s : sels->as_array()) {
    auto sel = LabelSelector::from_json(s);
    if (!sel) continue;
    for (const client::ObjectPtr& other : sorted) {
      if (name_of(*other) == name_of(role) || !sel->matches(*other)) continue;
      const json::value* theirs = find_path(*other, {"rules"});
      if (theirs == nullptr || !theirs->is_array()) continue;
      for (const json::value& rule : theirs->as_array()) {
        if (std::find(rules.begin(), rules.end(), rule) == rules.end()) rules.push_back(rule);
      }
    }
  }
  return rules;
}

namespace {

class ClusterRoleAggregation : public ControllerBase {
 public:
  explicit ClusterRoleAggregation(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "clusterrole-aggregation"),
        res_(resource("rbac.authorization.k8s.io", "clusterroles")),
        roles_(informers_.informer(res_)) {}

  void init() override {
    std::weak_ptr<ClusterRoleAggregation> w =
        std::static_pointer_cast<ClusterRoleAggregation>(shared_from_this());
    loop::on_object_change(informers_, res_,
                           guarded(w, [](ClusterRoleAggregation& s, const json::value&) {
                             s.enqueue_aggregated();
                           }));
  }

  void on_start() override { enqueue_aggregated(); }

  Awaitable<Result<void>> sync(std::string name) override {
    client::ObjectPtr role = roles_.get("", name);
    if (!role || find_path(*role, {"aggregationRule"}) == nullptr) co_return Result<void>{};
    json::array rules = aggregate_rules(*role, roles_.list());
    const json::value* current = find_path(*role, {"rules"});
    const bool same = current ? *current == rules : rules.empty();
    if (same) co_return Result<void>{};
    json::value next = *role;
    next.as_object()["rules"] = std::move(rules);
    auto r = co_await loop::api_update(client_, res_, "", std::move(next));
    if (!r && r.error().code == 409) queue().add(name);  // the cache lags: again from it
    if (!r && r.error().code != 409 && r.error().code != 404) co_return std::unexpected(r.error());
    co_return Result<void>{};
  }

 private:
  void enqueue_aggregated() {
    for (const client::ObjectPtr& r : roles_.list()) {
      if (find_path(*r, {"aggregationRule"}) != nullptr) queue().add(std::string(name_of(*r)));
    }
  }

  const api::Resource& res_;
  client::Informer& roles_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_clusterrole_aggregation_controller(
    loop::ControllerContext& ctx) {
  return make_controller<ClusterRoleAggregation>(ctx);
}

}  // namespace podwarp::controllers
