#include "image_cmd.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>

#include "images/digest.h"
#include "images/image_store.h"

namespace podwarp::cli {

namespace {

namespace asio = boost::asio;
using images::ImageStore;

std::unique_ptr<ImageStore> open_store(const GlobalOptions& g) {
  images::StoreOptions opts;
  opts.unpack_threads = 0;  // the CLI has nothing else to do while a layer unpacks
  auto s = ImageStore::open(g.root_dir, std::move(opts));
  if (!s) {
    fmt::print(stderr, "podwarp: {}\n", s.error().message);
    return nullptr;
  }
  return std::move(*s);
}

int pull(const GlobalOptions& g, const std::string& ref) {
  auto store = open_store(g);
  if (!store) return 1;
  images::PullOptions opts;
  opts.registry.insecure_registries = g.insecure_registries;
  // Kept alive until _exit (see main.cpp): never destroyed with operations pending.
  auto* ctx = new asio::io_context(1);
  std::optional<images::Result<images::ImageRef>> result;
  asio::co_spawn(*ctx, store->pull(ref, opts),
                 [&](std::exception_ptr e, images::Result<images::ImageRef> r) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       r = std::unexpected(images::Error{images::ErrorKind::kIo, ex.what()});
                     }
                   }
                   result = std::move(r);
                 });
  ctx->run();
  if (!result || !*result) {
    fmt::print(stderr, "podwarp: pull {}: {}\n", ref,
               result ? (*result).error().message : std::string("did not complete"));
    store.release();
    return 1;
  }
  fmt::print("Image is up to date for {} ({})\n", (*result)->name, (*result)->id);
  store.release();
  return 0;
}

int import_archive(const GlobalOptions& g, const std::string& file, const std::string& name) {
  auto store = open_store(g);
  if (!store) return 1;
  auto r = store->import_archive(file, name);
  if (!r) {
    fmt::print(stderr, "podwarp: import {}: {}\n", file, r.error().message);
    return 1;
  }
  for (const auto& img : *r) fmt::print("Imported {} ({})\n", img.name, img.id);
  return 0;
}

int list(const GlobalOptions& g, bool quiet, bool digests) {
  auto store = open_store(g);
  if (!store) return 1;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"IMAGE", "TAG"};
  if (digests) header.push_back("DIGEST");
  header.insert(header.end(), {"IMAGE ID", "SIZE"});
  rows.push_back(header);
  for (const auto& img : store->list()) {
    if (quiet) {
      fmt::print("{}\n", img.id);
      continue;
    }
    auto ref = img.reference();
    std::string tag = ref.tag.empty() ? "<none>" : ref.tag;
    std::vector<std::string> row{ref.repository(), tag};
    if (digests) row.push_back(std::string(images::digest_hex(img.repo_digest)).substr(0, 13));
    row.push_back(std::string(images::digest_hex(img.id)).substr(0, 13));
    row.push_back(human_size(static_cast<double>(img.size)));
    rows.push_back(std::move(row));
  }
  if (quiet) return 0;
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 3, ' ');
    }
    fmt::print("{}\n", line);
  }
  return 0;
}

int remove(const GlobalOptions& g, const std::vector<std::string>& refs, bool prune) {
  auto store = open_store(g);
  if (!store) return 1;
  int rc = 0;
  for (const auto& ref : refs) {
    auto r = store->remove(ref);
    if (!r) {
      fmt::print(stderr, "podwarp: rm {}: {}\n", ref, r.error().message);
      rc = 1;
      continue;
    }
    for (const auto& n : *r) fmt::print("Deleted: {}\n", n);
  }
  if (prune) {
    auto r = store->gc({});
    if (!r) {
      fmt::print(stderr, "podwarp: prune: {}\n", r.error().message);
      return 1;
    }
    for (const auto& n : r->removed_images) fmt::print("Deleted: {}\n", n);
  }
  return rc;
}

}  // namespace

std::string human_size(double bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  std::size_t i = 0;
  while (bytes >= 1000.0 && i + 1 < std::size(kUnits)) {
    bytes /= 1000.0;
    ++i;
  }
  return fmt::format("{:.4g}{}", bytes, kUnits[i]);
}

void add_image_commands(CLI::App& app, GlobalOptions& g, int& exit_code) {
  CLI::App* image = app.add_subcommand("image", "Manage the node's images");
  image->require_subcommand(1);

  auto* pull_cmd = image->add_subcommand("pull", "Pull an image from its registry");
  auto ref = std::make_shared<std::string>();
  pull_cmd->add_option("reference", *ref, "image reference (busybox, host:port/repo:tag)")
      ->required();
  pull_cmd->add_option("--insecure-registry", g.insecure_registries,
                       "registry host:port to reach over plain HTTP (repeatable)");
  pull_cmd->callback([&g, &exit_code, ref] { exit_code = pull(g, *ref); });

  auto* import_cmd = image->add_subcommand(
      "import", "Import an OCI image layout archive or a docker-archive (docker save) tar");
  auto file = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  import_cmd->add_option("file", *file, "archive (tar, optionally gzip)")->required();
  import_cmd->add_option("--name", *name,
                         "name for images the archive names only by tag (repo or repo:tag)");
  import_cmd->callback([&g, &exit_code, file, name] { exit_code = import_archive(g, *file, *name); });

  auto* ls_cmd = image->add_subcommand("ls", "List images");
  ls_cmd->alias("list");
  auto quiet = std::make_shared<bool>(false);
  auto digests = std::make_shared<bool>(false);
  ls_cmd->add_flag("-q,--quiet", *quiet, "only image ids");
  ls_cmd->add_flag("--digests", *digests, "show repo digests");
  ls_cmd->callback([&g, &exit_code, quiet, digests] { exit_code = list(g, *quiet, *digests); });

  auto* rm_cmd = image->add_subcommand("rm", "Remove images by reference or id");
  rm_cmd->alias("remove");
  auto refs = std::make_shared<std::vector<std::string>>();
  auto prune = std::make_shared<bool>(false);
  rm_cmd->add_option("reference", *refs, "references or image ids");
  rm_cmd->add_flag("--prune", *prune, "remove every image not used by a container");
  rm_cmd->callback([&g, &exit_code, refs, prune] {
    if (refs->empty() && !*prune) {
      fmt::print(stderr, "podwarp: image rm: give references or ids (or --prune)\n");
      exit_code = 1;
      return;
    }
    exit_code = remove(g, *refs, *prune);
  });
}

}  // namespace podwarp::cli
