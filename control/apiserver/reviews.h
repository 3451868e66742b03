// The create-only reviews: authentication.k8s.io/v1 SelfSubjectReview (kubectl auth whoami)
// and authorization.k8s.io/v1 SelfSubjectAccessReview, SelfSubjectRulesReview,
// SubjectAccessReview and LocalSubjectAccessReview (kubectl auth can-i, controllers and
// webhooks asking "may user U do V?"). The apiserver answers them from the request and stores
// nothing (api::Resource::stored is false).
//
// Authorization: podwarp has no authorizer yet (no RBAC); every authenticated request is
// allowed, as upstream's --authorization-mode=AlwaysAllow. So every access review answers
// allowed, and a rules review lists "*" for everything, as upstream's AlwaysAllow authorizer
// does. The requests are still validated as upstream validates them (422 with field causes,
// 400 for a namespace mismatch).
//
// Threading: pure functions.
#pragma once

#include <expected>
#include <string_view>

#include "apiserver/http.h"
#include "podwarp/api/resources.h"
#include "podwarp/json.h"

namespace podwarp::apiserver {

// The answer to a decoded review `obj` of kind r.kind (apiVersion and kind already checked)
// from `user`, sent to namespace `ns` (LocalSubjectAccessReview only; "" otherwise): the
// object with its status filled in, for a 201.
std::expected<json::value, ApiError> answer_review(const api::Resource& r, json::value obj,
                                                   const UserInfo& user, std::string_view ns);

// authentication.k8s.io/v1 UserInfo: username, uid, groups, extra.
json::object user_info(const UserInfo& user);

// A SelfSubjectReview of `user` in `version` (v1, or v1beta1 for older kubectl).
json::object self_subject_review(const UserInfo& user, std::string_view version);

}  // namespace podwarp::apiserver
