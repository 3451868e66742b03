#include "core/namespace.h"

#include <fmt/format.h>

#include "podwarp/informer.h"
#include "podwarp/log.h"

namespace podwarp::controllers {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

json::array namespace_deletion_conditions(const json::value& ns, const NamespaceContent& content,
                                          const std::string& now) {
  struct Cond {
    std::string_view type;
    bool status;
    std::string reason;
    std::string message;
  };
  std::vector<Cond> conds;
  conds.push_back({"NamespaceDeletionDiscoveryFailure", false, "ResourcesDiscovered",
                   "All resources successfully discovered"});
  conds.push_back({"NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions",
                   "All legacy kube types successfully parsed"});
  if (content.failed.empty()) {
    conds.push_back({"NamespaceDeletionContentFailure", false, "ContentDeleted",
                     "All content successfully deleted, may be waiting on finalization"});
  } else {
    conds.push_back({"NamespaceDeletionContentFailure", true, "ContentDeletionFailed",
                     fmt::format("Failed to delete all resource types, {} remaining: {}",
                                 content.failed.size(), join(content.failed))});
  }
  if (content.remaining.empty()) {
    conds.push_back(
        {"NamespaceContentRemaining", false, "ContentRemoved", "All content successfully removed"});
  } else {
    std::vector<std::string> parts;
    for (const auto& [res, n] : content.remaining) {
      parts.push_back(fmt::format("{} has {} resource instances", res, n));
    }
    conds.push_back({"NamespaceContentRemaining", true, "SomeResourcesRemain",
                     fmt::format("Some resources are remaining: {}", join(parts))});
  }
  if (content.finalizers.empty()) {
    conds.push_back({"NamespaceFinalizersRemaining", false, "ContentHasNoFinalizers",
                     "All content-preserving finalizers finished"});
  } else {
    std::vector<std::string> parts;
    for (const auto& [f, n] : content.finalizers) {
      parts.push_back(fmt::format("{} in {} resource instances", f, n));
    }
    conds.push_back(
        {"NamespaceFinalizersRemaining", true, "SomeFinalizersRemain",
         fmt::format("Some content in the namespace has finalizers remaining: {}", join(parts))});
  }
  json::array out;
  const json::value* old = find_path(ns, {"status", "conditions"});
  auto old_of = [&](std::string_view type) -> const json::value* {
    if (old == nullptr || !old->is_array()) return nullptr;
    for (const json::value& c : old->get_array()) {
      if (get_string(c, {"type"}) == type) return &c;
    }
    return nullptr;
  };
  for (const Cond& c : conds) {
    std::string_view status = c.status ? "True" : "False";
    std::string transition = now;
    if (const json::value* o = old_of(c.type); o && get_string(*o, {"status"}) == status) {
      transition = std::string(get_string(*o, {"lastTransitionTime"}, now));
    }
    out.push_back(json::object{{"type", c.type},
                               {"status", status},
                               {"lastTransitionTime", transition},
                               {"reason", c.reason},
                               {"message", c.message}});
  }
  // Conditions of other types are kept.
  if (old != nullptr && old->is_array()) {
    for (const json::value& c : old->get_array()) {
      std::string_view t = get_string(c, {"type"});
      bool ours =
          std::any_of(conds.begin(), conds.end(), [&](const Cond& x) { return x.type == t; });
      if (!ours) out.push_back(c);
    }
  }
  return out;
}

namespace {

class NamespaceController : public ControllerBase {
 public:
  explicit NamespaceController(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "namespace"),
        ns_res_(resource("", "namespaces")),
        namespaces_(informers_.informer(ns_res_)) {}

  void init() override {
    std::weak_ptr<NamespaceController> w =
        std::static_pointer_cast<NamespaceController>(shared_from_this());
    using Self = NamespaceController;
    using V = const json::value&;
    loop::on_object_change(informers_, ns_res_, guarded(w, [](Self& s, V o) { s.changed(o); }),
                           false);
  }

  void changed(const json::value& ns) {
    if (being_deleted(ns)) queue().add(std::string(name_of(ns)));
  }

  void on_start() override {
    for (const client::ObjectPtr& n : namespaces_.list()) changed(*n);
  }

  Awaitable<Result<void>> sync(std::string name) override {
    auto cur = co_await loop::api_get(client_, ns_res_, kNoNamespace, name);
    if (!cur) {
      if (cur.error().is_not_found()) co_return Result<void>{};
      co_return std::unexpected(cur.error());
    }
    if (!being_deleted(*cur)) co_return Result<void>{};
    const json::value* spec_fin = find_path(*cur, {"spec", "finalizers"});
    bool ours = false;
    if (spec_fin && spec_fin->is_array()) {
      for (const json::value& f : spec_fin->get_array()) {
        if (f.is_string() && f.get_string() == "kubernetes") ours = true;
      }
    }
    if (!ours) co_return Result<void>{};

    NamespaceContent content;
    json::object delete_options{
        {"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}};
    std::string delete_body = json::serialize(delete_options);
    for (const api::Resource& r : api::resources()) {
      if (!r.namespaced || !r.stored) continue;
      std::string gr = fmt::format("{}.{}", r.plural, r.group);
      std::string path = client::resource_path(r, name);
      auto del = co_await client_.request(kDelete, path, delete_body, kJson);
      if (!del) {
        content.failed.push_back(fmt::format("{}: {}", gr, del.error().to_string()));
        continue;
      }
      if (del->status >= 300 && del->status != 404 && del->status != 405) {
        content.failed.push_back(
            fmt::format("{}: {}", gr, client::error_from_response(*del, "DELETE " + path).message));
        continue;
      }
      auto list = co_await loop::api_list(client_, r, name);
      if (!list) {
        content.failed.push_back(fmt::format("{}: {}", gr, list.error().to_string()));
        continue;
      }
      const json::value* items = find_path(*list, {"items"});
      if (items == nullptr || !items->is_array() || items->get_array().empty()) continue;
      content.remaining[gr] += static_cast<std::int64_t>(items->get_array().size());
      for (const json::value& item : items->get_array()) {
        const json::value* f = find_path(item, {"metadata", "finalizers"});
        if (f == nullptr || !f->is_array()) continue;
        for (const json::value& x : f->get_array()) {
          if (x.is_string()) content.finalizers[std::string(x.get_string())] += 1;
        }
      }
    }

    // Conditions (a failure to write them does not block the deletion).
    json::value with_status = *cur;
    json::array conds = namespace_deletion_conditions(*cur, content, now_rfc3339());
    const json::value* old_conds = find_path(*cur, {"status", "conditions"});
    if (old_conds == nullptr || *old_conds != json::value(conds)) {
      ensure_object(with_status.as_object(), "status")["conditions"] = std::move(conds);
      auto st = co_await loop::api_update_status(client_, ns_res_, kNoNamespace, with_status);
      if (st) {
        with_status = std::move(*st);
      } else {
        log::debug("namespace {}: status update: {}", name, st.error().to_string());
        with_status = *cur;
      }
    }

    if (!content.failed.empty() || !content.remaining.empty()) {
      // Pods terminate gracefully and finalizers run elsewhere: look again soon (upstream
      // estimates from the pods' grace periods; 1 s bounds the extra latency).
      queue().add_after(name, std::chrono::milliseconds(content.remaining.empty() ? 2000 : 500));
      co_return Result<void>{};
    }

    json::array fin;
    if (const json::value* f = find_path(with_status, {"spec", "finalizers"}); f && f->is_array()) {
      for (const json::value& x : f->get_array()) {
        if (!(x.is_string() && x.get_string() == "kubernetes")) fin.push_back(x);
      }
    }
    json::value body = with_status;
    ensure_object(body.as_object(), "spec")["finalizers"] = std::move(fin);
    std::string path = client::resource_path(ns_res_, "", name, "finalize");
    std::string body_text = json::serialize(body);
    auto r = co_await client_.request(kPut, path, body_text, kJson);
    if (!r) co_return std::unexpected(r.error());
    if (r->status == 404) co_return Result<void>{};
    if (r->status >= 300) co_return std::unexpected(client::error_from_response(*r, "PUT " + path));
    co_return Result<void>{};
  }

 private:
  const std::string kNoNamespace;
  const std::string kDelete = "DELETE";
  const std::string kPut = "PUT";
  const std::string kJson = "application/json";
  const api::Resource& ns_res_;
  client::Informer& namespaces_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_namespace_controller(loop::ControllerContext& ctx) {
  return make_controller<NamespaceController>(ctx);
}

}  // namespace podwarp::controllers
