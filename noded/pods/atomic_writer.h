// AtomicWriter: writes a volume's files (configMap, secret, downwardAPI, projected) so that a
// reader in the container sees either the old set or the new set, never a mix, as the
// kubelet's pkg/volume/util/atomic_writer.go lays them out:
//
//   <dir>/..2026_11_22_05_30_00.123456789/   the payload (real files, modes as given)
//   <dir>/..data -> ..2026_11_22_05_30_00.123456789   swapped by rename(2) of ..data_tmp
//   <dir>/<key>  -> ..data/<key>              one symlink per top-level name of the payload
//
// An update that changes nothing (same paths, contents and modes) writes nothing. On change: a
// new timestamped dir is written, ..data is swapped atomically, top-level symlinks are added
// for new names and removed for names gone, and the old timestamped dir is deleted. subPath
// bind mounts resolve the symlinks at mount time, so they keep the old file (as upstream).
//
// Not thread-safe per dir; errors name the syscall and path.
#pragma once

#include <expected>
#include <map>
#include <string>

namespace podwarp::noded::pods {

struct FileProjection {
  std::string data;
  int mode = 0644;
  bool operator==(const FileProjection&) const = default;
};

// payload: relative path ("a", "sub/b.txt") -> file. Paths must be relative, without ".."
// components and not starting with "..". Returns whether anything was written.
std::expected<bool, std::string> write_atomic(const std::string& dir,
                                              const std::map<std::string, FileProjection>& payload);

// What is currently published under dir/..data (empty map when nothing is).
std::map<std::string, FileProjection> read_published(const std::string& dir);

}  // namespace podwarp::noded::pods
