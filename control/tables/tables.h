// Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//
// kubectl prints whatever columns and cells the server sends, so `kubectl get` output is only
// identical to upstream's if these match kubernetes/pkg/printers/internalversion/printers.go
// (v1.32) column for column and cell for cell. Like upstream's TableConvertor, rows are always
// generated "wide": every cell of every column is present, and columns with a non-zero priority
// are the ones kubectl shows only with `-o wide`.
//
// Objects are the stored JSON of one resource (boost::json values, as everywhere in podwarp).
// Fields the API server defaults (spec.replicas, spec.type, port protocols, secret type, ...)
// are printed with their default when absent, as upstream prints the defaulted object.
// A kind without a printer gets upstream's default table: Name and "Created At" (RFC 3339).
//
// All functions are pure apart from a lazily built, immutable column cache, and are safe to call
// concurrently from any thread.
#pragma once

#include <chrono>
#include <span>
#include <string_view>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"

namespace podwarp::tables {

// meta.k8s.io/v1 TableColumnDefinition objects {"name","type","format","description","priority"}
// for r's kind, in upstream's order. The reference stays valid for the life of the process.
const json::array& column_definitions(const api::Resource& r);

// The cells of obj's row, one per column_definitions(r) entry: strings and integers exactly as
// upstream prints them, with ages ("5m", "<unknown>") computed at `now`.
json::array row_cells(const api::Resource& r, const json::value& obj,
                      std::chrono::system_clock::time_point now);

// The values of the includeObject query parameter ("" means the default, Metadata).
// Anything else is a 400 upstream; callers should check with this before make_table.
bool valid_include_object(std::string_view include_object);

// A whole Table:
//   {"kind":"Table","apiVersion":"meta.k8s.io/v1",
//    "metadata":{"resourceVersion":rv,"continue":token}   (each omitted when empty),
//    "columnDefinitions":[...] (null when !include_column_definitions, as upstream does for
//                               watch events after the first and for ?noHeaders),
//    "rows":[{"cells":[...],"conditions":[...] (pods that have finished only),"object":...}]}
// where object is, by include_object:
//   "None"            null
//   "Metadata" or ""  {"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
//                      "metadata":<obj.metadata>}  (what `-A` and --show-labels read)
//   "Object"          the object itself (kind and apiVersion filled in when missing).
// An unknown include_object is treated as Metadata; see valid_include_object.
json::value make_table(const api::Resource& r, std::span<const json::value* const> objects,
                       std::string_view resource_version, std::string_view continue_token,
                       std::string_view include_object, std::chrono::system_clock::time_point now,
                       bool include_column_definitions = true);

// storageutil.IsDefaultAnnotation: the StorageClass is annotated
// storageclass.kubernetes.io/is-default-class (or its beta form) "true". The "(default)" of the
// printer and the DefaultStorageClass admission of claims.
bool is_default_storage_class(const json::value& sc);

}  // namespace podwarp::tables
