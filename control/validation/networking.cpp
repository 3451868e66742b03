// networking.k8s.io/v1: NetworkPolicy, Ingress.
// Upstream: pkg/apis/networking/validation/validation.go, pkg/apis/networking/v1/defaults.go.
#include <array>
#include <string>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"
#include "validation/names.h"

namespace podwarp::validation {

namespace {

const Path kSpec = Path().child("spec");

// ---------------------------------------------------------------------------------------------
// NetworkPolicy

void default_ports(json::object* rule) {
  json::array* ports = rule ? marr(*rule, "ports") : nullptr;
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    if (json::object* p = (*ports)[i].if_object()) set_default(*p, "protocol", "TCP");
  }
}

void networkpolicy_defaults(json::object& np, bool) {
  json::object& spec = ensure_obj(np, "spec");
  for (std::string_view dir : {"ingress", "egress"}) {
    if (json::array* rules = marr(spec, dir)) {
      for (auto& r : *rules) default_ports(r.if_object());
    }
  }
  if (size_of(arr(spec, "policyTypes")) == 0) {
    json::array types;
    types.emplace_back("Ingress");
    if (size_of(arr(spec, "egress")) != 0) types.emplace_back("Egress");
    slot(spec, "policyTypes") = std::move(types);
  }
}

void np_port(Errors& errs, const json::object* port, const Path& p) {
  if (const json::value* proto = field(port, "protocol")) {
    std::string_view v = str(proto);
    if (v != "TCP" && v != "UDP" && v != "SCTP") {
      errs.push_back(not_supported(p.child("protocol"), q(v), {"TCP", "UDP", "SCTP"}));
    }
  }
  const json::value* pv = field(port, "port");
  auto end_port = integer(port, "endPort");
  if (pv != nullptr) {
    if (pv->is_number()) {
      std::int64_t n = integer(pv).value_or(0);
      for (auto& m : is_valid_port_num(n)) errs.push_back(invalid_int(p.child("port"), n, m));
      if (end_port) {
        if (*end_port < n) {
          errs.push_back(
              invalid_int(p.child("endPort"), n, "must be greater than or equal to `port`"));
        }
        for (auto& m : is_valid_port_num(*end_port))
          errs.push_back(invalid_int(p.child("endPort"), *end_port, m));
      }
    } else {
      if (end_port) {
        errs.push_back(invalid_int(p.child("endPort"), *end_port,
                                   "may not be specified when `port` is non-numeric"));
      }
      for (auto& m : is_valid_port_name(str(pv)))
        errs.push_back(invalid_str(p.child("port"), str(pv), m));
    }
  } else if (end_port) {
    errs.push_back(invalid_int(p.child("endPort"), *end_port,
                               "may not be specified when `port` is not specified"));
  }
}

void ip_block(Errors& errs, const json::object* b, const Path& p) {
  std::string_view cidr = str(b, "cidr");
  if (cidr.empty()) {
    errs.push_back(required(p.child("cidr")));
    return;
  }
  add(errs, validate_cidr(p.child("cidr"), cidr));
  auto outer = parse_cidr(cidr);
  if (!outer) return;
  const json::array* except = arr(b, "except");
  for (std::size_t i = 0; except && i < except->size(); ++i) {
    std::string_view e = str(&(*except)[i]);
    Path ep = p.child("except").index(i);
    add(errs, validate_cidr(ep, e));
    auto inner = parse_cidr(e);
    if (!inner) continue;
    if (!cidr_contains(*outer, inner->ip) || outer->prefix >= inner->prefix) {
      errs.push_back(invalid_str(ep, e, "must be a strict subset of `cidr`"));
    }
  }
}

void np_peer(Errors& errs, const json::object* peer, const Path& p) {
  int n = 0;
  if (const json::value* s = field(peer, "podSelector")) {
    ++n;
    add(errs, validate_label_selector(s, p.child("podSelector")));
  }
  if (const json::value* s = field(peer, "namespaceSelector")) {
    ++n;
    add(errs, validate_label_selector(s, p.child("namespaceSelector")));
  }
  const json::object* block = obj(peer, "ipBlock");
  if (block) {
    ++n;
    ip_block(errs, block, p.child("ipBlock"));
  }
  if (n == 0) {
    errs.push_back(required(p, "must specify a peer"));
  } else if (n > 1 && block) {
    errs.push_back(forbidden(p, "may not specify both ipBlock and another peer"));
  }
}

Errors networkpolicy_validate(const api::Resource&, const json::object& np,
                              const json::object* old) {
  Errors errs = old ? object_meta_update(np, *old) : object_meta(np, true, name_is_dns_subdomain);
  const json::object* spec = obj(np, "spec");
  add(errs, validate_label_selector(field(spec, "podSelector"), kSpec.child("podSelector")));
  for (auto [dir, peers] :
       {std::pair<std::string_view, std::string_view>{"ingress", "from"}, {"egress", "to"}}) {
    const json::array* rules = arr(spec, dir);
    for (std::size_t i = 0; rules && i < rules->size(); ++i) {
      const json::object* rule = (*rules)[i].if_object();
      Path rp = kSpec.child(dir).index(i);
      const json::array* ports = arr(rule, "ports");
      for (std::size_t j = 0; ports && j < ports->size(); ++j) {
        np_port(errs, (*ports)[j].if_object(), rp.child("ports").index(j));
      }
      const json::array* ps = arr(rule, peers);
      for (std::size_t j = 0; ps && j < ps->size(); ++j) {
        np_peer(errs, (*ps)[j].if_object(), rp.child(peers).index(j));
      }
    }
  }
  const json::array* types = arr(spec, "policyTypes");
  if (size_of(types) > 2) {
    errs.push_back(invalid(kSpec.child("policyTypes"), go_value(*field(*spec, "policyTypes")),
                           "may not specify more than two policyTypes"));
    return errs;
  }
  for (std::size_t i = 0; types && i < types->size(); ++i) {
    std::string_view t = str(&(*types)[i]);
    if (t != "Ingress" && t != "Egress") {
      errs.push_back(
          not_supported(kSpec.child("policyTypes").index(i), q(t), {"Ingress", "Egress"}));
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Ingress

struct IngressOptions {
  bool allow_invalid_secret_name = false;
  bool allow_invalid_wildcard_host_rule = false;
};

void ingress_backend(Errors& errs, const json::object* b, const Path& p) {
  const json::object* resource = obj(b, "resource");
  const json::object* service = obj(b, "service");
  if (resource && service) {
    errs.push_back(invalid_str(p, "", "cannot set both resource and service backends"));
    return;
  }
  if (resource) {
    Path rp = p.child("resource");
    if (const json::value* g = field(*resource, "apiGroup"); g && !str(g).empty()) {
      add(errs, dns1123_subdomain(rp.child("apiGroup"), str(g)));
    }
    if (str(resource, "kind").empty()) errs.push_back(required(rp.child("kind")));
    if (str(resource, "name").empty()) errs.push_back(required(rp.child("name")));
    return;
  }
  if (service) {
    std::string_view name = str(service, "name");
    Path np = p.child("service", "name");
    if (name.empty()) {
      errs.push_back(required(np));
    } else {
      for (auto& m : name_is_dns1035_label(name, false)) errs.push_back(invalid_str(np, name, m));
    }
    const json::object* port = obj(service, "port");
    std::string_view pname = str(port, "name");
    std::int64_t pnum = integer(port, "number").value_or(0);
    if (!pname.empty() && pnum != 0) {
      errs.push_back(invalid_str(p, "", "cannot set both port name & port number"));
    } else if (!pname.empty()) {
      for (auto& m : is_valid_port_name(pname)) {
        errs.push_back(invalid_str(p.child("service", "port", "name"), pname, m));
      }
    } else if (pnum != 0) {
      for (auto& m : is_valid_port_num(pnum)) {
        errs.push_back(invalid_int(p.child("service", "port", "number"), pnum, m));
      }
    } else {
      errs.push_back(required(p, "port name or number is required"));
    }
    return;
  }
  errs.push_back(invalid_str(p, "", "resource or service backend is required"));
}

void ingress_path(Errors& errs, const json::object* path, const Path& p) {
  const json::value* type = field(path, "pathType");
  if (type == nullptr) {
    errs.push_back(required(p.child("pathType"), "pathType must be specified"));
    return;
  }
  std::string_view t = str(type);
  std::string_view v = str(path, "path");
  if (t == "Exact" || t == "Prefix") {
    if (!v.starts_with('/'))
      errs.push_back(invalid_str(p.child("path"), v, "must be an absolute path"));
    if (!v.empty()) {
      for (std::string_view seq : {"//", "/./", "/../", "%2f", "%2F"}) {
        if (v.find(seq) != std::string_view::npos) {
          errs.push_back(
              invalid_str(p.child("path"), v, "must not contain '" + std::string(seq) + "'"));
        }
      }
      for (std::string_view suffix : {"/..", "/."}) {
        if (v.ends_with(suffix)) {
          errs.push_back(
              invalid_str(p.child("path"), v, "cannot end with '" + std::string(suffix) + "'"));
        }
      }
    }
  } else if (t == "ImplementationSpecific") {
    if (!v.empty() && !v.starts_with('/')) {
      errs.push_back(invalid_str(p.child("path"), v, "must be an absolute path"));
    }
  } else {
    errs.push_back(
        not_supported(p.child("pathType"), q(t), {"Exact", "ImplementationSpecific", "Prefix"}));
  }
  ingress_backend(errs, obj(path, "backend"), p.child("backend"));
}

void host(Errors& errs, std::string_view h, const Path& p) {
  if (h.find('*') != std::string_view::npos) {
    for (auto& m : is_wildcard_dns1123_subdomain(h)) errs.push_back(invalid_str(p, h, m));
  } else {
    for (auto& m : is_dns1123_subdomain(h)) errs.push_back(invalid_str(p, h, m));
  }
}

Errors ingress_spec(const json::object* spec, const IngressOptions& opts) {
  Errors errs;
  const json::array* rules = arr(spec, "rules");
  if (size_of(rules) == 0 && !field(spec, "defaultBackend")) {
    errs.push_back(invalid(kSpec, "[]networking.IngressRule(nil)",
                           "either `defaultBackend` or `rules` must be specified"));
  }
  if (const json::object* def = obj(spec, "defaultBackend")) {
    ingress_backend(errs, def, kSpec.child("defaultBackend"));
  }
  for (std::size_t i = 0; rules && i < rules->size(); ++i) {
    const json::object* rule = (*rules)[i].if_object();
    Path rp = kSpec.child("rules").index(i);
    std::string_view h = str(rule, "host");
    bool wildcard = false;
    if (!h.empty()) {
      if (parse_ip(h))
        errs.push_back(invalid_str(rp.child("host"), h, "must be a DNS name, not an IP address"));
      wildcard = h.find('*') != std::string_view::npos;
      host(errs, h, rp.child("host"));
    }
    if (wildcard && opts.allow_invalid_wildcard_host_rule) continue;
    if (const json::object* http = obj(rule, "http")) {
      const json::array* paths = arr(http, "paths");
      Path hp = rp.child("http");
      if (size_of(paths) == 0) errs.push_back(required(hp.child("paths")));
      for (std::size_t j = 0; paths && j < paths->size(); ++j) {
        ingress_path(errs, (*paths)[j].if_object(), hp.child("paths").index(j));
      }
    }
  }
  const json::array* tls = arr(spec, "tls");
  for (std::size_t i = 0; tls && i < tls->size(); ++i) {
    const json::object* t = (*tls)[i].if_object();
    Path tp = kSpec.child("tls").index(i);
    const json::array* hosts = arr(t, "hosts");
    for (std::size_t j = 0; hosts && j < hosts->size(); ++j) {
      host(errs, str(&(*hosts)[j]), tp.child("hosts").index(j));
    }
    std::string_view secret = str(t, "secretName");
    if (!opts.allow_invalid_secret_name && !secret.empty()) {
      for (auto& m : is_dns1123_subdomain(secret))
        errs.push_back(invalid_str(tp.child("secretName"), secret, m));
    }
  }
  if (const json::value* cls = field(spec, "ingressClassName")) {
    add(errs, name_with(name_is_dns_subdomain, kSpec.child("ingressClassName"), str(cls)));
  }
  return errs;
}

Errors ingress_validate(const api::Resource&, const json::object& ing, const json::object* old) {
  const json::object* spec = obj(ing, "spec");
  if (old == nullptr) {
    Errors errs = object_meta(ing, true, name_is_dns_subdomain);
    add(errs, ingress_spec(spec, IngressOptions{}));
    const json::value* ann =
        field(obj(obj(ing, "metadata"), "annotations"), "kubernetes.io/ingress.class");
    const json::value* cls = field(spec, "ingressClassName");
    if (ann && cls && str(ann) != str(cls)) {
      errs.push_back(invalid_str(Path().child("annotations").child("kubernetes.io/ingress.class"),
                                 str(ann),
                                 "must match `ingressClassName` when both are specified"));
    }
    return errs;
  }
  Errors errs = object_meta_update(ing, *old);
  // Values that were already stored stay acceptable.
  IngressOptions opts;
  const json::object* old_spec = obj(*old, "spec");
  if (const json::array* tls = arr(old_spec, "tls")) {
    for (const auto& t : *tls) {
      std::string_view s = str(t.if_object(), "secretName");
      if (!s.empty() && !is_dns1123_subdomain(s).empty()) opts.allow_invalid_secret_name = true;
    }
  }
  if (const json::array* rules = arr(old_spec, "rules")) {
    for (const auto& r : *rules) {
      std::string_view h = str(r.if_object(), "host");
      if (h.find('*') != std::string_view::npos) {
        Errors tmp;
        const json::object* http = obj(r.if_object(), "http");
        const json::array* paths = arr(http, "paths");
        for (std::size_t j = 0; paths && j < paths->size(); ++j) {
          ingress_path(tmp, (*paths)[j].if_object(), Path());
        }
        if (!tmp.empty()) opts.allow_invalid_wildcard_host_rule = true;
      }
    }
  }
  add(errs, ingress_spec(spec, opts));
  return errs;
}

Errors ingress_status(const api::Resource&, const json::object& ing, const json::object& old) {
  Errors errs = object_meta_update(ing, old);
  const json::array* ingress = arr(obj(obj(ing, "status"), "loadBalancer"), "ingress");
  Path ip = Path().child("status", "loadBalancer", "ingress");
  for (std::size_t i = 0; ingress && i < ingress->size(); ++i) {
    const json::object* in = (*ingress)[i].if_object();
    if (std::string_view addr = str(in, "ip"); !addr.empty())
      add(errs, validate_ip(ip.index(i).child("ip"), addr));
    std::string_view h = str(in, "hostname");
    if (!h.empty()) {
      add(errs, dns1123_subdomain(ip.index(i).child("hostname"), h));
      if (parse_ip(h)) {
        errs.push_back(
            invalid_str(ip.index(i).child("hostname"), h, "must be a DNS name, not an IP address"));
      }
    }
  }
  return errs;
}

constexpr std::array kNetworkingKinds = {
    KindRules{"networking.k8s.io", "NetworkPolicy", networkpolicy_defaults, networkpolicy_validate,
              nullptr},
    KindRules{"networking.k8s.io", "Ingress", nullptr, ingress_validate, ingress_status},
};

}  // namespace

std::span<const KindRules> networking_kinds() { return kNetworkingKinds; }

}  // namespace podwarp::validation
