#include "loop/key_index.h"

namespace podwarp::loop {

void KeyIndex::add(std::string_view group, const std::string& key) {
  if (group.empty()) return;
  auto it = groups_.find(group);
  if (it == groups_.end()) it = groups_.emplace(std::string(group), std::set<std::string>()).first;
  it->second.insert(key);
}

void KeyIndex::remove(std::string_view group, const std::string& key) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return;
  it->second.erase(key);
  if (it->second.empty()) groups_.erase(it);
}

std::vector<std::string> KeyIndex::keys(std::string_view group) const {
  auto it = groups_.find(group);
  if (it == groups_.end()) return {};
  return std::vector<std::string>(it->second.begin(), it->second.end());
}

client::ObjectPtr get_by_key(const client::Informer& informer, std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return informer.get("", key);
  return informer.get(key.substr(0, slash), key.substr(slash + 1));
}

}  // namespace podwarp::loop
