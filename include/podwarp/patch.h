// The three PATCH flavours of the Kubernetes API, on Boost.JSON values.
//
//  - JSON Patch (RFC 6902, application/json-patch+json): add, remove, replace, move, copy,
//    test, RFC 6901 pointers (~0, ~1), "-" to append. Like the evanphx/json-patch library
//    the apiserver uses, negative array indexes count from the end for add and remove, and
//    error messages follow its wording ("add operation does not apply: doc is missing path:
//    \"/a/b\": missing value"). Unlike it, a replace of an absent member fails (RFC).
//    Copies may add at most 3 MiB in all (upstream's JSONPatchMaxCopyBytes, with evanphx's
//    "Unable to complete the copy, the accumulated size increase of copy is ..." error), and
//    no operation may nest the document deeper than the 64 levels parse_json accepts (or than
//    the input document already was), so that a patch can neither blow a small body up nor
//    build a document that cannot be read back.
//  - JSON Merge Patch (RFC 7386, application/merge-patch+json).
//  - Strategic Merge Patch (application/strategic-merge-patch+json), following
//    k8s.io/apimachinery/pkg/util/strategicpatch as the apiserver runs it: maps merge
//    recursively and null deletes; lists whose schema says "merge" with a merge key merge
//    item by item, the directives $patch (replace, delete, merge), $retainKeys,
//    $deleteFromPrimitiveList/<field> and $setElementOrder/<field> are honoured, lists of
//    primitives with "merge" are union-merged, and every other list is replaced. Item order
//    follows upstream: $setElementOrder wins; without it, items named in the patch keep the
//    patch's order and server-only items keep their relative order, so an item new to the
//    list lands before the server-only items that follow the last patch item (kubectl patch
//    adding a container puts it first). Directive keys never appear in the result.
//    create_strategic_merge_patch is upstream's two-way CreateTwoWayMergePatch.
//
// Schema knowledge comes from a PatchMeta tree; where it is absent (nullptr) objects merge
// as in JSON merge patch and lists are replaced.
//
// All functions are pure: they never modify their arguments, never throw, and are safe to
// call from any thread as long as the PatchMeta is not being modified. Nesting deeper than a
// few hundred levels is rejected rather than recursed into.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::patch {

class PatchMeta {
 public:
  virtual ~PatchMeta() = default;
  // Meta of an object field (a struct field, or a map value when the node is a map);
  // nullptr when unknown: then objects merge as in JSON merge patch and lists are replaced.
  virtual const PatchMeta* field(std::string_view name) const = 0;
  // Meta of the items of a list-typed node; nullptr when unknown.
  virtual const PatchMeta* items() const = 0;
  // For a list-typed node: x-kubernetes-patch-strategy ("", "merge", "replace",
  // "retainKeys", "merge,retainKeys") and x-kubernetes-patch-merge-key ("" for lists of
  // primitives).
  virtual std::string_view patch_strategy() const = 0;
  virtual std::string_view patch_merge_key() const = 0;
};

std::expected<json::value, std::string> apply_json_patch(const json::value& doc,
                                                         const json::value& patch);

std::expected<json::value, std::string> apply_merge_patch(const json::value& doc,
                                                          const json::value& patch);

// The two-way merge patch that turns original into modified (RFC 7386; arrays replaced).
std::expected<json::value, std::string> create_merge_patch(const json::value& original,
                                                           const json::value& modified);

// doc and patch must be objects (a null patch changes nothing; a null doc is {}).
std::expected<json::value, std::string> apply_strategic_merge_patch(const json::value& doc,
                                                                    const json::value& patch,
                                                                    const PatchMeta* meta);

// Creates a two-way strategic merge patch from original to modified (used by tests and
// client-side helpers): applying it to original yields modified.
std::expected<json::value, std::string> create_strategic_merge_patch(const json::value& original,
                                                                     const json::value& modified,
                                                                     const PatchMeta* meta);

}  // namespace podwarp::patch
