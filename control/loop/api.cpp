#include "loop/api.h"

#include <cstdlib>

#include "podwarp/log.h"

namespace podwarp::loop {

const api::Resource& resource(std::string_view group, std::string_view plural) {
  if (const api::Resource* r = api::find_resource(group, "v1", plural)) return *r;
  log::error("control loop: unknown resource {}/{}", group, plural);
  std::abort();
}

ApiResult api_get(client::Client& c, const api::Resource& res, std::string ns, std::string name) {
  client::ListOptions opts;
  co_return co_await c.get(res, std::move(ns), std::move(name), opts);
}

ApiResult api_list(client::Client& c, const api::Resource& res, std::string ns) {
  client::ListOptions opts;
  co_return co_await c.list(res, std::move(ns), opts);
}

ApiResult api_create(client::Client& c, const api::Resource& res, std::string ns, json::value obj) {
  client::WriteOptions opts;
  co_return co_await c.create(res, std::move(ns), std::move(obj), opts);
}

ApiResult api_update(client::Client& c, const api::Resource& res, std::string ns, json::value obj) {
  client::WriteOptions opts;
  co_return co_await c.update(res, std::move(ns), std::move(obj), opts);
}

ApiResult api_update_status(client::Client& c, const api::Resource& res, std::string ns,
                            json::value obj) {
  client::WriteOptions opts;
  co_return co_await c.update_status(res, std::move(ns), std::move(obj), opts);
}

ApiResult api_patch(client::Client& c, const api::Resource& res, std::string ns, std::string name,
                    std::string patch, client::PatchType type) {
  client::WriteOptions opts;
  std::string sub;
  co_return co_await c.patch(res, std::move(ns), std::move(name), type, std::move(patch), opts,
                             sub);
}

ApiResult api_patch_status(client::Client& c, const api::Resource& res, std::string ns,
                           std::string name, std::string patch, client::PatchType type) {
  client::WriteOptions opts;
  std::string sub = "status";
  co_return co_await c.patch(res, std::move(ns), std::move(name), type, std::move(patch), opts,
                             sub);
}

ApiResult api_delete(client::Client& c, const api::Resource& res, std::string ns,
                     std::string name) {
  client::DeleteOptions opts;
  co_return co_await c.remove(res, std::move(ns), std::move(name), opts);
}

ApiResult api_delete(client::Client& c, const api::Resource& res, std::string ns, std::string name,
                     client::DeleteOptions opts) {
  co_return co_await c.remove(res, std::move(ns), std::move(name), opts);
}

}  // namespace podwarp::loop
