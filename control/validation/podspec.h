// PodSpec and PodTemplateSpec rules shared by Pods and every workload kind: upstream's
// ValidatePodSpec / ValidatePodTemplateSpec (pkg/apis/core/validation) and SetDefaults_PodSpec,
// SetDefaults_Container, SetDefaults_Volume, ... (pkg/apis/core/v1/defaults.go).
#pragma once

#include "podwarp/json.h"
#include "validation/field.h"

namespace podwarp::validation {

struct PodSpecOptions {
  // The spec belongs to a Pod (not a template): hostPort must equal containerPort under
  // hostNetwork, image volumes need a reference, pod-only annotations are checked.
  bool resource_is_pod = false;
  // The pod's metadata, for the names of ephemeral volumes' claims; null for templates.
  const json::object* pod_meta = nullptr;
};

Errors validate_pod_spec(const json::object* spec, const Path& p, const PodSpecOptions& opts);
// Labels, annotations, pod-specific annotations and the spec of a pod template.
Errors validate_pod_template_spec(const json::object* tmpl, const Path& p);
// ValidatePodSpecificAnnotations.
Errors validate_pod_annotations(const json::value* annotations, const json::object* spec,
                                const Path& p, bool resource_is_pod);
// Resource requirements of a container (names, quantities, requests <= limits).
Errors validate_container_resources(const json::object* res, const Path& p);
// ValidatePersistentVolumeClaimSpec (claims, claim templates of StatefulSets and ephemeral
// volumes).
Errors validate_pvc_spec(const json::object* spec, const Path& p);
// Values of accessModes (known, ReadWriteOncePod alone); not whether there are any.
Errors validate_access_modes(const json::array* modes, const Path& p);
// A storage request or capacity: a quantity greater than zero.
Errors validate_storage_quantity(const json::value& v, const Path& p);
// The volume sources of `sources` as a pod volume's (exactly one, each source's own rules), with
// their paths under `p`. PersistentVolumes pass the sources their spec shares with pods.
Errors validate_volume_source(const json::object* sources, const Path& p);
// validatePathNoBacksteps: no ".." element in `target`.
void no_backsteps(Errors& errs, std::string_view target, const Path& p);
// ValidateNodeSelector: at least one term, each term's requirements.
Errors validate_node_selector(const json::object* sel, const Path& p);
// ValidateTolerations.
Errors validate_tolerations(const json::array* tolerations, const Path& p);

// copy_fields for a pod spec's affinity.nodeAffinity: `into` gets the node affinity of `from`,
// and loses an affinity left empty unless `from` has one. For the update checks that let node
// affinity change.
void copy_node_affinity(json::object& into, const json::object* from);

// Defaulting.
void default_pod_spec(json::object& spec);
// A pod template: spec defaults and the template's metadata.creationTimestamp: null that Go's
// encoder writes for an unset time.
void default_pod_template(json::object& tmpl);
// SetDefaults_Pod on top of the spec defaults (requests from limits, enableServiceLinks, ...).
void default_pod(json::object& pod);
// Claim template of a StatefulSet: apiVersion/kind, volumeMode, status.phase, quantities.
void default_pvc_template(json::object& pvc);
// Rewrites every quantity of a resource list in canonical form, rounded up to milli units.
void default_resource_list(json::object& list);

// The QoS class upstream records in status.qosClass ("Guaranteed", "Burstable", "BestEffort").
std::string pod_qos_class(const json::object* spec);

}  // namespace podwarp::validation
