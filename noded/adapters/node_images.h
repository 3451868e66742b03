// NodeImages: noded's pods::ImageService over the image store (noded/images). Applies the
// pull policy through ImageStore::ensure_image and returns the config a container start needs.
// Errors keep the store's message; a Never policy with the image absent starts with
// "ErrImageNeverPull:" as the pod layer expects. Threading: noded's loop thread only.
#pragma once

#include "images/image_store.h"
#include "pods/runtime_service.h"

namespace podwarp::noded::adapters {

class NodeImages final : public pods::ImageService {
 public:
  NodeImages(images::ImageStore& store, images::PullOptions options)
      : store_(store), options_(std::move(options)) {}

  pods::Awaitable<std::expected<pods::ImageInfo, std::string>> ensure_image(
      const std::string& image, pods::PullPolicy policy) override;
  // imagePullSecrets: the credentials the keyring (images/docker_keyring.h) finds for the
  // image's repository, per secret in order, are tried one after another (the registry host
  // gets them: Basic when it asks for Basic, the token service's Basic login when it asks for
  // Bearer); the first success wins, else the errors are joined. No match: anonymous pull.
  pods::Awaitable<std::expected<pods::ImageInfo, std::string>> ensure_image_with_secrets(
      const pods::ImagePullRequest& req) override;

 private:
  pods::Awaitable<std::expected<pods::ImageInfo, std::string>> ensure(
      std::string image, pods::PullPolicy policy, images::PullOptions opts);

  images::ImageStore& store_;
  images::PullOptions options_;
};

}  // namespace podwarp::noded::adapters
