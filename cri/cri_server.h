// CriServer: the CRI runtime.v1 RuntimeService and ImageService (cri/proto/api.proto) on a unix
// socket, over noded's own runtime (pods::ContainerRuntime, in noded NodeRuntime) and image
// store. crictl, critest or a stock kubelet can drive the same runtime that noded's pod workers
// use.
//
// Threading: gRPC serves each call on one of its own threads; the handler hands the work to
// noded's io_context (co_spawn + use_future) and waits, so the runtime, the image store and the
// CRI state are only ever touched on the loop thread, as everything else in noded.
//
// State: in memory, plus one JSON record per sandbox and container under
// <state_dir>/{sandboxes,containers}/<id>.json, read back by start() after a restart of noded
// (see README.md for what is adopted).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <expected>
#include <memory>
#include <set>
#include <string>

#include "images/image_store.h"
#include "pods/runtime_service.h"

namespace podwarp::cri {

namespace pods = ::podwarp::noded::pods;

struct CriServerOptions {
  std::string socket_path;    // "unix:" is added; an existing socket file is replaced
  std::string state_dir;      // records of sandboxes and containers
  bool network_ready = true;  // the NetworkReady condition of Status
};

class CriServer {
 public:
  // REQUIRES: called on the loop thread (or before the loop runs). Loads the records of
  // state_dir, then serves. The socket gets mode 0660.
  static std::expected<std::unique_ptr<CriServer>, std::string> start(
      boost::asio::any_io_executor ex, CriServerOptions options, pods::ContainerRuntime& runtime,
      pods::ImageService& image_service, images::ImageStore& store);
  ~CriServer();  // stop()s

  // Stops serving (calls waiting for the loop get UNAVAILABLE, so this may run on the loop
  // thread) and removes the socket. Running containers keep running. Idempotent.
  void stop();

  // The image names of every CRI container (for image GC). REQUIRES: the loop thread.
  std::set<std::string> images_in_use() const;

  struct Impl;

 private:
  explicit CriServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::cri
