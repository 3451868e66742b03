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

 private:
  images::ImageStore& store_;
  images::PullOptions options_;
};

}  // namespace podwarp::noded::adapters
