// Pod QoS class and the cgroup limits of pods and containers, from pod JSON. Pure functions.
//
// pod_qos_class follows upstream's ComputePodQOS (pkg/apis/core/v1/helper/qos): only cpu and
// memory count, zero quantities are ignored, init containers count like app containers.
// Pods read from a manifest folder have not been through API defaulting, so a cpu/memory
// request that is absent while its limit is set is taken as equal to the limit (the
// apiserver's defaulting), before classifying. Unparsable quantities count as absent.
#pragma once

#include <string_view>

#include "cgroup/cgroup.h"
#include "podwarp/json.h"

namespace podwarp::noded::cgroup {

enum class QosClass { kGuaranteed, kBurstable, kBestEffort };

// "Guaranteed", "Burstable", "BestEffort" (status.qosClass values).
std::string_view qos_class_name(QosClass c);

// The class of a pod object ({"spec": {"containers": [...], "initContainers": [...]}}).
QosClass pod_qos_class(const json::value& pod);

// Limits of one container object ({"resources": {"requests": {...}, "limits": {...}}}).
// cpu_request_milli falls back to the cpu limit when absent (defaulting).
Limits container_limits(const json::value& container);

// Limits of the pod group, as the kubelet's ResourceConfigForPod: the cpu request is
// max(sum over app containers, max over init containers); cpu and memory limits are set only
// when every container declares one (same max/sum rule); pids_max is left unset.
Limits pod_limits(const json::value& pod);

}  // namespace podwarp::noded::cgroup
