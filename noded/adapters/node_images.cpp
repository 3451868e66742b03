#include "adapters/node_images.h"

namespace podwarp::noded::adapters {

pods::Awaitable<std::expected<pods::ImageInfo, std::string>> NodeImages::ensure_image(
    const std::string& image, pods::PullPolicy policy) {
  images::PullPolicy p = policy == pods::PullPolicy::kAlways  ? images::PullPolicy::kAlways
                         : policy == pods::PullPolicy::kNever ? images::PullPolicy::kNever
                                                              : images::PullPolicy::kIfNotPresent;
  images::PullOptions opts = options_;
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
