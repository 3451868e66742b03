// The shared metadata helpers: finalizers and a volume's pinned node.
#include "loop/meta.h"

#include <gtest/gtest.h>

namespace podwarp::loop {
namespace {

json::value parse(std::string_view text) { return *parse_json(text); }

TEST(Meta, FinalizersAreFoundAndRemovedAlone) {
  const json::value obj = parse(R"({"metadata":{"finalizers":["a","b","a","c"]}})");
  EXPECT_TRUE(has_finalizer(obj, "b"));
  EXPECT_FALSE(has_finalizer(obj, "d"));
  EXPECT_FALSE(has_finalizer(parse(R"({"metadata":{"finalizers":"a"}})"), "a"));
  EXPECT_EQ(without_finalizer(obj, "a"), parse(R"({"metadata":{"finalizers":["b","c"]}})"));
  EXPECT_EQ(without_finalizer(parse(R"({"metadata":{}})"), "a"), parse(R"({"metadata":{}})"));
}

TEST(Meta, PinnedNodeIsOnlyASingleHostnameTerm) {
  auto pv = [](std::string_view affinity) {
    return parse(std::string(R"({"spec":{"nodeAffinity":{"required":)") + std::string(affinity) +
                 "}}}");
  };
  const std::string one =
      R"({"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["n1"]}]}]})";
  EXPECT_EQ(pinned_node(pv(one)), "n1");
  EXPECT_EQ(pinned_node(parse("{}")), "");
  for (const char* other : {
           R"({"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["n1","n2"]}]}]})",
           R"({"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"NotIn","values":["n1"]}]}]})",
           R"({"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["n1"]}]}]})",
           R"({"nodeSelectorTerms":[{"matchExpressions":[]},{"matchExpressions":[]}]})"}) {
    EXPECT_EQ(pinned_node(pv(other)), "") << other;
  }
}

}  // namespace
}  // namespace podwarp::loop
