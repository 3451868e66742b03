#include "adapters/loopback.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace podwarp::noded::adapters {

std::expected<void, SysError> bring_up_loopback(const std::string& netns_path) {
  int nsfd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return std::unexpected(errno_error("open " + netns_path));
  std::expected<void, SysError> result;
  std::thread t([&] {
    // This thread ends right after: it never returns to the host namespace.
    if (::setns(nsfd, CLONE_NEWNET) != 0) {
      result = std::unexpected(errno_error("setns " + netns_path));
      return;
    }
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      result = std::unexpected(errno_error("socket in " + netns_path));
      return;
    }
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
      result = std::unexpected(errno_error("SIOCGIFFLAGS lo in " + netns_path));
    } else if ((ifr.ifr_flags & IFF_UP) == 0) {
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
      if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        result = std::unexpected(errno_error("SIOCSIFFLAGS lo in " + netns_path));
    }
    ::close(s);
  });
  t.join();
  ::close(nsfd);
  return result;
}

}  // namespace podwarp::noded::adapters
