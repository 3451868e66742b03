#include "probes/grpc_check.h"

#include <unistd.h>

#include <fmt/format.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>

#include <thread>

#include "health.grpc.pb.h"

namespace podwarp::noded::probes {


namespace {

const char* status_code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "Canceled";
    case grpc::StatusCode::UNKNOWN: return "Unknown";
    case grpc::StatusCode::INVALID_ARGUMENT: return "InvalidArgument";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DeadlineExceeded";
    case grpc::StatusCode::NOT_FOUND: return "NotFound";
    case grpc::StatusCode::ALREADY_EXISTS: return "AlreadyExists";
    case grpc::StatusCode::PERMISSION_DENIED: return "PermissionDenied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "ResourceExhausted";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FailedPrecondition";
    case grpc::StatusCode::ABORTED: return "Aborted";
    case grpc::StatusCode::OUT_OF_RANGE: return "OutOfRange";
    case grpc::StatusCode::UNIMPLEMENTED: return "Unimplemented";
    case grpc::StatusCode::INTERNAL: return "Internal";
    case grpc::StatusCode::UNAVAILABLE: return "Unavailable";
    case grpc::StatusCode::DATA_LOSS: return "DataLoss";
    case grpc::StatusCode::UNAUTHENTICATED: return "Unauthenticated";
    default: return "Unknown";
  }
}

Outcome check(int fd, const std::string& authority, const std::string& service,
              std::chrono::milliseconds timeout, std::chrono::milliseconds reported) {
  // The channel owns the fd from here on (closed with the channel).
  grpc::ChannelArguments args;
  args.SetUserAgentPrefix("kube-probe/1.29");  // as the kubelet's grpc.WithUserAgent
  auto channel = grpc::CreateCustomInsecureChannelFromFd(authority, fd, args);
  if (!channel) {
    ::close(fd);
    return Outcome{false, "error: health rpc probe failed: cannot create a channel"};
  }
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = stub->Check(&ctx, req, &resp);
  if (!st.ok()) {
    // Messages as the kubelet's grpc prober (pkg/probe/grpc).
    if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED)
      return Outcome{false, fmt::format("this server does not implement the grpc health protocol "
                                        "(grpc.health.v1.Health): {}", st.error_message())};
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      return Outcome{false, fmt::format("timeout: health rpc did not complete within {}", go_duration(reported))};
    return Outcome{false, fmt::format("error: health rpc probe failed: rpc error: code = {} desc = {}",
                                      status_code_name(st.error_code()), st.error_message())};
  }
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING)
    return Outcome{false, fmt::format("service unhealthy (responded with \"{}\")",
                                      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()))};
  return Outcome{true, "service healthy"};
}

}  // namespace

void grpc_health_check_on_fd(int fd, std::string authority, std::string service,
                             std::chrono::milliseconds timeout, std::chrono::milliseconds reported,
                             std::function<void(Outcome)> done) {
  std::thread([fd, authority = std::move(authority), service = std::move(service), timeout, reported,
               done = std::move(done)]() mutable {
    Outcome o;
    try {
      o = check(fd, authority, service, timeout, reported);
    } catch (const std::exception& e) {
      o = Outcome{false, fmt::format("error: health rpc probe failed: {}", e.what())};
    }
    done(std::move(o));
  }).detach();
}

}  // namespace podwarp::noded::probes
