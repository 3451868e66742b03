// KeyIndex: a secondary index beside informer caches, from a group name to the keys
// ("<ns>/<name>") of the cached objects in that group: the pods of each node, the pods of each
// Job, the Jobs of each CronJob. Controllers maintain it from their informer handlers so that
// a sync finds its objects without scanning the whole cache.
//
// Threading: a plain value; use it on the informers' executor.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/informer.h"

namespace podwarp::loop {

class KeyIndex {
 public:
  // Adds / removes `key` in `group`; a group left empty is dropped. An empty group name
  // indexes nothing (an unscheduled pod has no node, an orphan no owner).
  void add(std::string_view group, const std::string& key);
  void remove(std::string_view group, const std::string& key);
  // The keys of `group`, sorted. A copy: callers may change the index (or suspend, letting
  // handlers change it) while walking it.
  std::vector<std::string> keys(std::string_view group) const;

 private:
  std::map<std::string, std::set<std::string>, std::less<>> groups_;
};

// The cached object of a key as client::Informer::key_of makes it ("<ns>/<name>", or "<name>"
// for a cluster-scoped object); nullptr when absent.
client::ObjectPtr get_by_key(const client::Informer& informer, std::string_view key);

}  // namespace podwarp::loop
