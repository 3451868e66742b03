// Container logs in the CRI format, as containerd writes them and the kubelet reads them:
//   <RFC3339Nano time> <stdout|stderr> <F|P> <content>\n
// One file per container start: <pod-log-dir>/<ns>_<name>_<uid>/<container>/<restartCount>.log.
// A line longer than kMaxLineBytes is cut into P (partial) records ending with an F record.
// Files are rotated by size as the kubelet's container log manager does: the current file is
// renamed to "<file>.<YYYYmmdd-HHMMSS>" and reopened; at most max_files files (the current one
// included) are kept. (Upstream also gzips older rotated files; podwarp does not.)
//
// Threading: CriLogWriter and LogReader are not thread-safe; use each from one thread. The
// pump (log_pump.h) feeds a writer from pipes on an io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::noded::logs {

inline constexpr std::size_t kMaxLineBytes = 16 * 1024;

enum class Stream { kStdout, kStderr };

std::string container_log_dir(const std::string& root, std::string_view ns, std::string_view name,
                              std::string_view uid, std::string_view container);
std::string container_log_path(const std::string& root, std::string_view ns,
                               std::string_view name, std::string_view uid,
                               std::string_view container, int restart_count);

// Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros.
std::string format_rfc3339_nano(std::chrono::system_clock::time_point t);

struct CriRecord {
  std::chrono::system_clock::time_point time;
  Stream stream = Stream::kStdout;
  bool partial = false;
  std::string content;  // without the trailing newline
};

// One record as a line (with '\n').
std::string format_cri_record(const CriRecord& r);
// Parses one line (without its '\n'); errors name what is wrong.
std::expected<CriRecord, std::string> parse_cri_record(std::string_view line);

class CriLogWriter {
 public:
  struct Options {
    std::uint64_t max_size_bytes = 10 * 1024 * 1024;  // containerLogMaxSize 10Mi
    int max_files = 5;                                 // containerLogMaxFiles
  };
  CriLogWriter() = default;
  ~CriLogWriter();
  CriLogWriter(const CriLogWriter&) = delete;
  CriLogWriter& operator=(const CriLogWriter&) = delete;

  // Opens (append, creating parent directories) the log file.
  std::expected<void, std::string> open(const std::string& path, Options o);
  // Appends raw output of a stream: complete lines become F records, the rest is buffered
  // until a newline, or written as P records in chunks of kMaxLineBytes.
  void write(Stream s, std::string_view data,
             std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  // Flushes buffered partial output of a stream (at EOF of the pipe) as an F record.
  void close_stream(Stream s, std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  void close();
  const std::string& path() const { return path_; }

  // Rotation timestamp suffix format ("20261122-030405").
  static std::string rotation_suffix(std::chrono::system_clock::time_point t);

 private:
  void emit(const CriRecord& r);
  void rotate(std::chrono::system_clock::time_point now);

  std::string path_;
  Options o_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::string pending_[2];
};

struct ReadOptions {
  std::optional<std::int64_t> tail_lines;  // last N records (F-terminated lines)
  std::optional<std::chrono::system_clock::time_point> since;
  bool timestamps = false;
  std::optional<std::int64_t> limit_bytes;
};

// Renders records as the kubelet does for `kubectl logs`: content (P records joined with the
// following ones), '\n' after F records, optionally prefixed by "<timestamp> ".
std::string render_record(const CriRecord& r, bool timestamps);

// Reads a whole CRI log file and renders it per options. Malformed lines are skipped.
std::expected<std::string, std::string> read_log_file(const std::string& path, const ReadOptions& o);

// Incremental reader for follow: returns what was appended since the last call (whole lines
// only), and follows the file across rotation (a new inode at the same path).
class LogFollower {
 public:
  explicit LogFollower(std::string path) : path_(std::move(path)) {}
  ~LogFollower();
  LogFollower(const LogFollower&) = delete;
  LogFollower& operator=(const LogFollower&) = delete;
  // Starts at the current end of the file (after an initial read_log_file).
  void seek_end();
  std::vector<CriRecord> poll();

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t ino_ = 0;
  std::uint64_t offset_ = 0;
  std::string buf_;
};

}  // namespace podwarp::noded::logs
