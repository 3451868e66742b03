#include "dns/resolv_conf.h"

#include <algorithm>
#include <sstream>

namespace podwarp::noded::dns {

namespace {

std::vector<std::string> fields_of(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  std::string f;
  while (in >> f) out.push_back(f);
  return out;
}

std::string option_name(std::string_view op) { return std::string(op.substr(0, op.find(':'))); }

// Adds or replaces options by name, keeping first-seen order.
void merge_option(std::vector<std::string>& opts, const std::string& op) {
  std::string name = option_name(op);
  for (auto& o : opts) {
    if (option_name(o) == name) {
      o = op;
      return;
    }
  }
  opts.push_back(op);
}

void append_unique(std::vector<std::string>& to, const std::vector<std::string>& from) {
  for (const auto& s : from)
    if (std::find(to.begin(), to.end(), s) == to.end()) to.push_back(s);
}

std::vector<std::string> string_list(const json::value& pod,
                                     std::initializer_list<std::string_view> path) {
  std::vector<std::string> out;
  const auto* v = find_path(pod, path);
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& e : v->as_array())
    if (e.is_string()) out.emplace_back(e.as_string());
  return out;
}

}  // namespace

ResolvConf parse_resolv_conf(std::string_view text) {
  ResolvConf c;
  std::size_t i = 0;
  while (i <= text.size()) {
    auto nl = text.find('\n', i);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(i, nl - i);
    i = nl + 1;
    if (!line.empty() && (line[0] == '#' || line[0] == ';')) continue;
    auto f = fields_of(line);
    if (f.empty()) continue;
    if (f[0] == "nameserver" && f.size() >= 2) {
      c.nameservers.push_back(f[1]);
    } else if (f[0] == "search") {
      c.searches.clear();
      for (std::size_t k = 1; k < f.size(); ++k) {
        if (f[k] == ".") continue;
        std::string s = f[k];
        if (!s.empty() && s.back() == '.') s.pop_back();
        c.searches.push_back(s);
      }
    } else if (f[0] == "options") {
      for (std::size_t k = 1; k < f.size(); ++k) merge_option(c.options, f[k]);
    }
    if (nl == text.size()) break;
  }
  return c;
}

std::string format_resolv_conf(const ResolvConf& c) {
  std::string out;
  if (!c.searches.empty()) {
    out += "search";
    for (const auto& s : c.searches) out += " " + s;
    out += "\n";
  }
  for (const auto& n : c.nameservers) out += "nameserver " + n + "\n";
  if (!c.options.empty()) {
    out += "options";
    for (const auto& o : c.options) out += " " + o;
    out += "\n";
  }
  return out;
}

std::expected<PodDnsResult, std::string> pod_dns_config(const json::value& pod,
                                                        const PodDnsSettings& s) {
  PodDnsResult r;
  std::string policy(get_string(pod, {"spec", "dnsPolicy"}, "ClusterFirst"));
  if (policy.empty()) policy = "ClusterFirst";
  bool host_network = get_bool(pod, {"spec", "hostNetwork"});
  enum { kNone, kCluster, kHost } kind;
  if (policy == "None") {
    kind = kNone;
  } else if (policy == "ClusterFirstWithHostNet") {
    kind = kCluster;
  } else if (policy == "ClusterFirst") {
    kind = host_network ? kHost : kCluster;
  } else if (policy == "Default") {
    kind = kHost;
  } else {
    return std::unexpected("invalid DNSPolicy=" + policy);
  }
  if (kind == kCluster && s.cluster_dns.empty()) {
    // The kubelet's MissingClusterDNS event.
    r.warnings.push_back(
        "kubelet does not have ClusterDNS IP configured and cannot create Pod using \"" + policy +
        "\" policy. Falling back to \"Default\" policy.");
    kind = kHost;
  }
  switch (kind) {
    case kNone:
      break;
    case kHost:
      r.conf = s.host;
      break;
    case kCluster: {
      r.conf.nameservers = s.cluster_dns;
      std::string ns(get_string(pod, {"metadata", "namespace"}, "default"));
      if (!s.cluster_domain.empty()) {
        r.conf.searches = {ns + ".svc." + s.cluster_domain, "svc." + s.cluster_domain,
                           s.cluster_domain};
      }
      append_unique(r.conf.searches, s.host.searches);
      r.conf.options = {"ndots:5"};
      break;
    }
  }
  const auto* dc = find_path(pod, {"spec", "dnsConfig"});
  const bool has_dns_config = dc != nullptr && dc->is_object();
  if (has_dns_config) {
    append_unique(r.conf.nameservers, string_list(pod, {"spec", "dnsConfig", "nameservers"}));
    append_unique(r.conf.searches, string_list(pod, {"spec", "dnsConfig", "searches"}));
    if (const auto* opts = find_path(pod, {"spec", "dnsConfig", "options"}); opts && opts->is_array()) {
      for (const auto& o : opts->as_array()) {
        std::string name(get_string(o, {"name"}));
        if (name.empty()) continue;
        std::string value(get_string(o, {"value"}));
        merge_option(r.conf.options, value.empty() ? name : name + ":" + value);
      }
    }
  }
  // Limits (formDNSConfigFitsLimits).
  if (r.conf.nameservers.size() > kMaxNameservers) {
    r.conf.nameservers.resize(kMaxNameservers);
    std::string applied;
    for (const auto& n : r.conf.nameservers) applied += (applied.empty() ? "" : " ") + n;
    r.warnings.push_back(
        "Nameserver limits were exceeded, some nameservers have been omitted, the applied "
        "nameserver line is: " + applied);
  }
  auto& search = r.conf.searches;
  bool search_cut = false;
  if (search.size() > kMaxSearchPaths) {
    search.resize(kMaxSearchPaths);
    search_cut = true;
  }
  auto long_end = std::remove_if(search.begin(), search.end(),
                                 [](const std::string& d) { return d.size() > 253; });
  if (long_end != search.end()) {
    search.erase(long_end, search.end());
    search_cut = true;
  }
  auto line_len = [&] {
    std::size_t n = 0;
    for (const auto& d : search) n += d.size() + 1;
    return n == 0 ? 0 : n - 1;
  };
  while (!search.empty() && line_len() > kMaxSearchListChars) {
    search.pop_back();
    search_cut = true;
  }
  r.host_as_is = kind == kHost && !has_dns_config && !search_cut &&
                 r.conf.nameservers.size() == s.host.nameservers.size();
  if (search_cut) {
    std::string applied;
    for (const auto& d : search) applied += (applied.empty() ? "" : " ") + d;
    r.warnings.push_back(
        "Search Line limits were exceeded, some search paths have been omitted, the applied "
        "search line is: " + applied);
  }
  return r;
}

}  // namespace podwarp::noded::dns
