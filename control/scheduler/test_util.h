// Hand-built pods and nodes for the scheduler's unit tests.
#pragma once

#include <stdexcept>
#include <string>

#include "podwarp/json.h"
#include "scheduler/model.h"

namespace podwarp::scheduler::testing {

inline json::value parse(std::string_view text) {
  auto v = parse_json(text);
  if (!v) throw std::runtime_error("bad test JSON: " + v.error());
  return *v;
}

// A node with allocatable cpu/memory/pods and the given labels (JSON object text).
inline json::value node_json(const std::string& name, const std::string& cpu = "4",
                             const std::string& memory = "32Gi", const std::string& pods = "110",
                             const std::string& labels = "{}", const std::string& spec = "{}") {
  json::value n =
      parse(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":")" + name + R"(","labels":)" +
            labels + R"(},"spec":)" + spec + R"(,"status":{"allocatable":{"cpu":")" + cpu +
            R"(","memory":")" + memory + R"(","pods":")" + pods + R"("}}})");
  n.as_object()["metadata"].as_object()["labels"].as_object()["kubernetes.io/hostname"] = name;
  return n;
}

// A pod requesting cpu/memory, with extra spec fields merged in (JSON object text).
inline json::value pod_json(const std::string& name, const std::string& cpu = "100m",
                            const std::string& memory = "100Mi",
                            const std::string& spec_extra = "{}", const std::string& labels = "{}",
                            const std::string& ns = "default") {
  json::value p = parse(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name + R"(","namespace":")" + ns +
      R"(","uid":"uid-)" + ns + "-" + name + R"(","labels":)" + labels +
      R"(,"creationTimestamp":"2026-11-22T00:00:00Z"},"spec":{"containers":[{"name":"c","image":"x","resources":{"requests":{"cpu":")" +
      cpu + R"(","memory":")" + memory + R"("}}}]}})");
  json::value extra = parse(spec_extra);
  auto& spec = p.as_object()["spec"].as_object();
  for (const auto& kv : extra.as_object()) spec[kv.key()] = kv.value();
  return p;
}

}  // namespace podwarp::scheduler::testing
