#include "logs/cri_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fmt/format.h>

#include "podwarp/time.h"

namespace podwarp::noded::logs {

namespace fs = std::filesystem;

std::string container_log_dir(const std::string& root, std::string_view ns, std::string_view name,
                              std::string_view uid, std::string_view container) {
  return fmt::format("{}/{}_{}_{}/{}", root, ns, name, uid, container);
}

std::string container_log_path(const std::string& root, std::string_view ns,
                               std::string_view name, std::string_view uid,
                               std::string_view container, int restart_count) {
  return fmt::format("{}/{}.log", container_log_dir(root, ns, name, uid, container), restart_count);
}

std::string format_rfc3339_nano(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  std::int64_t secs = ns / 1'000'000'000;
  std::int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac != 0) {
    std::string f = fmt::format("{:09}", frac);
    while (!f.empty() && f.back() == '0') f.pop_back();
    out += "." + f;
  }
  out += "Z";
  return out;
}

std::string format_cri_record(const CriRecord& r) {
  return fmt::format("{} {} {} {}\n", format_rfc3339_nano(r.time),
                     r.stream == Stream::kStdout ? "stdout" : "stderr", r.partial ? "P" : "F",
                     r.content);
}

std::expected<CriRecord, std::string> parse_cri_record(std::string_view line) {
  CriRecord r;
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::unexpected("missing timestamp separator");
  auto t = parse_rfc3339(line.substr(0, sp1));
  if (!t) return std::unexpected("bad timestamp: " + t.error());
  r.time = *t;
  auto rest = line.substr(sp1 + 1);
  auto sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return std::unexpected("missing stream separator");
  auto stream = rest.substr(0, sp2);
  if (stream == "stdout")
    r.stream = Stream::kStdout;
  else if (stream == "stderr")
    r.stream = Stream::kStderr;
  else
    return std::unexpected(fmt::format("unexpected stream type \"{}\"", stream));
  rest = rest.substr(sp2 + 1);
  auto sp3 = rest.find(' ');
  auto tag = rest.substr(0, sp3);
  if (tag == "P")
    r.partial = true;
  else if (tag != "F")
    return std::unexpected(fmt::format("unexpected tag \"{}\"", tag));
  r.content = sp3 == std::string_view::npos ? "" : std::string(rest.substr(sp3 + 1));
  return r;
}

CriLogWriter::~CriLogWriter() { close(); }

std::expected<void, std::string> CriLogWriter::open(const std::string& path, Options o) {
  close();
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return std::unexpected(fmt::format("mkdir {}: {}", fs::path(path).parent_path().string(), ec.message()));
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return std::unexpected(fmt::format("open {}: {}", path, std::strerror(errno)));
  struct stat st{};
  size_ = ::fstat(fd_, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  path_ = path;
  o_ = o;
  return {};
}

void CriLogWriter::close() {
  if (fd_ >= 0) {
    auto now = std::chrono::system_clock::now();
    close_stream(Stream::kStdout, now);
    close_stream(Stream::kStderr, now);
    ::close(fd_);
    fd_ = -1;
  }
}

std::string CriLogWriter::rotation_suffix(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}{:02}{:02}-{:02}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void CriLogWriter::rotate(std::chrono::system_clock::time_point now) {
  std::string rotated = path_ + "." + rotation_suffix(now);
  // Two rotations in the same second: make the name unique.
  for (int i = 1; fs::exists(rotated); ++i) rotated = fmt::format("{}.{}.{}", path_, rotation_suffix(now), i);
  if (::rename(path_.c_str(), rotated.c_str()) != 0) return;  // keep writing to the big file
  ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  size_ = 0;
  // Keep max_files - 1 rotated files (the current file counts as one).
  std::vector<std::string> old;
  std::string prefix = fs::path(path_).filename().string() + ".";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(path_).parent_path(), ec)) {
    auto n = e.path().filename().string();
    if (n.starts_with(prefix)) old.push_back(e.path().string());
  }
  std::sort(old.begin(), old.end());
  int keep = std::max(0, o_.max_files - 1);
  for (size_t i = 0; i + keep < old.size(); ++i) ::unlink(old[i].c_str());
}

void CriLogWriter::emit(const CriRecord& r) {
  if (fd_ < 0) return;
  std::string line = format_cri_record(r);
  if (size_ > 0 && size_ + line.size() > o_.max_size_bytes) rotate(r.time);
  if (fd_ < 0) return;
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // disk full etc.: drop, as a log line is not worth blocking the loop
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  size_ += line.size();
}

void CriLogWriter::write(Stream s, std::string_view data, std::chrono::system_clock::time_point now) {
  std::string& pend = pending_[static_cast<int>(s)];
  while (!data.empty()) {
    auto nl = data.find('\n');
    if (nl == std::string_view::npos) {
      pend.append(data);
      data = {};
    } else {
      pend.append(data.substr(0, nl));
      data.remove_prefix(nl + 1);
      while (pend.size() > kMaxLineBytes) {
        emit(CriRecord{now, s, true, pend.substr(0, kMaxLineBytes)});
        pend.erase(0, kMaxLineBytes);
      }
      emit(CriRecord{now, s, false, std::move(pend)});
      pend.clear();
    }
    while (pend.size() > kMaxLineBytes) {
      emit(CriRecord{now, s, true, pend.substr(0, kMaxLineBytes)});
      pend.erase(0, kMaxLineBytes);
    }
  }
}

void CriLogWriter::close_stream(Stream s, std::chrono::system_clock::time_point now) {
  std::string& pend = pending_[static_cast<int>(s)];
  if (!pend.empty()) {
    emit(CriRecord{now, s, false, std::move(pend)});
    pend.clear();
  }
}

std::string render_record(const CriRecord& r, bool timestamps) {
  std::string out;
  if (timestamps) out = format_rfc3339_nano(r.time) + " ";
  out += r.content;
  if (!r.partial) out += "\n";
  return out;
}

std::expected<std::string, std::string> read_log_file(const std::string& path, const ReadOptions& o) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(fmt::format("open {}: {}", path, std::strerror(errno)));
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  // Group records into logical lines (P... F) so that tail counts lines, as the kubelet.
  std::vector<std::vector<CriRecord>> lines;
  std::vector<CriRecord> cur;
  size_t pos = 0;
  while (pos < data.size()) {
    auto nl = data.find('\n', pos);
    if (nl == std::string::npos) break;  // an incomplete last line is being written
    auto rec = parse_cri_record(std::string_view(data).substr(pos, nl - pos));
    pos = nl + 1;
    if (!rec) continue;
    if (o.since && rec->time < *o.since) continue;
    bool partial = rec->partial;
    cur.push_back(std::move(*rec));
    if (!partial) {
      lines.push_back(std::move(cur));
      cur.clear();
    }
  }
  size_t first = 0;
  if (o.tail_lines && *o.tail_lines >= 0 && static_cast<size_t>(*o.tail_lines) < lines.size())
    first = lines.size() - static_cast<size_t>(*o.tail_lines);
  std::string out;
  for (size_t i = first; i < lines.size(); ++i)
    for (size_t j = 0; j < lines[i].size(); ++j)
      out += render_record(lines[i][j], o.timestamps && j == 0);
  if (o.limit_bytes && *o.limit_bytes >= 0 && out.size() > static_cast<size_t>(*o.limit_bytes))
    out.resize(static_cast<size_t>(*o.limit_bytes));
  return out;
}

LogFollower::~LogFollower() {
  if (fd_ >= 0) ::close(fd_);
}

void LogFollower::seek_end() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st{};
  if (fd_ >= 0 && ::fstat(fd_, &st) == 0) {
    ino_ = st.st_ino;
    offset_ = static_cast<std::uint64_t>(st.st_size);
  }
}

std::vector<CriRecord> LogFollower::poll() {
  std::vector<CriRecord> out;
  auto drain = [&] {
    if (fd_ < 0) return;
    char buf[65536];
    for (;;) {
      ssize_t n = ::pread(fd_, buf, sizeof buf, static_cast<off_t>(offset_));
      if (n <= 0) break;
      offset_ += static_cast<std::uint64_t>(n);
      buf_.append(buf, static_cast<size_t>(n));
    }
    size_t pos = 0;
    for (;;) {
      auto nl = buf_.find('\n', pos);
      if (nl == std::string::npos) break;
      auto rec = parse_cri_record(std::string_view(buf_).substr(pos, nl - pos));
      if (rec) out.push_back(std::move(*rec));
      pos = nl + 1;
    }
    buf_.erase(0, pos);
  };
  drain();
  struct stat st{};
  if (::stat(path_.c_str(), &st) == 0 && (fd_ < 0 || st.st_ino != ino_)) {
    // Rotated (or created): finish the old file (done above), continue with the new one.
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ino_ = st.st_ino;
    offset_ = 0;
    buf_.clear();
    drain();
  }
  return out;
}

}  // namespace podwarp::noded::logs
