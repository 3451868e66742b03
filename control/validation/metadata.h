// Object metadata, labels, annotations and label selectors: upstream's ValidateObjectMeta /
// ValidateObjectMetaUpdate (with core's finalizer-name rule), ValidateLabels,
// ValidateAnnotations, ValidateLabelSelector and LabelSelectorAsSelector + Matches.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "podwarp/json.h"
#include "podwarp/selector.h"
#include "validation/field.h"
#include "validation/names.h"

namespace podwarp::validation {

// Metadata of a new object. `meta` is obj["metadata"] (may be null). `core_finalizers` adds
// core's rule that unprefixed finalizers be standard ones (every kind-specific validation has it;
// the generic checks of rest.BeforeCreate/BeforeUpdate do not).
Errors validate_object_meta(const json::object* meta, bool namespaced, NameFn name_fn,
                            const Path& p, bool core_finalizers = true);
// Metadata of an update: immutability of name, namespace, uid, creationTimestamp, ...
Errors validate_object_meta_update(const json::object* meta, const json::object* old_meta,
                                   const Path& p, bool core_finalizers = true);
// Shorthands for obj["metadata"] of whole objects at path "metadata".
Errors object_meta(const json::object& obj, bool namespaced, NameFn name_fn);
Errors object_meta_update(const json::object& obj, const json::object& old);
// The labels/annotations/name checks pod templates and claim templates get.
Errors validate_labels(const json::value* labels, const Path& p);
Errors validate_annotations(const json::value* annotations, const Path& p);
Errors validate_label_name(std::string_view key, const Path& p);
Errors validate_label_selector(const json::value* selector, const Path& p);
// metadata.finalizers entries and Namespace spec.finalizers: qualified names, and unprefixed
// names must be standard ("kubernetes", "orphan", "foregroundDeletion").
Errors validate_finalizer_name(std::string_view name, const Path& p);
Errors validate_kube_finalizer_name(std::string_view name, const Path& p);

// metav1.LabelSelectorAsSelector: a nil selector selects nothing, an empty one everything.
struct Selector {
  bool nothing = true;  // a nil selector
  LabelSelector selector;
  // upstream's Selector.Empty(): true only for "everything".
  bool empty() const { return !nothing && selector.empty(); }
  bool matches(const json::value* labels) const;
};
// std::nullopt when the selector cannot be converted (bad operator, key or value).
std::optional<Selector> as_selector(const json::value* selector);

// apiequality.Semantic.DeepEqual on JSON: null, absent and empty arrays/objects of maps compare
// equal; object key order is irrelevant.
bool semantic_equal(const json::value* a, const json::value* b);

// ValidateImmutableField with the new value already rendered by the caller.
void check_immutable(Errors& errs, const json::value* new_v, const json::value* old_v,
                     const Path& p, std::string_view shown);

// Go's time.Time String() of a metav1.Time JSON value ("0001-01-01 00:00:00 +0000 UTC" when
// absent).
std::string go_time(const json::value* t);

}  // namespace podwarp::validation
