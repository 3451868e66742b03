// A container's stdin and terminal as noded keeps them for `kubectl attach` (and `kubectl run
// -it`): spec.containers[].stdin gives the container a pipe on fd 0 whose write end noded holds;
// spec.containers[].tty gives it a pseudo-terminal on fds 0/1/2 (its controlling terminal) whose
// master noded holds, reading the container's output from it and writing attach input into it.
// Also the pty helpers that exec -t shares.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "podwarp/unique_fd.h"

namespace podwarp::noded::console {

// A pseudo-terminal: the master (O_NONBLOCK|O_CLOEXEC) for noded, the slave (O_CLOEXEC|O_NOCTTY)
// for the process.
struct Pty {
  UniqueFd master, slave;
};
std::expected<Pty, std::string> open_pty();
// A pipe, both ends O_CLOEXEC: {read end, write end}.
std::expected<std::pair<UniqueFd, UniqueFd>, std::string> open_pipe();
void set_nonblock(int fd);
// Writes the terminal's end-of-file character (VEOF, ^D by default) to a master: it ends a
// canonical-mode read on the slave, as closing a pipe ends a read.
void send_eof(int master);
// TIOCSWINSZ: the terminal's size in characters.
std::expected<void, std::string> set_window_size(int master, std::uint16_t width, std::uint16_t height);
// A process on a terminal gets TERM=xterm when its environment ("K=V" entries) sets no TERM,
// as containerd's WithTTY.
void ensure_term(std::vector<std::string>& env);

// One run of a container's stdin/terminal. Created before the container starts and kept by
// its supervisor for as long as that run lives; attach sessions share it.
// Threading: noded's loop thread.
class Console {
 public:
  struct Options {
    bool tty = false;         // spec tty
    bool stdin = false;       // spec stdin
    bool stdin_once = false;  // spec stdinOnce
  };
  // Null (and no error) when the spec asks for neither stdin nor tty: fd 0 is /dev/null then.
  static std::expected<std::shared_ptr<Console>, std::string> open(const Options& o);

  bool tty() const { return o_.tty; }
  // The container's end: fd 0 (the stdin pipe's read end), or fds 0/1/2 (the pty slave). Give
  // it to the runtime, then call started(): the container holds its own copy from then on.
  int child_fd() const { return child_.get(); }
  void started() { child_.reset(); }
  // tty: a new descriptor of the master for the output pump, which owns it; -1 without tty.
  int dup_output() const;
  // Where an attach writes its client's input: the pipe's write end or the master. -1 when
  // the spec has no stdin, or once stdinOnce closed it.
  int input_fd() const;
  // An attach's input ended (the client closed its stdin or went away). With stdinOnce and no
  // tty the container's stdin closes for the rest of this run, as upstream ("stdin is closed
  // and remains closed until the container is restarted"); with a tty the terminal stays (the
  // process reads on until it exits), as containerd does.
  void input_ended();
  std::expected<void, std::string> resize(std::uint16_t width, std::uint16_t height) const;

 private:
  explicit Console(const Options& o) : o_(o) {}
  Options o_;
  UniqueFd child_;  // until started()
  UniqueFd ours_;   // the stdin pipe's write end, or the master
};

}  // namespace podwarp::noded::console
