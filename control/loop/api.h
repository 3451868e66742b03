// Client calls of the control loops (controllers and scheduler): one awaitable per verb, each
// building its client::*Options as a named local inside.
//
// Why these exist: g++ 12 destroys twice a defaulted class-type argument (WriteOptions{} and
// friends) or a braced temporary holding strings inside a co_await expression. Calling
// client::Client directly therefore needs a named options variable at every call site; these
// wrappers keep that workaround in one place. Every parameter is a plain value (strings,
// json, enums), so `co_await loop::api_create(c, res, ns, obj)` is safe as written.
//
// Also: the resource-table lookup the loops use for built-in resources.
//
// Threading: as client::Client (call on its executor).
#pragma once

#include <string>
#include <string_view>

#include "podwarp/api/resources.h"
#include "podwarp/client.h"
#include "podwarp/json.h"

namespace podwarp::loop {

// The v1 table entry of a built-in resource ("" is the core group); logs and aborts on an
// unknown one (a programming error).
const api::Resource& resource(std::string_view group, std::string_view plural);

using ApiResult = client::Awaitable<client::Result<json::value>>;

// GET <res>/<ns>/<name>.
ApiResult api_get(client::Client& c, const api::Resource& res, std::string ns, std::string name);
// LIST <res> in `ns` ("" = all namespaces), no selectors.
ApiResult api_list(client::Client& c, const api::Resource& res, std::string ns);
// POST `obj` into `ns`.
ApiResult api_create(client::Client& c, const api::Resource& res, std::string ns, json::value obj);
// PUT `obj` (to its metadata.name), and PUT of its status subresource.
ApiResult api_update(client::Client& c, const api::Resource& res, std::string ns, json::value obj);
ApiResult api_update_status(client::Client& c, const api::Resource& res, std::string ns,
                            json::value obj);
// PATCH the object, and its status subresource; a merge patch unless `type` says otherwise.
ApiResult api_patch(client::Client& c, const api::Resource& res, std::string ns, std::string name,
                    std::string patch, client::PatchType type = client::PatchType::merge);
ApiResult api_patch_status(client::Client& c, const api::Resource& res, std::string ns,
                           std::string name, std::string patch,
                           client::PatchType type = client::PatchType::merge);
// DELETE with default options, or with `opts` (pass a named variable).
ApiResult api_delete(client::Client& c, const api::Resource& res, std::string ns, std::string name);
ApiResult api_delete(client::Client& c, const api::Resource& res, std::string ns, std::string name,
                     client::DeleteOptions opts);

}  // namespace podwarp::loop
