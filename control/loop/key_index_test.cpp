#include "loop/key_index.h"

#include <gtest/gtest.h>

namespace podwarp::loop {
namespace {

using Keys = std::vector<std::string>;

TEST(KeyIndex, AddRemoveAndSortedKeys) {
  KeyIndex idx;
  idx.add("node-a", "ns/p2");
  idx.add("node-a", "ns/p1");
  idx.add("node-a", "ns/p1");  // once
  idx.add("node-b", "ns/p3");
  EXPECT_EQ(idx.keys("node-a"), (Keys{"ns/p1", "ns/p2"}));
  EXPECT_EQ(idx.keys("node-b"), (Keys{"ns/p3"}));
  EXPECT_EQ(idx.keys("node-c"), Keys{});

  idx.remove("node-a", "ns/p1");
  idx.remove("node-a", "ns/absent");
  idx.remove("node-c", "ns/p1");
  EXPECT_EQ(idx.keys("node-a"), (Keys{"ns/p2"}));
  idx.remove("node-a", "ns/p2");
  EXPECT_EQ(idx.keys("node-a"), Keys{});
  idx.add("node-a", "ns/p4");  // a dropped group comes back
  EXPECT_EQ(idx.keys("node-a"), (Keys{"ns/p4"}));
}

TEST(KeyIndex, EmptyGroupIndexesNothing) {
  KeyIndex idx;
  idx.add("", "ns/unscheduled");
  EXPECT_EQ(idx.keys(""), Keys{});
}

TEST(KeyIndex, KeysIsACopy) {
  KeyIndex idx;
  idx.add("g", "a");
  idx.add("g", "b");
  Keys seen;
  for (const std::string& k : idx.keys("g")) {
    idx.remove("g", k);  // a handler changing the index while a sync walks it
    seen.push_back(k);
  }
  EXPECT_EQ(seen, (Keys{"a", "b"}));
}

}  // namespace
}  // namespace podwarp::loop
