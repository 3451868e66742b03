#include "adapters/node_images.h"

#include "images/docker_keyring.h"
#include "images/reference.h"

namespace podwarp::noded::adapters {

pods::Awaitable<std::expected<pods::ImageInfo, std::string>> NodeImages::ensure_image(
    const std::string& image, pods::PullPolicy policy) {
  co_return co_await ensure(image, policy, options_);
}

pods::Awaitable<std::expected<pods::ImageInfo, std::string>> NodeImages::ensure_image_with_secrets(
    const pods::ImagePullRequest& req) {
  std::string image = req.image;
  pods::PullPolicy policy = req.policy;
  std::vector<images::Credentials> creds;
  std::string registry;
  if (auto ref = images::parse_reference(image)) {
    registry = ref->registry_host();
    for (const auto& s : req.pull_secrets) {
      images::DockerKeyring k;
      if (!k.add_secret(s)) continue;
      auto found = k.lookup(ref->repository());
      creds.insert(creds.end(), found.begin(), found.end());
    }
  }
  if (creds.empty()) co_return co_await ensure(image, policy, options_);
  std::string errors;
  for (const auto& c : creds) {
    images::PullOptions opts = options_;
    opts.registry.credentials[registry] = c;
    auto r = co_await ensure(image, policy, opts);
    if (r) co_return r;
    if (r.error().starts_with("ErrImageNeverPull")) co_return r;
    errors += (errors.empty() ? "" : ", ") + r.error();
  }
  co_return std::unexpected(creds.size() == 1 ? errors : "[" + errors + "]");
}

pods::Awaitable<std::expected<pods::ImageInfo, std::string>> NodeImages::ensure(
    std::string image, pods::PullPolicy policy, images::PullOptions opts) {
  images::PullPolicy p = policy == pods::PullPolicy::kAlways  ? images::PullPolicy::kAlways
                         : policy == pods::PullPolicy::kNever ? images::PullPolicy::kNever
                                                              : images::PullPolicy::kIfNotPresent;
  std::string name = image;
  auto ref = co_await store_.ensure_image(name, p, opts);
  if (!ref) {
    if (ref.error().kind == images::ErrorKind::kNeverPull)
      co_return std::unexpected("ErrImageNeverPull: " + ref.error().message);
    co_return std::unexpected(ref.error().message);
  }
  auto cfg = store_.image_config(*ref);
  if (!cfg) co_return std::unexpected(cfg.error().message);
  pods::ImageInfo info;
  info.image_ref = ref->name;
  // As containerd's imageRef (what the kubelet reports as imageID): "<repo>@<repo digest>"
  // when the image came from a registry, else the image id (config digest).
  info.image_id =
      ref->repo_digest.empty() ? ref->id : ref->reference().repository() + "@" + ref->repo_digest;
  info.entrypoint = cfg->entrypoint;
  info.cmd = cfg->cmd;
  info.env = cfg->env;
  info.working_dir = cfg->working_dir;
  info.user = cfg->user;
  co_return info;
}

}  // namespace podwarp::noded::adapters
