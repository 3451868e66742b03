// serviceaccounts/{name}/token (TokenRequest) and the API-state half of service-account token
// authentication.
#include <fmt/format.h>

#include <algorithm>

#include "apiserver/api.h"
#include "apiserver/reviews.h"
#include "apiserver/tokens.h"
#include "podwarp/time.h"
#include "schema/protobuf.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;

namespace {

constexpr std::int64_t kMinExpiration = 600;
constexpr std::int64_t kMaxExpiration = std::int64_t{1} << 32;
constexpr std::int64_t kWarnOnlyExpiration = 3607;
constexpr std::int64_t kExtendedExpiration = 365 * 24 * 3600;

const api::Resource& core(std::string_view plural) {
  return *api::find_resource("", "v1", plural);
}

std::string uid_of(const json::value& obj) {
  return std::string(get_string(obj, {"metadata", "uid"}));
}

}  // namespace

bool Api::token_objects_current(const TokenIdentity& id) const {
  ObjectPtr sa = cache_.get(key_for(core("serviceaccounts"), id.namespace_, id.service_account));
  if (!sa || (!id.service_account_uid.empty() && uid_of(sa->value) != id.service_account_uid)) {
    return false;
  }
  if (!id.pod_name.empty()) {
    ObjectPtr pod = cache_.get(key_for(core("pods"), id.namespace_, id.pod_name));
    if (!pod || uid_of(pod->value) != id.pod_uid) return false;
  }
  if (!id.secret_name.empty()) {
    ObjectPtr secret = cache_.get(key_for(core("secrets"), id.namespace_, id.secret_name));
    if (!secret || uid_of(secret->value) != id.secret_uid) return false;
  }
  return true;
}

asio::awaitable<Response> Api::token_request(const Request& req) {
  const RequestInfo& info = req.info;
  if (!opts_.tokens) {
    co_return Response::error(plain_not_found());
  }
  // The body: an authentication.k8s.io/v1 TokenRequest (JSON or protobuf).
  std::string_view media = std::string_view(req.content_type).substr(0, req.content_type.find(';'));
  std::expected<json::value, std::string> body;
  if (media == schema::kProtobufContentType) {
    body = schema::decode_protobuf(std::string_view(req.body));
  } else {
    body = parse_json(req.body.empty() ? std::string_view("{}") : std::string_view(req.body));
  }
  if (!body || !body->is_object()) {
    co_return Response::error(bad_request(fmt::format(
        "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: {}",
        body ? std::string("not an object") : body.error())));
  }
  std::string_view kind = get_string(*body, {"kind"});
  if (!kind.empty() && kind != "TokenRequest") {
    co_return Response::error(bad_request(fmt::format(
        "TokenRequest in version \"v1\" cannot be handled as a {}: the kind must be TokenRequest",
        kind)));
  }
  std::int64_t expiration = get_int(*body, {"spec", "expirationSeconds"}, 3600);
  if (find_path(*body, {"spec", "expirationSeconds"}) == nullptr) expiration = 3600;
  std::vector<StatusCause> causes;
  if (expiration < kMinExpiration) {
    causes.push_back({"FieldValueInvalid",
                      fmt::format("Invalid value: {}: may not specify a duration less than 10 minutes",
                                  expiration),
                      "spec.expirationSeconds"});
  } else if (expiration > kMaxExpiration) {
    causes.push_back({"FieldValueInvalid",
                      fmt::format("Invalid value: {}: may not specify a duration larger than 2^32 seconds",
                                  expiration),
                      "spec.expirationSeconds"});
  }
  std::vector<std::string> audiences;
  if (const json::value* a = find_path(*body, {"spec", "audiences"}); a && a->is_array()) {
    for (const json::value& v : a->get_array()) {
      if (v.is_string()) audiences.emplace_back(v.get_string());
    }
  }
  if (audiences.empty()) audiences.push_back(opts_.tokens->api_audience());
  const api::Resource& sa_res = core("serviceaccounts");
  if (!causes.empty()) {
    std::string msg = fmt::format("TokenRequest.authentication.k8s.io \"{}\" is invalid: {}: {}",
                                  info.name, causes[0].field, causes[0].message);
    ApiError e = invalid(sa_res, info.name, causes, msg);
    e.group = "authentication.k8s.io";
    e.kind = "TokenRequest";
    co_return Response::error(e);
  }
  auto sa = co_await load(sa_res, info.namespace_, info.name);
  if (!sa) co_return Response::error(sa.error());

  TokenClaimsInput in;
  in.namespace_ = info.namespace_;
  in.service_account = info.name;
  in.service_account_uid = uid_of(sa->object);
  in.audiences = audiences;
  in.expiration_seconds = expiration;
  json::value bound;
  if (const json::value* ref = find_path(*body, {"spec", "boundObjectRef"}); ref && ref->is_object()) {
    bound = *ref;
    std::string_view ref_kind = get_string(*ref, {"kind"});
    std::string ref_name(get_string(*ref, {"name"}));
    std::string_view ref_uid = get_string(*ref, {"uid"});
    std::string_view ref_api = get_string(*ref, {"apiVersion"});
    if ((ref_kind != "Pod" && ref_kind != "Secret") || (!ref_api.empty() && ref_api != "v1")) {
      co_return Response::error(bad_request(fmt::format(
          "cannot bind token to object of type {}, {}", ref_api.empty() ? "v1" : ref_api, ref_kind)));
    }
    const api::Resource& ref_res = core(ref_kind == "Pod" ? "pods" : "secrets");
    auto obj = co_await load(ref_res, info.namespace_, ref_name);
    if (!obj) co_return Response::error(obj.error());
    std::string uid = uid_of(obj->object);
    if (!ref_uid.empty() && ref_uid != uid) {
      co_return Response::error(conflict(
          ref_res, ref_name,
          fmt::format("the UID in the bound object reference ({}) does not match the UID in "
                      "record. The object might have been deleted and then recreated",
                      ref_uid)));
    }
    if (ref_kind == "Pod") {
      if (get_string(obj->object, {"spec", "serviceAccountName"}) != info.name) {
        co_return Response::error(bad_request(fmt::format(
            "cannot bind token for serviceaccount \"{}\" to pod running with serviceaccount \"{}\"",
            info.name, get_string(obj->object, {"spec", "serviceAccountName"}))));
      }
      in.pod_name = ref_name;
      in.pod_uid = uid;
      in.node_name = get_string(obj->object, {"spec", "nodeName"});
      if (!in.node_name.empty()) {
        ObjectPtr node = cache_.get(key_for(core("nodes"), "", in.node_name));
        if (node) {
          in.node_uid = uid_of(node->value);
        } else {
          in.node_name.clear();
        }
      }
    } else {
      in.secret_name = ref_name;
      in.secret_uid = uid;
    }
    bound.as_object()["uid"] = uid;
  }
  // Upstream's --service-account-extend-token-expiration (default on): a pod-bound token
  // asked for 3607 s for the apiserver's audience (the kubelet's projected token) lives a year
  // and says when it should have been refreshed; the status reports the requested expiry.
  const bool api_audience_only =
      audiences.size() == 1 && audiences[0] == opts_.tokens->api_audience();
  if (!in.pod_name.empty() && expiration == kWarnOnlyExpiration && api_audience_only) {
    in.warn_after_seconds = expiration;
    in.expiration_seconds = kExtendedExpiration;
  }
  const auto now = std::chrono::system_clock::now();
  auto token = opts_.tokens->issue(in, now);
  if (!token) co_return Response::error(internal_error(token.error()));
  token->second = std::chrono::time_point_cast<std::chrono::seconds>(now) +
                  std::chrono::seconds(expiration);
  json::array aud;
  for (const std::string& a : audiences) aud.emplace_back(a);
  json::object spec{{"audiences", std::move(aud)}, {"expirationSeconds", expiration}};
  if (!bound.is_null()) spec["boundObjectRef"] = bound;
  json::object out{
      {"kind", "TokenRequest"},
      {"apiVersion", "authentication.k8s.io/v1"},
      {"metadata", json::object{{"name", info.name},
                                {"namespace", info.namespace_},
                                {"creationTimestamp", nullptr}}},
      {"spec", std::move(spec)},
      {"status", json::object{{"token", token->first},
                              {"expirationTimestamp", format_rfc3339(token->second)}}}};
  co_return Response::json(201, to_json(out));
}

std::expected<json::value, ApiError> Api::token_review(json::value review) const {
  std::string token(get_string(review, {"spec", "token"}));
  if (token.empty()) {
    return std::unexpected(bad_request("token is required for TokenReview in authentication"));
  }
  std::vector<std::string> audiences;
  if (const json::value* a = find_path(review, {"spec", "audiences"}); a && a->is_array()) {
    for (const json::value& x : a->get_array()) {
      if (x.is_string()) audiences.emplace_back(x.get_string());
    }
  }
  const std::string api_audience(opts_.tokens ? opts_.tokens->api_audience()
                                              : std::string(kDefaultIssuer));
  std::optional<UserInfo> user;
  std::vector<std::string> token_audiences;
  std::string error;
  if (std::optional<UserInfo> u = static_tokens_ ? static_tokens_(token) : std::nullopt) {
    // A static token is valid for the apiserver's audience only (upstream's audience-agnostic
    // authenticators).
    if (audiences.empty() ||
        std::find(audiences.begin(), audiences.end(), api_audience) != audiences.end()) {
      user = std::move(u);
      token_audiences = {api_audience};
    }
  } else if (opts_.tokens && TokenIssuer::looks_like_jwt(token)) {
    auto id = opts_.tokens->authenticate(token, std::chrono::system_clock::now(), audiences);
    if (!id) {
      error = fmt::format("[invalid bearer token, {}]", id.error());
    } else if (!token_objects_current(*id)) {
      error = "[invalid bearer token, service account token has been invalidated]";
    } else {
      UserInfo u{id->username(), id->groups(), id->service_account_uid, {}};
      if (!id->pod_name.empty()) {
        u.extra.emplace_back("authentication.kubernetes.io/pod-name", id->pod_name);
        u.extra.emplace_back("authentication.kubernetes.io/pod-uid", id->pod_uid);
      }
      user = std::move(u);
      token_audiences = std::move(id->audiences);
    }
  }
  json::object status;
  if (user) {
    status["authenticated"] = true;
    status["user"] = user_info(*user);
    json::array auds;
    for (const std::string& a : token_audiences) auds.emplace_back(a);
    status["audiences"] = std::move(auds);
  } else {
    status["user"] = json::object();
    if (!error.empty()) status["error"] = error;
  }
  json::object& o = review.as_object();
  o["status"] = std::move(status);
  ensure_object(o, "metadata")["creationTimestamp"] = nullptr;
  return review;
}

}  // namespace podwarp::apiserver
