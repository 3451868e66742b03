// Configuration objects: upstream's printConfigMap, printSecret and printServiceAccount.
#include "tables/format.h"
#include "tables/printer.h"

namespace podwarp::tables::detail {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

constexpr Column kConfigMapColumns[] = {
    kNameColumn,
    {"Data", "string", "",
     "Data contains the configuration data. Each key must consist of alphanumeric characters, "
     "'-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The "
     "keys stored in Data must not overlap with the keys in the BinaryData field, this is "
     "enforced during validation process."},
    kAgeColumn,
};

json::array config_map_cells(const json::value& cm, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(cm));
  cells.emplace_back(size_at(cm, {"data"}) + size_at(cm, {"binaryData"}));
  cells.emplace_back(age_of(cm, now));
  return cells;
}

constexpr Column kSecretColumns[] = {
    kNameColumn,
    {"Type", "string", "",
     "Used to facilitate programmatic handling of secret data. More info: "
     "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"},
    {"Data", "string", "",
     "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' "
     "or '.'. The serialized form of the secret data is a base64 encoded string, representing "
     "the arbitrary (possibly non-string) data value here. Described in "
     "https://tools.ietf.org/html/rfc4648#section-4"},
    kAgeColumn,
};

json::array secret_cells(const json::value& secret, TimePoint now) {
  std::string_view type = get_string(secret, {"type"});
  json::array cells;
  cells.emplace_back(name_of(secret));
  cells.emplace_back(type.empty() ? std::string_view("Opaque") : type);  // the API default
  cells.emplace_back(size_at(secret, {"data"}));
  cells.emplace_back(age_of(secret, now));
  return cells;
}

constexpr Column kServiceAccountColumns[] = {
    kNameColumn,
    {"Secrets", "string", "",
     "Secrets is a list of the secrets in the same namespace that pods running using this "
     "ServiceAccount are allowed to use."},
    kAgeColumn,
};

json::array service_account_cells(const json::value& sa, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(sa));
  cells.emplace_back(size_at(sa, {"secrets"}));
  cells.emplace_back(age_of(sa, now));
  return cells;
}

constexpr Printer kPrinters[] = {
    {"", "ConfigMap", kConfigMapColumns, &config_map_cells},
    {"", "Secret", kSecretColumns, &secret_cells},
    {"", "ServiceAccount", kServiceAccountColumns, &service_account_cells},
};

}  // namespace

std::span<const Printer> config_printers() { return kPrinters; }

}  // namespace podwarp::tables::detail
