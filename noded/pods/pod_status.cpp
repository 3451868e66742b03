#include "pods/pod_status.h"

#include <fmt/format.h>

#include "cgroup/qos.h"
#include "podwarp/time.h"

namespace podwarp::noded::pods {

namespace {
using K = ContainerState::Kind;

bool last_terminated(const ContainerStatus& c) {
  return c.last_state && c.last_state->kind == K::kTerminated;
}
}  // namespace

std::string compute_phase(const PodDef& def, const PodStatus& s) {
  if (!s.failed_reason.empty()) return "Failed";
  int pending_init = 0, failed_init = 0;
  for (const auto& c : s.init) {
    if (!c.known) {
      ++pending_init;
      continue;
    }
    switch (c.state.kind) {
      case K::kRunning: ++pending_init; break;
      case K::kTerminated:
        if (c.state.exit_code != 0) ++failed_init;
        break;
      case K::kWaiting:
        if (last_terminated(c) && c.last_state->exit_code != 0)
          ++failed_init;
        else
          ++pending_init;
        break;
    }
  }
  int unknown = 0, running = 0, waiting = 0, stopped = 0, succeeded = 0;
  for (const auto& c : s.app) {
    if (!c.known) {
      ++unknown;
      continue;
    }
    switch (c.state.kind) {
      case K::kRunning: ++running; break;
      case K::kTerminated:
        ++stopped;
        if (c.state.exit_code == 0) ++succeeded;
        break;
      case K::kWaiting:
        if (last_terminated(c))
          ++stopped;
        else
          ++waiting;
        break;
    }
  }
  if (failed_init > 0 && def.restart_policy == "Never") return "Failed";
  if (pending_init > 0 || failed_init > 0 || waiting > 0) return "Pending";
  if (running > 0 && unknown == 0) return "Running";
  if (running == 0 && stopped > 0 && unknown == 0) {
    if (s.terminal) return stopped == succeeded ? "Succeeded" : "Failed";
    if (def.restart_policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (def.restart_policy == "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

std::vector<Condition> compute_conditions(const PodDef& def, const PodStatus& s,
                                          const std::string& phase) {
  std::vector<Condition> out;
  bool completed = phase == "Succeeded" || phase == "Failed";
  out.push_back({"PodReadyToStartContainers", s.sandbox_ready && !completed, "", ""});

  std::vector<std::string> not_init;
  for (const auto& c : s.init)
    if (!(c.known && c.state.kind == K::kTerminated && c.state.exit_code == 0)) not_init.push_back(c.name);
  Condition init{"Initialized", not_init.empty(), "", ""};
  if (!not_init.empty()) {
    if (phase == "Succeeded") {
      init.status = true;
      init.reason = "PodCompleted";
    } else {
      init.reason = "ContainersNotInitialized";
      init.message = fmt::format("containers with incomplete status: [{}]", fmt::join(not_init, " "));
    }
  }
  out.push_back(init);

  std::vector<std::string> unready;
  for (const auto& c : s.app)
    if (!c.ready) unready.push_back(c.name);
  Condition ready{"Ready", unready.empty(), "", ""};
  if (completed) {
    ready.status = false;
    ready.reason = "PodCompleted";
  } else if (!init.status) {
    ready.reason = "ContainersNotInitialized";
    ready.message = init.message;
    ready.status = false;
  } else if (!unready.empty()) {
    ready.reason = "ContainersNotReady";
    ready.message = fmt::format("containers with unready status: [{}]", fmt::join(unready, " "));
  }
  Condition cready = ready;
  cready.type = "ContainersReady";
  out.push_back(ready);
  out.push_back(cready);
  out.push_back({"PodScheduled", true, "", ""});
  (void)def;
  return out;
}

void update_condition_times(PodStatus& s, const std::vector<Condition>& conds, WallTime now) {
  for (const auto& c : conds) {
    auto it = s.condition_times.find(c.type);
    if (it == s.condition_times.end() || it->second.first != c.status)
      s.condition_times[c.type] = {c.status, now};
  }
}

namespace {

json::object render_state(const ContainerState& st) {
  json::object o;
  switch (st.kind) {
    case K::kWaiting: {
      json::object w;
      if (!st.reason.empty()) w["reason"] = st.reason;
      if (!st.message.empty()) w["message"] = st.message;
      o["waiting"] = std::move(w);
      break;
    }
    case K::kRunning:
      o["running"] = json::object{{"startedAt", format_rfc3339(st.started_at)}};
      break;
    case K::kTerminated: {
      json::object t;
      t["exitCode"] = st.exit_code;
      if (st.signal != 0) t["signal"] = st.signal;
      if (!st.reason.empty()) t["reason"] = st.reason;
      if (!st.message.empty()) t["message"] = st.message;
      t["startedAt"] = st.started_at == WallTime{} ? json::value(nullptr) : json::value(format_rfc3339(st.started_at));
      t["finishedAt"] = st.finished_at == WallTime{} ? json::value(nullptr) : json::value(format_rfc3339(st.finished_at));
      if (!st.container_id.empty()) t["containerID"] = st.container_id;
      o["terminated"] = std::move(t);
      break;
    }
  }
  return o;
}

}  // namespace

json::object render_container_status(const ContainerStatus& c) {
  json::object o;
  o["name"] = c.name;
  o["image"] = c.image;
  o["imageID"] = c.image_id;
  if (!c.container_id.empty()) o["containerID"] = c.container_id;
  o["state"] = render_state(c.state);
  o["lastState"] = c.last_state ? render_state(*c.last_state) : json::object();
  o["ready"] = c.ready;
  o["restartCount"] = c.restart_count;
  if (c.started) o["started"] = *c.started;
  return o;
}

json::object render_pod_status(const PodDef& def, const PodStatus& s) {
  json::object o;
  std::string phase = compute_phase(def, s);
  o["phase"] = phase;
  if (!s.failed_reason.empty()) {
    o["reason"] = s.failed_reason;
    o["message"] = s.failed_message;
  }
  json::array conds;
  for (const auto& c : compute_conditions(def, s, phase)) {
    json::object co;
    co["type"] = c.type;
    co["status"] = c.status ? "True" : "False";
    co["lastProbeTime"] = nullptr;
    auto it = s.condition_times.find(c.type);
    co["lastTransitionTime"] = it != s.condition_times.end() && it->second.second != WallTime{}
                                   ? json::value(format_rfc3339(it->second.second))
                                   : json::value(nullptr);
    if (!c.reason.empty()) co["reason"] = c.reason;
    if (!c.message.empty()) co["message"] = c.message;
    conds.push_back(std::move(co));
  }
  o["conditions"] = std::move(conds);
  if (!s.host_ip.empty()) {
    o["hostIP"] = s.host_ip;
    o["hostIPs"] = json::array{json::object{{"ip", s.host_ip}}};
  }
  if (!s.pod_ip.empty()) {
    o["podIP"] = s.pod_ip;
    o["podIPs"] = json::array{json::object{{"ip", s.pod_ip}}};
  }
  if (s.start_time != WallTime{}) o["startTime"] = format_rfc3339(s.start_time);
  json::array init, app;
  for (const auto& c : s.init) init.push_back(render_container_status(c));
  for (const auto& c : s.app) app.push_back(render_container_status(c));
  if (!s.init.empty()) o["initContainerStatuses"] = std::move(init);
  o["containerStatuses"] = std::move(app);
  if (!s.ephemeral.empty()) {
    json::array eph;
    for (const auto& c : s.ephemeral) eph.push_back(render_container_status(c));
    o["ephemeralContainerStatuses"] = std::move(eph);
  }
  o["qosClass"] = std::string(cgroup::qos_class_name(cgroup::pod_qos_class(def.pod)));
  return o;
}

}  // namespace podwarp::noded::pods
