#include "apiserver/reviews.h"

#include <gtest/gtest.h>

namespace podwarp::apiserver {
namespace {

const api::Resource& authz(std::string_view plural) {
  return *api::find_resource("authorization.k8s.io", "v1", plural);
}

json::value body(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v.has_value()) << text;
  return v ? *v : json::value();
}

UserInfo admin() { return {"admin", {"system:masters", "system:authenticated"}, "", {}}; }

std::vector<std::string> fields(const ApiError& e) {
  std::vector<std::string> out;
  for (const StatusCause& c : e.causes) out.push_back(c.field);
  return out;
}

TEST(Reviews, AreAnsweredNotStored) {
  for (std::string_view plural : {"selfsubjectaccessreviews", "subjectaccessreviews",
                                  "localsubjectaccessreviews", "selfsubjectrulesreviews"}) {
    const api::Resource& r = authz(plural);
    EXPECT_FALSE(r.stored) << plural;
    EXPECT_EQ(r.verbs, std::vector<std::string_view>{"create"}) << plural;
  }
  EXPECT_FALSE(api::find_resource("authentication.k8s.io", "v1", "selfsubjectreviews")->stored);
  EXPECT_TRUE(api::find_resource("", "v1", "pods")->stored);
}

TEST(Reviews, SelfSubjectAccessReviewIsAllowedAndEchoesTheSpec) {
  auto got = answer_review(authz("selfsubjectaccessreviews"),
                           body(R"({"apiVersion":"authorization.k8s.io/v1",
                                    "kind":"SelfSubjectAccessReview",
                                    "metadata":{"creationTimestamp":null},
                                    "spec":{"resourceAttributes":{"verb":"create",
                                                                  "resource":"pods"}}})"),
                           admin(), "");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(*got, body(R"({"apiVersion":"authorization.k8s.io/v1",
                           "kind":"SelfSubjectAccessReview",
                           "metadata":{"creationTimestamp":null},
                           "spec":{"resourceAttributes":{"verb":"create","resource":"pods"}},
                           "status":{"allowed":true}})"));
}

TEST(Reviews, AttributesMustBeExactlyOneKind) {
  const api::Resource& r = authz("selfsubjectaccessreviews");
  auto neither = answer_review(r, body(R"({"spec":{}})"), admin(), "");
  ASSERT_FALSE(neither);
  EXPECT_EQ(neither.error().code, 422);
  EXPECT_EQ(neither.error().reason, "Invalid");
  EXPECT_EQ(neither.error().message,
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: "
            "spec.resourceAttributes: Invalid value: \"null\": exactly one of "
            "nonResourceAttributes or resourceAttributes must be specified");
  auto both = answer_review(r, body(R"({"spec":{"resourceAttributes":{"verb":"get"},
                       "nonResourceAttributes":{"path":"/logs","verb":"get"}}})"),
                            admin(), "");
  ASSERT_FALSE(both);
  EXPECT_EQ(fields(both.error()), std::vector<std::string>{"spec.nonResourceAttributes"});
  EXPECT_EQ(both.error().causes[0].message,
            "Invalid value: &authorization.NonResourceAttributes{Path:\"/logs\", Verb:\"get\"}: "
            "cannot be specified in combination with resourceAttributes");
}

TEST(Reviews, SubjectAccessReviewNeedsAUserOrGroupsAndEmptyMetadata) {
  const api::Resource& r = authz("subjectaccessreviews");
  auto bad = answer_review(
      r, body(R"({"metadata":{"name":"x"},"spec":{"nonResourceAttributes":{"path":"/"}}})"),
      admin(), "");
  ASSERT_FALSE(bad);
  EXPECT_EQ(fields(bad.error()), (std::vector<std::string>{"spec.user", "metadata"}));
  EXPECT_NE(bad.error().message.find("[spec.user: Invalid value: \"\": at least one of user or "
                                     "group must be specified, metadata: Invalid value: "
                                     "{\"name\":\"x\"}: must be empty]"),
            std::string::npos)
      << bad.error().message;
  auto ok = answer_review(
      r, body(R"({"spec":{"groups":["devs"],"nonResourceAttributes":{"path":"/"}}})"), admin(), "");
  ASSERT_TRUE(ok);
  EXPECT_TRUE(get_bool(*ok, {"status", "allowed"}));
}

TEST(Reviews, LocalSubjectAccessReviewIsBoundToTheUrlsNamespace) {
  const api::Resource& r = authz("localsubjectaccessreviews");
  auto ok = answer_review(
      r, body(R"({"spec":{"user":"jane","resourceAttributes":{"verb":"get","resource":"pods"}}})"),
      admin(), "team-a");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(get_string(*ok, {"spec", "resourceAttributes", "namespace"}), "team-a");
  EXPECT_EQ(get_string(*ok, {"metadata", "namespace"}), "team-a");
  EXPECT_TRUE(get_bool(*ok, {"status", "allowed"}));

  auto other = answer_review(
      r, body(R"({"spec":{"user":"jane","resourceAttributes":{"namespace":"kube-system"}}})"),
      admin(), "team-a");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, 400);
  EXPECT_EQ(other.error().message,
            "spec.resourceAttributes.namespace must match namespace: team-a");

  auto non = answer_review(r, body(R"({"metadata":{"namespace":"team-a"},"spec":{"user":"jane",
                  "nonResourceAttributes":{"path":"/healthz","verb":"get"}}})"),
                           admin(), "team-a");
  ASSERT_FALSE(non);
  EXPECT_EQ(fields(non.error()), std::vector<std::string>{"spec.nonResourceAttributes"});
  EXPECT_NE(non.error().causes[0].message.find("disallowed on this kind of request"),
            std::string::npos);
}

TEST(Reviews, RulesReviewListsEverythingAndNeedsANamespace) {
  const api::Resource& r = authz("selfsubjectrulesreviews");
  auto missing = answer_review(r, body(R"({"spec":{}})"), admin(), "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, 400);
  EXPECT_EQ(missing.error().message, "no namespace on request");
  auto ok = answer_review(r, body(R"({"spec":{"namespace":"default"}})"), admin(), "");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->at("status"), body(R"({"resourceRules":[{"verbs":["*"],"apiGroups":["*"],
                                                          "resources":["*"]}],
                                       "nonResourceRules":[{"verbs":["*"],
                                                            "nonResourceURLs":["*"]}],
                                       "incomplete":false})"));
}

TEST(Reviews, SelfSubjectReviewIsTheCaller) {
  UserInfo sa{"system:serviceaccount:ns:sa",
              {"system:serviceaccounts", "system:authenticated"},
              "u-1",
              {{"authentication.kubernetes.io/pod-name", "p"}}};
  auto got = answer_review(*api::find_resource("authentication.k8s.io", "v1", "selfsubjectreviews"),
                           body(R"({"apiVersion":"authentication.k8s.io/v1",
                                    "kind":"SelfSubjectReview"})"),
                           sa, "");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->at("status"), body(R"({"userInfo":{"username":"system:serviceaccount:ns:sa",
      "groups":["system:serviceaccounts","system:authenticated"],"uid":"u-1",
      "extra":{"authentication.kubernetes.io/pod-name":["p"]}}})"));
}

}  // namespace
}  // namespace podwarp::apiserver
