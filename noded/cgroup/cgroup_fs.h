// CgroupFs: what the cgroup manager asks of the kernel, behind an interface (leveldb's Env).
//
// The real implementation does plain file I/O on cgroupfs (and /proc/self/mountinfo); tests
// substitute a fake that keeps files in memory, so every decision of CgroupManager (which
// controllers to enable, what to write, what to report as not enforced) is testable without
// root. Implementations must be safe for concurrent use; the real one holds no state.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/sys_error.h"

namespace podwarp::noded::cgroup {

class CgroupFs {
 public:
  virtual ~CgroupFs() = default;

  // Whole-file read. ENOENT when the file does not exist (a missing controller file).
  virtual std::expected<std::string, SysError> read(const std::string& path) = 0;
  // One write(2) of `data` (cgroupfs parses each write separately).
  virtual std::expected<void, SysError> write(const std::string& path, std::string_view data) = 0;
  // mkdir(2); EEXIST is reported as an error, callers decide.
  virtual std::expected<void, SysError> make_dir(const std::string& path) = 0;
  // rmdir(2); EBUSY while the cgroup still has processes or children.
  virtual std::expected<void, SysError> remove_dir(const std::string& path) = 0;
  // Names of the subdirectories (child cgroups) of `path`.
  virtual std::expected<std::vector<std::string>, SysError> list_dirs(const std::string& path) = 0;

  // The process-wide real implementation.
  static CgroupFs& real();
};

}  // namespace podwarp::noded::cgroup
