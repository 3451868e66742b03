// apiserver_bench: podwarp-control against raw etcd, in one run on one machine.
//
//  1. creates: N pod creates through the apiserver (HTTPS) on C keep-alive HTTP/1.1
//     connections, N more as C streams on one HTTP/2 connection (as client-go sends them),
//     against N raw etcd puts of the same bytes with the same concurrency, and N raw create
//     Txns of them (what a create asks of etcd: the ceiling for an apiserver that cost
//     nothing). The four are interleaved in R rounds (--rounds, default 5) of N/R each, in
//     an order that rotates from round to round, over connections opened once: the ratios
//     are the median of the rounds' ratios, so that the machine's changing load falls on
//     each side alike. Reports creates/s, p50/p99 latency and the ratios. Before the rounds,
//     for comparison: one phase of raw puts of the request body, one of create Txns with a
//     watch on their prefix, one of create Txns each sent alone (the etcd client groups
//     concurrent creates into one Txn, as podwarp-control's does: see EtcdClientOptions).
//  2. list: GET /api/v1/namespaces/bench/pods?resourceVersion=0 of the N HTTP/1.1 creates
//     from the watch cache (median).
//  3. watch fan-out: W watchers on one namespace; E configmap writes, one at a time, half of
//     them puts straight into etcd (delivery timed from the commit), half creates through the
//     apiserver (timed from the request being sent); p50/p99 of each.
//     Once with each watcher on its own HTTP/1.1 connection, once (unless --h2-conns 0) with
//     the W watchers as HTTP/2 streams over --h2-conns connections (default 10), the way
//     client-go multiplexes a process's watches on one connection. E is 400 by default: each
//     event is W samples, and with 100 events (the default until session 20) one event held
//     up by the machine was 2% of the samples and alone set the p99.
//
// It also reports the CPU time (user + system, from /proc/<pid>/stat) that podwarp-control,
// etcd and the benchmark client itself spent per create in each create phase, and with
// --threads the split of podwarp-control's CPU over its threads: on a shared 2-core machine
// CPU per create is a steadier measure than wall-clock rates. And how much of a create's mean
// latency is its etcd Txn, from podwarp-control's own etcd_request_duration_seconds (read on
// /metrics around each slice), next to a raw create Txn's.
//
// Usage: apiserver_bench [--pods N] [--concurrency C] [--watchers W] [--events E]
//                        [--h2-conns H] [--rounds R] [--control PATH] [--threads] [--etcd-tcp]
//                        [--etcd-arg ARG]...
// Both podwarp-control and the raw peer reach etcd over its unix socket (--etcd-tcp: over
// loopback TCP), the same way, so the ratio stays fair.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <nghttp2/nghttp2.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "podwarp/json.h"
#include "storage/etcd_client.h"
#include "storage/etcd_process.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace podwarp;

namespace {

struct Stats {
  double seconds = 0;
  std::vector<double> latencies_ms;
  double rate() const { return static_cast<double>(latencies_ms.size()) / seconds; }
  double pct(double p) {
    if (latencies_ms.empty()) return 0;
    std::sort(latencies_ms.begin(), latencies_ms.end());
    std::size_t i = static_cast<std::size_t>(p * static_cast<double>(latencies_ms.size() - 1));
    return latencies_ms[i];
  }
};

// The completion of a benchmark coroutine: a phase that throws says why (a detached one
// would end silently and leave a truncated phase looking like a slow one).
auto reported(const char* what) {
  return [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      fmt::print(stderr, "{} stopped: {}\n", what, x.what());
    }
  };
}

std::string pod_json(std::string_view ns, std::string_view name) {
  json::object pod{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", name}, {"namespace", ns},
                                {"labels", json::object{{"app", "bench"}, {"tier", "load"}}}}},
      {"spec",
       json::object{{"containers",
                     json::array{json::object{
                         {"name", "c"},
                         {"image", "registry.local/busybox:1.36"},
                         {"command", json::array{"sleep", "3600"}},
                         {"resources", json::object{{"requests", json::object{{"cpu", "100m"},
                                                                             {"memory", "64Mi"}}}}},
                         {"env", json::array{json::object{{"name", "A"}, {"value", "1"}}}}}}}}}};
  return json::serialize(pod);
}

// CPU time (user + system) in ms of a process or thread from its /proc stat file; -1 if
// unreadable. `comm` receives the name when given.
double stat_cpu_ms(const std::string& path, std::string* comm = nullptr) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return -1;
  auto open = line.find('(');
  auto close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return -1;
  if (comm) *comm = line.substr(open + 1, close - open - 1);
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  // After the name: state is field 3; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double process_cpu_ms(pid_t pid) { return stat_cpu_ms(fmt::format("/proc/{}/stat", pid)); }

double self_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

// Per-thread CPU ms of a process: tid -> (name, ms).
std::map<int, std::pair<std::string, double>> thread_cpu_ms(pid_t pid) {
  std::map<int, std::pair<std::string, double>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
    std::string comm;
    double ms = stat_cpu_ms((e.path() / "stat").string(), &comm);
    if (ms >= 0) out[std::atoi(e.path().filename().c_str())] = {comm, ms};
  }
  return out;
}

// CPU spent by podwarp-control, etcd and this process over one phase.
struct CpuSample {
  double control = 0, etcd = 0, self = 0;
  static CpuSample take(pid_t control, pid_t etcd) {
    return {control > 0 ? process_cpu_ms(control) : 0, process_cpu_ms(etcd), self_cpu_ms()};
  }
};

// The apiserver under test, as a child process.
struct Control {
  pid_t pid = 0;
  int port = 0;
  fs::path data_dir;
  ~Control() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
    std::error_code ec;
    if (!data_dir.empty()) fs::remove_all(data_dir, ec);
  }
};

bool start_control(Control& c, const std::string& binary, const std::string& etcd) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid == 0) {
    // Ends with the benchmark, however it ends (a crash, SIGPIPE from `| head`, ^C).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(fds[1], 1);
    close(fds[0]);
    std::string log = (c.data_dir / "control.log").string();
    FILE* f = std::fopen(log.c_str(), "w");
    if (f) dup2(fileno(f), 2);
    execl(binary.c_str(), binary.c_str(), "--etcd-servers", etcd.c_str(), "--data-dir",
          c.data_dir.c_str(), "--secure-port", "0", "--components", "apiserver",
          "--log-level", "warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  c.pid = pid;
  std::string out;
  char buf[256];
  while (out.find('\n') == std::string::npos) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  auto at = out.find("serving on https://127.0.0.1:");
  if (at == std::string::npos) return false;
  c.port = std::atoi(out.c_str() + at + std::strlen("serving on https://127.0.0.1:"));
  return c.port > 0;
}

asio::ssl::context client_tls(const fs::path& pki) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file((pki / "ca.crt").string());
  ctx.use_certificate_chain_file((pki / "admin.crt").string());
  ctx.use_private_key_file((pki / "admin.key").string(), asio::ssl::context::pem);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

using Tls = beast::ssl_stream<beast::tcp_stream>;

// A TLS connection to the apiserver; with `h2` it offers only "h2" in ALPN.
asio::awaitable<std::unique_ptr<Tls>> connect(asio::ssl::context& ctx, int port, bool h2 = false) {
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_unique<Tls>(ex, ctx);
  if (h2) SSL_set_alpn_protos(s->native_handle(), reinterpret_cast<const unsigned char*>("\x02h2"), 3);
  co_await beast::get_lowest_layer(*s).async_connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      asio::use_awaitable);
  beast::get_lowest_layer(*s).socket().set_option(asio::ip::tcp::no_delay(true));
  co_await s->async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
  co_return s;
}

asio::awaitable<http::response<http::string_body>> roundtrip(Tls& s, http::verb verb,
                                                             std::string target, std::string body) {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json");
  req.keep_alive(true);
  req.body() = std::move(body);
  req.prepare_payload();
  co_await http::async_write(s, req, asio::use_awaitable);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1ull << 30);
  co_await http::async_read(s, buf, parser, asio::use_awaitable);
  co_return parser.release();
}

// podwarp-control's etcd_request_duration_seconds{operation="create",type="pods"}: its sum
// (seconds) and count, from /metrics.
asio::awaitable<std::pair<double, double>> etcd_pod_creates(Tls& s) {
  auto res = co_await roundtrip(s, http::verb::get, "/metrics", "");
  const std::string& text = res.body();
  auto value = [&](std::string_view name) {
    const std::string head = fmt::format("{}{{operation=\"create\",type=\"pods\"}} ", name);
    const std::size_t at = text.find(head);
    return at == std::string::npos ? 0.0 : std::strtod(text.c_str() + at + head.size(), nullptr);
  };
  co_return std::pair{value("etcd_request_duration_seconds_sum"),
                      value("etcd_request_duration_seconds_count")};
}

// The watchers' receipts of events named "ev-<i>": (i, when read).
struct Deliveries {
  std::size_t events = 0;
  std::vector<std::pair<std::size_t, Clock::time_point>> got;
  // Consumes complete lines of `pending`; returns how many events they held.
  int take_lines(std::string& pending, Clock::time_point now) {
    int n = 0;
    std::size_t start = 0, pos;
    while ((pos = pending.find('\n', start)) != std::string::npos) {
      std::string_view line(pending.data() + start, pos - start);
      start = pos + 1;
      auto at = line.find("\"name\":\"ev-");
      if (at == std::string_view::npos) continue;
      int idx = std::atoi(line.data() + at + 11);
      if (idx >= 0 && static_cast<std::size_t>(idx) < events) {
        got.emplace_back(static_cast<std::size_t>(idx), now);
        ++n;
      }
    }
    pending.erase(0, start);
    return n;
  }
};

// Delivery delays of one fan-out run, in ms. Events alternate between
//  - creates through the apiserver: from the create request being sent (so including the
//    apiserver's create and the etcd write), and
//  - puts of a ConfigMap straight into etcd by a raw etcd client, as another apiserver would
//    write it: from the put's response (the commit); this is the event delivery itself, from
//    etcd's watch through the watch cache to every watcher.
struct FanOut {
  std::vector<double> from_sent, from_commit;
  double control_cpu_ms = 0, client_cpu_ms = 0;  // per event, while the events were sent
};

// A minimal HTTP/2 client (nghttp2) over one TLS connection, with client-go's flow-control
// windows: 4 MiB per stream, 1 GiB per connection.
class H2Client {
 public:
  // `state` is the callbacks' user data.
  H2Client(nghttp2_session_callbacks* cbs, void* state) {
    nghttp2_session_client_new(&session_, cbs, state);
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 4 << 20}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 1 << 30);
  }
  ~H2Client() { nghttp2_session_del(session_); }
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;
  nghttp2_session* session() const { return session_; }

  // Submits a request; `body` (may be null) must live until its stream closes.
  std::int32_t request(const char* method, const std::string& path, const std::string* body) {
    auto nv = [](const char* k, std::string_view v) {
      return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(k)),
                        reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())),
                        std::strlen(k), v.size(), NGHTTP2_NV_FLAG_NONE};
    };
    const nghttp2_nv hdrs[] = {nv(":method", method), nv(":scheme", "https"),
                               nv(":authority", "127.0.0.1"), nv(":path", path),
                               nv("accept", "application/json"),
                               nv("content-type", "application/json")};
    if (body == nullptr) return nghttp2_submit_request(session_, nullptr, hdrs, 5, nullptr, nullptr);
    nghttp2_data_provider provider;
    provider.source.ptr = const_cast<std::string*>(body);
    provider.read_callback = [](nghttp2_session* session, std::int32_t id, std::uint8_t* buf,
                                std::size_t length, std::uint32_t* flags, nghttp2_data_source* src,
                                void*) -> ssize_t {
      auto* b = static_cast<std::string*>(src->ptr);
      auto* sent = static_cast<std::size_t*>(nghttp2_session_get_stream_user_data(session, id));
      const std::size_t n = std::min(length, b->size() - *sent);
      std::memcpy(buf, b->data() + *sent, n);
      *sent += n;
      if (*sent == b->size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    sent_.push_back(std::make_unique<std::size_t>(0));
    return nghttp2_submit_request(session_, nullptr, hdrs, 6, &provider, sent_.back().get());
  }

  // Writes what the session has to send, then reads, until done() holds. Calls each() after
  // every read, before the next write (so requests it submits are sent at once: calling it
  // before the read left them unsent until another response came, and when none was left in
  // flight the connection stalled until the server's idle timeout).
  asio::awaitable<void> pump(Tls& s, const std::function<bool()>& done,
                             const std::function<void()>& each = {}) {
    std::string out;
    std::array<std::uint8_t, 64 * 1024> buf;
    while (!done()) {
      out.clear();
      const std::uint8_t* data = nullptr;
      ssize_t n;
      while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
      }
      if (!out.empty()) co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
      if (done()) break;
      std::size_t got = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      if (const ssize_t rv = nghttp2_session_mem_recv(session_, buf.data(), got); rv < 0) {
        throw std::runtime_error(fmt::format("HTTP/2: {}", nghttp2_strerror(static_cast<int>(rv))));
      }
      // Before the next send: what each() submits goes out before the next read blocks.
      if (each) each();
    }
  }

 private:
  nghttp2_session* session_ = nullptr;
  std::deque<std::unique_ptr<std::size_t>> sent_;  // bytes of each request body sent
};

// One HTTP/2 connection carrying `streams` watches of `target`. Calls ready() once every
// stream has its response header; ends when each stream got `events` events.
asio::awaitable<void> h2_watch(asio::ssl::context& ctx, int port, int streams, std::string target,
                               int events, Deliveries& d, std::function<void()> ready) {
  auto s = co_await connect(ctx, port, true);
  struct State {
    Deliveries* d;
    std::vector<std::pair<std::string, int>> pending;  // by stream id / 2: bytes, events seen
    int headers = 0, finished = 0, events = 0;
  } st{&d, std::vector<std::pair<std::string, int>>(static_cast<std::size_t>(streams) + 1), 0, 0,
         events};
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cbs, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data,
              std::size_t len, void* p) -> int {
        auto* st = static_cast<State*>(p);
        auto& [bytes, got] = st->pending[static_cast<std::size_t>(id) / 2];  // ids 1, 3, 5, ...
        bytes.append(reinterpret_cast<const char*>(data), len);
        const int before = got;
        got += st->d->take_lines(bytes, Clock::now());
        if (before < st->events && got >= st->events) ++st->finished;
        return 0;
      });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* f, void* p) -> int {
        if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
          ++static_cast<State*>(p)->headers;
        }
        return 0;
      });
  H2Client client(cbs, &st);
  nghttp2_session_callbacks_del(cbs);
  for (int i = 0; i < streams; ++i) client.request("GET", target, nullptr);
  bool signalled = false;
  co_await client.pump(*s, [&] { return st.finished >= streams; }, [&] {
    if (!signalled && st.headers == streams) {
      signalled = true;
      ready();
    }
  });
}

// Pod creates over one HTTP/2 connection, `concurrency` streams in flight: how client-go
// sends a process's requests. One connection and session for all of run()'s slices.
class H2Creates {
 public:
  explicit H2Creates(int concurrency) : concurrency_(concurrency) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* name,
                std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                void* p) -> int {
          if (namelen == 7 && std::memcmp(name, ":status", 7) == 0) {
            static_cast<State*>(p)->status[f->hd.stream_id] =
                std::atoi(std::string(reinterpret_cast<const char*>(value), valuelen).c_str());
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, std::int32_t id, std::uint32_t, void* p) -> int {
          static_cast<State*>(p)->closed.push_back(id);
          return 0;
        });
    client_ = std::make_unique<H2Client>(cbs, &st_);
    nghttp2_session_callbacks_del(cbs);
  }

  asio::awaitable<void> open(asio::ssl::context& ctx, int port) {
    s_ = co_await connect(ctx, port, true);
  }

  // Creates pods lo..hi-1 in namespace bench-h2.
  asio::awaitable<void> run(int lo, int hi, Stats& stats, int& failures) {
    int next = lo, done = lo;
    auto submit = [&] {
      const int i = next++;
      auto body = std::make_unique<std::string>(pod_json("bench-h2", fmt::format("pod-{}", i)));
      const auto start = Clock::now();
      const std::int32_t id = client_->request("POST", "/api/v1/namespaces/bench-h2/pods", body.get());
      st_.open[id] = {start, std::move(body)};
    };
    while (next < std::min(lo + concurrency_, hi)) submit();
    // A watchdog: no stream closed for 10 s is a stall; it is reported (with what is open,
    // and whether this side still has output) rather than passing as a slow phase.
    bool finished = false;
    asio::steady_timer t(co_await asio::this_coro::executor);
    asio::co_spawn(co_await asio::this_coro::executor, [&]() -> asio::awaitable<void> {
      int last = -1, still = 0;
      boost::system::error_code ec;
      while (!finished) {
        t.expires_after(std::chrono::seconds(2));
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (finished) break;
        if (done != last) {
          last = done;
          still = 0;
        } else if (++still == 5) {
          std::string ids;
          for (const auto& open : st_.open) ids += fmt::format(" {}", open.first);
          fmt::print(stderr, "h2 creates: no stream closed for 10 s: {} done, {} submitted, open:{}; "
                     "unsent output: {}\n", done, next, ids,
                     nghttp2_session_want_write(client_->session()) != 0);
        }
      }
    }, reported("the HTTP/2 creates watchdog"));
    struct Finish {
      bool& f;
      asio::steady_timer& t;
      ~Finish() {
        f = true;
        t.cancel();
      }
    } finish{finished, t};
    co_await client_->pump(*s_, [&] { return done >= hi; }, [&] {
      for (std::int32_t id : st_.closed) {
        auto it = st_.open.find(id);
        if (it == st_.open.end()) continue;
        stats.latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - it->second.first).count());
        st_.open.erase(it);
        if (st_.status[id] != 201) ++failures;
        st_.status.erase(id);
        ++done;
        if (next < hi) submit();
      }
      st_.closed.clear();
    });
  }

 private:
  struct State {
    // Open streams: when sent, and the body (which nghttp2 reads until the stream closes).
    std::map<std::int32_t, std::pair<Clock::time_point, std::unique_ptr<std::string>>> open;
    std::map<std::int32_t, int> status;
    std::vector<std::int32_t> closed;
  } st_;
  int concurrency_;
  std::unique_ptr<Tls> s_;
  std::unique_ptr<H2Client> client_;
};

// Runs body(0..n-1) as n coroutines and returns when all have; rethrows the first failure.
asio::awaitable<void> run_workers(int n, std::function<asio::awaitable<void>(int)> body) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  int left = n;
  std::exception_ptr first;
  for (int w = 0; w < n; ++w) {
    asio::co_spawn(ex, body(w), [&](std::exception_ptr e) {
      if (e && !first) first = e;
      if (--left == 0) all_done.cancel();
    });
  }
  boost::system::error_code ec;
  if (left > 0) co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (first) std::rethrow_exception(first);
}

// One kind of request over all its slices: latencies, time, the CPU of podwarp-control,
// etcd and this client (and with --threads of podwarp-control's threads), and each slice's
// rate.
struct Measured {
  Stats stats;
  CpuSample cpu;
  // podwarp-control's own etcd_request_duration_seconds{operation="create",type="pods"} over
  // this measure's slices: seconds and requests.
  double etcd_create_seconds = 0, etcd_creates = 0;
  std::vector<double> rates;
  std::map<int, std::pair<std::string, double>> threads;  // tid -> (name, ms)
  double count() const { return static_cast<double>(stats.latencies_ms.size()); }
  double per_op(double CpuSample::*what) const { return count() > 0 ? cpu.*what / count() : 0; }
};

// Times one slice into a Measured: made before the slice, end() after it.
class Slice {
 public:
  Slice(Measured& m, pid_t control, pid_t etcd, bool threads)
      : m_(m), control_(control), etcd_(etcd), threads_(threads),
        done_before_(m.stats.latencies_ms.size()) {
    if (threads_) threads0_ = thread_cpu_ms(control_);
    cpu0_ = CpuSample::take(control_, etcd_);
    t0_ = Clock::now();
  }
  void end() {
    const double secs = std::chrono::duration<double>(Clock::now() - t0_).count();
    const CpuSample cpu1 = CpuSample::take(control_, etcd_);
    m_.cpu.control += cpu1.control - cpu0_.control;
    m_.cpu.etcd += cpu1.etcd - cpu0_.etcd;
    m_.cpu.self += cpu1.self - cpu0_.self;
    m_.stats.seconds += secs;
    m_.rates.push_back(static_cast<double>(m_.stats.latencies_ms.size() - done_before_) / secs);
    if (!threads_) return;
    for (const auto& [tid, v] : thread_cpu_ms(control_)) {
      auto it = threads0_.find(tid);
      auto& row = m_.threads[tid];
      row.first = v.first;
      row.second += v.second - (it == threads0_.end() ? 0.0 : it->second.second);
    }
  }

 private:
  Measured& m_;
  pid_t control_, etcd_;
  bool threads_;
  std::size_t done_before_;
  CpuSample cpu0_;
  std::map<int, std::pair<std::string, double>> threads0_;
  Clock::time_point t0_;
};

// "median (min–max)" of a's slice rates over b's, slice by slice.
std::string ratio_of(const Measured& a, const Measured& b) {
  std::vector<double> r;
  for (std::size_t i = 0; i < a.rates.size() && i < b.rates.size(); ++i) {
    r.push_back(a.rates[i] / b.rates[i]);
  }
  if (r.empty()) return "-";
  std::sort(r.begin(), r.end());
  if (r.size() == 1) return fmt::format("{:.2f}", r[0]);
  return fmt::format("{:.2f} ({:.2f}–{:.2f})", r[r.size() / 2], r.front(), r.back());
}

// W watchers of one namespace (HTTP/1.1 connections, or HTTP/2 streams spread over
// `h2_conns` connections); E configmap writes, one at a time; the delay of each delivery as
// FanOut says.
FanOut fan_out(asio::ssl::context& tls, int port, pid_t control, const std::string& etcd,
               const std::string& ns, int watchers, int events, int h2_conns) {
  Deliveries d;
  d.events = static_cast<std::size_t>(events);
  d.got.reserve(static_cast<std::size_t>(events) * static_cast<std::size_t>(watchers));
  std::vector<Clock::time_point> sent(d.events), committed(d.events);
  asio::io_context io;
  int ready = 0;
  const int clients = h2_conns > 0 ? h2_conns : watchers;
  std::promise<void> all_ready;
  auto on_ready = [&] {
    if (++ready == clients) all_ready.set_value();
  };
  const std::string target =
      fmt::format("/api/v1/namespaces/{}/configmaps?watch=true&resourceVersion=0&timeoutSeconds=120", ns);
  for (int c = 0; c < clients; ++c) {
    if (h2_conns > 0) {
      const int streams = watchers / h2_conns + (c < watchers % h2_conns ? 1 : 0);
      asio::co_spawn(io, h2_watch(tls, port, streams, target, events, d, on_ready),
                     reported("an HTTP/2 watch connection"));
      continue;
    }
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto s = co_await connect(tls, port);
      http::request<http::empty_body> req{http::verb::get, target, 11};
      req.set(http::field::host, "127.0.0.1");
      co_await http::async_write(*s, req, asio::use_awaitable);
      beast::flat_buffer buf;
      http::response_parser<http::buffer_body> p;
      p.body_limit(boost::none);
      co_await http::async_read_header(*s, buf, p, asio::use_awaitable);
      on_ready();
      char chunk[8192];
      std::string pending;
      int got = 0;
      while (got < events && !p.is_done()) {
        p.get().body().data = chunk;
        p.get().body().size = sizeof chunk;
        boost::system::error_code ec;
        co_await http::async_read_some(*s, buf, p, asio::redirect_error(asio::use_awaitable, ec));
        if (ec && ec != http::error::need_buffer) co_return;
        pending.append(chunk, sizeof chunk - p.get().body().size);
        got += d.take_lines(pending, Clock::now());
      }
    }, reported("an HTTP/1.1 watcher"));
  }
  // The writes come from a thread of their own, so that the time their response is read is
  // not held up behind the watchers' reads.
  std::vector<bool> direct(d.events);
  CpuSample cpu0, cpu1;
  std::thread creator([&, ready_future = all_ready.get_future()]() mutable {
    ready_future.wait();
    cpu0 = CpuSample::take(control, 0);
    asio::io_context cio;
    auto raw = storage::make_etcd_client(cio.get_executor(), {etcd});
    asio::co_spawn(cio, [&]() -> asio::awaitable<void> {
      auto s = co_await connect(tls, port);
      const std::string path = fmt::format("/api/v1/namespaces/{}/configmaps", ns);
      for (std::size_t i = 0; i < d.events; ++i) {
        direct[i] = i % 2 == 1;
        const std::string name = fmt::format("ev-{}", i);
        if (direct[i]) {
          std::string cm = fmt::format(
              R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{}","namespace":"{}","uid":"00000000-0000-4000-8000-{:012}","creationTimestamp":"2026-01-01T00:00:00Z"}},"data":{{"k":"v"}}}})",
              name, ns, i);
          const std::string key = fmt::format("/registry/configmaps/{}/{}", ns, name);
          sent[i] = Clock::now();
          auto put = raw->put(key, cm);
          auto r = co_await std::move(put);
          if (!r) throw std::runtime_error(r.error().message);
        } else {
          std::string cm = fmt::format(
              R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{}"}},"data":{{"k":"v"}}}})", name);
          sent[i] = Clock::now();
          co_await roundtrip(*s, http::verb::post, path, cm);
        }
        committed[i] = Clock::now();
        // Let each event drain before the next, so each measures one event's fan-out.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }, [&, report = reported("the fan-out writes")](std::exception_ptr e) {
      report(e);
      raw.reset();  // closes its connection, so that cio.run() returns
    });
    cio.run();
    cpu1 = CpuSample::take(control, 0);
  });
  io.run();
  creator.join();
  FanOut out;
  out.control_cpu_ms = (cpu1.control - cpu0.control) / static_cast<double>(events);
  out.client_cpu_ms = (cpu1.self - cpu0.self) / static_cast<double>(events);
  auto ms = [](Clock::duration x) { return std::chrono::duration<double, std::milli>(x).count(); };
  for (const auto& [i, at] : d.got) {
    if (direct[i]) {
      out.from_commit.push_back(std::max(0.0, ms(at - committed[i])));
    } else {
      out.from_sent.push_back(ms(at - sent[i]));
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 10000;
  int concurrency = 16;
  int watchers = 1000;
  int events = 400;
  int h2_conns = 10;
  int rounds = 5;
  bool h1_fanout = true;
  bool threads = false;
  bool etcd_unix = true;
  std::string control_bin = (fs::path(argv[0]).parent_path() / ".." / "bin" / "podwarp-control").string();
  storage::EtcdOptions etcd_opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fmt::print(
          "usage: apiserver_bench [--pods N (10000)] [--concurrency C (16)] [--watchers W (1000)]\n"
          "                       [--events E (400)] [--h2-conns H (10)] [--rounds R (5)]\n"
          "                       [--control PATH] [--threads]\n"
          "                       [--etcd-tcp] [--etcd-arg ARG]...\n"
          "Creates through podwarp-control vs raw etcd puts, list from the watch cache, watch\n"
          "fan-out; CPU ms per create of podwarp-control, etcd and this client.\n"
          "--rounds: the creates and their raw peers interleaved in R rounds of N/R each.\n"
          "--h2-conns: the watchers again as HTTP/2 streams over H connections (0: skip).\n"
          "--no-h1-fanout: skip the fan-out with one HTTP/1.1 connection per watcher.\n"
          "--threads: also podwarp-control's CPU per thread during the creates.\n"
          "--etcd-tcp: both sides reach etcd over loopback TCP instead of its unix socket.\n"
          "--etcd-arg: one more etcd flag (repeatable; after podwarp's own, so it wins), e.g.\n"
          "  --etcd-arg --backend-batch-limit=0 for etcd's default batch.\n");
      return 0;
    }
    if (a == "--threads") {
      threads = true;
      continue;
    }
    if (a == "--etcd-tcp") {
      etcd_unix = false;
      continue;
    }
    if (a == "--no-h1-fanout") {
      h1_fanout = false;
      continue;
    }
    if (i + 1 >= argc) break;
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
    if (a == "--concurrency") concurrency = std::atoi(argv[i + 1]);
    if (a == "--watchers") watchers = std::atoi(argv[i + 1]);
    if (a == "--events") events = std::atoi(argv[i + 1]);
    if (a == "--h2-conns") h2_conns = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::max(1, std::atoi(argv[i + 1]));
    if (a == "--control") control_bin = argv[i + 1];
    if (a == "--etcd-arg") etcd_opts.extra_args.emplace_back(argv[i + 1]);
    ++i;
  }
  etcd_opts.client_unix_socket = etcd_unix;
  auto etcd = storage::EtcdProcess::start(etcd_opts);
  if (!etcd) {
    fmt::print(stderr, "etcd: {}\n", etcd.error().what());
    return 1;
  }
  // Both sides talk to etcd the same way: over its unix socket (default) or loopback TCP.
  const std::string etcd_endpoint = etcd_unix ? (*etcd)->unix_endpoint() : (*etcd)->endpoint();

  // 1a. The peer: raw etcd puts of the same bytes as the apiserver stores for each create
  // (the pod as created: defaulted, with uid, timestamp and service account volume), then
  // the same bytes as create Txns (if create_revision == 0 then put: what an apiserver's
  // create asks of etcd), which is the rate an apiserver that cost nothing could reach;
  // then those Txns again with one watch on their prefix, as an apiserver's cache keeps one
  // (etcd sends every event to it). For comparison, also raw puts of the request body,
  // which is ~5 times smaller than what is stored.
  enum class Raw { kPutRequestBody, kPut, kTxn, kWatchedTxn, kTxnAlone };
  std::string stored;  // what the apiserver stored for a probe pod, read back from etcd
  // Raw requests lo..hi-1 of one kind through `client`, `concurrency` in flight.
  auto raw_slice = [&](storage::EtcdClient& client, Raw mode, int lo,
                       int hi, Stats& stats) -> asio::awaitable<void> {
    const std::string prefix = mode == Raw::kPutRequestBody ? "/raw-body/"
                               : mode == Raw::kPut          ? "/raw/"
                               : mode == Raw::kTxn          ? "/raw-txn/"
                               : mode == Raw::kTxnAlone     ? "/raw-txn1/"
                                                            : "/raw-txnw/";
    int next = lo;
    std::function<asio::awaitable<void>(int)> worker = [&](int) -> asio::awaitable<void> {
      while (true) {
        int i = next++;
        if (i >= hi) co_return;
        std::string pod = mode == Raw::kPutRequestBody ? pod_json("bench", fmt::format("pod-{}", i)) : stored;
        std::string key = fmt::format("{}pods/bench/pod-{}", prefix, i);
        auto s = Clock::now();
        if (mode == Raw::kTxn || mode == Raw::kWatchedTxn || mode == Raw::kTxnAlone) {
          auto r = co_await client.create(std::move(key), std::move(pod));
          if (!r) throw std::runtime_error(r.error().message);
        } else {
          auto r = co_await client.put(std::move(key), std::move(pod));
          if (!r) throw std::runtime_error(r.error().message);
        }
        stats.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
      }
    };
    auto all = run_workers(concurrency, std::move(worker));  // (g++ 12: no temporaries
    co_await std::move(all);                                  //  in a co_await)
  };
  // One whole phase of raw requests on a client of its own (with a watch on their prefix
  // for kWatchedTxn; without the client's group commit for kTxnAlone: each create its own
  // Txn, as upstream's apiserver sends them).
  auto raw_phase = [&](Raw mode, Measured& m) {
    asio::io_context io;
    const storage::EtcdClientOptions opts{.create_txns_in_flight = mode == Raw::kTxnAlone ? 0 : 1};
    auto client = storage::make_etcd_client(io.get_executor(), {etcd_endpoint}, opts);
    std::size_t watched = 0;
    std::unique_ptr<storage::EtcdClient::Watch> watch;
    if (mode == Raw::kWatchedTxn) {
      watch = client->watch(
          "/raw-txnw/", 0, /*prev_kv=*/false,
          [&](std::vector<storage::WatchEvent> events, std::int64_t) { watched += events.size(); },
          [](storage::StorageError e) { fmt::print(stderr, "raw watch: {}\n", e.message); });
    }
    Slice slice(m, 0, (*etcd)->pid(), false);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto phase = raw_slice(*client, mode, 0, pods, m.stats);
      co_await std::move(phase);
    }, [&, report = reported("raw etcd requests")](std::exception_ptr e) {
      report(e);
      // Closes the client's connection, so that io.run() returns.
      watch.reset();
      client.reset();
    });
    io.run();
    slice.end();
    if (mode == Raw::kWatchedTxn && watched == 0) fmt::print(stderr, "raw watch: saw no event\n");
  };
  Measured raw, raw_body, raw_txn, raw_txnw, raw_txn1, api, api_h2;

  Control control;
  control.data_dir = fs::temp_directory_path() / fmt::format("podwarp-bench-{}", getpid());
  fs::create_directories(control.data_dir);
  if (!start_control(control, control_bin, etcd_endpoint)) {
    fmt::print(stderr, "podwarp-control did not start (see {}/control.log)\n", control.data_dir.string());
    return 1;
  }
  asio::ssl::context tls = client_tls(control.data_dir / "pki");

  // The namespaces, and one probe pod whose stored bytes the raw phases write.
  {
    asio::io_context io;
    auto client = storage::make_etcd_client(io.get_executor(), {etcd_endpoint});
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto s = co_await connect(tls, control.port);
      for (const char* ns : {"bench-probe", "bench", "bench-h2", "fanout", "fanout-h2"}) {
        co_await roundtrip(*s, http::verb::post, "/api/v1/namespaces",
                           fmt::format(R"({{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{}"}}}})", ns));
      }
      // The namespace's default service account (which admission mounts) comes from the
      // controllers: wait for it, as the creates below find it.
      auto ex = co_await asio::this_coro::executor;
      for (int i = 0; i < 100; ++i) {
        auto sa = co_await roundtrip(*s, http::verb::get, "/api/v1/namespaces/bench-probe/serviceaccounts/default", "");
        if (sa.result_int() == 200) break;
        asio::steady_timer pause(ex, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::use_awaitable);
      }
      auto created = co_await roundtrip(*s, http::verb::post, "/api/v1/namespaces/bench-probe/pods",
                                        pod_json("bench-probe", "pod-probe"));
      if (created.result_int() != 201) throw std::runtime_error("probe pod: " + created.body());
      auto got = co_await client->range("/registry/pods/bench-probe/pod-probe");
      if (!got || got->kvs.empty()) throw std::runtime_error("probe pod not in etcd");
      stored = got->kvs[0].value;
      client.reset();
      co_await roundtrip(*s, http::verb::delete_, "/api/v1/namespaces/bench-probe/pods/pod-probe?gracePeriodSeconds=0", "");
    }, reported("the probe pod"));
    io.run();
    if (stored.empty()) return 1;
  }
  // For comparison, whole phases: raw puts of the request body, and create Txns of the
  // stored bytes with one watch on their prefix.
  raw_phase(Raw::kPutRequestBody, raw_body);
  raw_phase(Raw::kWatchedTxn, raw_txnw);
  raw_phase(Raw::kTxnAlone, raw_txn1);

  // 1. The creates against their peers, in `rounds` rounds of pods/rounds each: raw puts of
  // the stored bytes, raw create Txns of them, creates through the apiserver on C HTTP/1.1
  // connections and as C streams on one HTTP/2 connection, in an order that rotates from
  // round to round. Interleaved so that the machine's changing load falls on each alike:
  // the ratios are the median of the rounds' ratios.
  int failures = 0, h2_failures = 0;
  {
    asio::io_context io;
    auto client = storage::make_etcd_client(io.get_executor(), {etcd_endpoint});
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      std::vector<std::unique_ptr<Tls>> conns;
      for (int w = 0; w < concurrency; ++w) conns.push_back(co_await connect(tls, control.port));
      H2Creates h2(concurrency);
      co_await h2.open(tls, control.port);
      for (int round = 0; round < rounds; ++round) {
        const int lo = pods * round / rounds, hi = pods * (round + 1) / rounds;
        for (int k = 0; k < 4; ++k) {
          switch ((round + k) % 4) {
            case 0:
            case 1: {
              const bool txn = (round + k) % 4 == 1;
              Measured& m = txn ? raw_txn : raw;
              Slice slice(m, 0, (*etcd)->pid(), false);
              auto requests = raw_slice(*client, txn ? Raw::kTxn : Raw::kPut, lo, hi, m.stats);
              co_await std::move(requests);
              slice.end();
              break;
            }
            case 2: {
              auto scrape = etcd_pod_creates(*conns[0]);
              const auto etcd_before = co_await std::move(scrape);
              Slice slice(api, control.pid, (*etcd)->pid(), threads);
              int next = lo;
              std::function<asio::awaitable<void>(int)> worker = [&](int w) -> asio::awaitable<void> {
                while (true) {
                  int i = next++;
                  if (i >= hi) co_return;
                  std::string pod = pod_json("bench", fmt::format("pod-{}", i));
                  auto st = Clock::now();
                  auto res = co_await roundtrip(*conns[w], http::verb::post, "/api/v1/namespaces/bench/pods", pod);
                  if (res.result_int() != 201) ++failures;
                  api.stats.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - st).count());
                }
              };
              auto all = run_workers(concurrency, std::move(worker));
              co_await std::move(all);
              slice.end();
              auto rescrape = etcd_pod_creates(*conns[0]);
              const auto etcd_after = co_await std::move(rescrape);
              api.etcd_create_seconds += etcd_after.first - etcd_before.first;
              api.etcd_creates += etcd_after.second - etcd_before.second;
              break;
            }
            default: {
              auto scrape = etcd_pod_creates(*conns[0]);
              const auto etcd_before = co_await std::move(scrape);
              Slice slice(api_h2, control.pid, (*etcd)->pid(), threads);
              auto creates = h2.run(lo, hi, api_h2.stats, h2_failures);
              co_await std::move(creates);
              slice.end();
              auto rescrape = etcd_pod_creates(*conns[0]);
              const auto etcd_after = co_await std::move(rescrape);
              api_h2.etcd_create_seconds += etcd_after.first - etcd_before.first;
              api_h2.etcd_creates += etcd_after.second - etcd_before.second;
              break;
            }
          }
        }
      }
      client.reset();
    }, reported("the create rounds"));
    io.run();
    if (failures > 0) fmt::print(stderr, "{} creates failed\n", failures);
    if (h2_failures > 0) fmt::print(stderr, "{} creates over HTTP/2 failed\n", h2_failures);
  }

  // 2. List the pods of one namespace (the HTTP/1.1 creates) from the watch cache.
  std::vector<double> list_ms;
  std::size_t list_items = 0;
  {
    asio::io_context io;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto s = co_await connect(tls, control.port);
      for (int i = 0; i < 7; ++i) {
        auto st = Clock::now();
        auto res = co_await roundtrip(*s, http::verb::get, "/api/v1/namespaces/bench/pods?resourceVersion=0", "");
        list_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - st).count());
        if (i == 0) {
          auto v = parse_json(res.body());
          if (v) list_items = v->at("items").as_array().size();
        }
      }
    }, reported("the list requests"));
    io.run();
  }
  std::sort(list_ms.begin(), list_ms.end());

  // 3. Watch fan-out: W HTTP/1.1 connections, then W HTTP/2 streams over a few connections.
  const FanOut fan_h1 = h1_fanout ? fan_out(tls, control.port, control.pid, etcd_endpoint, "fanout", watchers, events, 0) : FanOut{};
  const FanOut fan_h2 =
      h2_conns > 0 ? fan_out(tls, control.port, control.pid, etcd_endpoint, "fanout-h2", watchers, events, h2_conns) : FanOut{};

  fmt::print("apiserver_bench: pods={} concurrency={} watchers={} events={} etcd over {}\n", pods,
             concurrency, watchers, events, etcd_unix ? "unix socket" : "tcp");
  fmt::print("| measure | podwarp | peer (raw etcd) | ratio |\n|---|---|---|---|\n");
  fmt::print("| bytes per pod: stored by the apiserver (the peer's puts) / request body | {} / {} | - | - |\n",
             stored.size(), pod_json("bench", "pod-0").size());
  // Ratios: the median (and range) of the rounds' ratios, each of a phase to the raw puts
  // (or a raw phase to the puts) of its round.
  auto cpu_ratio = [](const Measured& a, const Measured& b, double CpuSample::*what) {
    const double d = b.per_op(what);
    return d > 0 ? a.per_op(what) / d : 0.0;
  };
  fmt::print("| creates/s ({} HTTP/1.1 connections; ratio: median (range) of {} rounds) | {:.0f} | {:.0f} | {} |\n",
             concurrency, rounds, api.stats.rate(), raw.stats.rate(), ratio_of(api, raw));
  double a50 = api.stats.pct(0.5), a99 = api.stats.pct(0.99), r50 = raw.stats.pct(0.5),
         r99 = raw.stats.pct(0.99);
  fmt::print("| create p50 ms | {:.2f} | {:.2f} | {:.2f} |\n", a50, r50, a50 / r50);
  fmt::print("| create p99 ms | {:.2f} | {:.2f} | {:.2f} |\n", a99, r99, a99 / r99);
  fmt::print("| CPU ms per create: podwarp-control | {:.3f} | - | - |\n", api.per_op(&CpuSample::control));
  fmt::print("| CPU ms per create: etcd | {:.3f} | {:.3f} | {:.2f} |\n", api.per_op(&CpuSample::etcd),
             raw.per_op(&CpuSample::etcd), cpu_ratio(api, raw, &CpuSample::etcd));
  fmt::print("| CPU ms per create: bench client | {:.3f} | {:.3f} | {:.2f} |\n", api.per_op(&CpuSample::self),
             raw.per_op(&CpuSample::self), cpu_ratio(api, raw, &CpuSample::self));
  fmt::print("| creates/s over HTTP/2 ({} streams on 1 connection, as client-go) | {:.0f} | {:.0f} | {} |\n",
             concurrency, api_h2.stats.rate(), raw.stats.rate(), ratio_of(api_h2, raw));
  const double h50 = api_h2.stats.pct(0.5), h99 = api_h2.stats.pct(0.99);
  fmt::print("| ... p50 / p99 ms | {:.2f} / {:.2f} | {:.2f} / {:.2f} | - |\n", h50, h99, r50, r99);
  fmt::print("| ... CPU ms per create: podwarp-control / etcd / bench client | {:.3f} / {:.3f} / {:.3f} | - | - |\n",
             api_h2.per_op(&CpuSample::control), api_h2.per_op(&CpuSample::etcd),
             api_h2.per_op(&CpuSample::self));
  // How much of a create is its etcd Txn, as podwarp-control's etcd_request_duration_seconds
  // times it (as upstream's: from the storage call to its result, so with the API thread's
  // queueing), against the same Txns sent by the raw client.
  auto mean_ms = [](const std::vector<double>& l) {
    return l.empty() ? 0 : std::accumulate(l.begin(), l.end(), 0.0) / static_cast<double>(l.size());
  };
  auto etcd_share = [&](const Measured& m) {
    const double mean = mean_ms(m.stats.latencies_ms);
    const double txn = m.etcd_creates > 0 ? 1000 * m.etcd_create_seconds / m.etcd_creates : 0;
    return fmt::format("{:.2f} / {:.2f} | {:.2f} | {:.2f}", mean, txn,
                       mean_ms(raw_txn.stats.latencies_ms), mean > 0 ? txn / mean : 0);
  };
  fmt::print("| ... mean ms: create at the client / its etcd Txn in podwarp-control's etcd_request_duration_seconds (HTTP/1.1; peer: a raw create Txn; ratio: the Txn's share of the create) | {} |\n",
             etcd_share(api));
  fmt::print("| ... the same over HTTP/2 | {} |\n", etcd_share(api_h2));
  fmt::print("| raw etcd create Txns/s, same bytes (an apiserver that cost nothing) | {:.0f} | {:.0f} | {} |\n",
             raw_txn.stats.rate(), raw.stats.rate(), ratio_of(raw_txn, raw));
  fmt::print("| ... etcd CPU ms per create Txn | {:.3f} | {:.3f} | {:.2f} |\n", raw_txn.per_op(&CpuSample::etcd),
             raw.per_op(&CpuSample::etcd), cpu_ratio(raw_txn, raw, &CpuSample::etcd));
  // The two whole phases before the rounds, against the puts of the rounds.
  fmt::print("| raw etcd puts/s of the request body instead (smaller than what is stored; one phase before the rounds) | {:.0f} | {:.0f} | {:.2f} |\n",
             raw_body.stats.rate(), raw.stats.rate(), raw_body.stats.rate() / raw.stats.rate());
  fmt::print("| ... creates/s over HTTP/1.1, HTTP/2 against it | {:.2f}, {:.2f} | - | - |\n",
             api.stats.rate() / raw_body.stats.rate(), api_h2.stats.rate() / raw_body.stats.rate());
  fmt::print("| raw etcd create Txns/s with one watch on their prefix (an apiserver with a watch cache that cost nothing; one phase before the rounds) | {:.0f} | {:.0f} | {:.2f} |\n",
             raw_txnw.stats.rate(), raw.stats.rate(), raw_txnw.stats.rate() / raw.stats.rate());
  fmt::print("| ... etcd CPU ms per create Txn / bench client CPU ms | {:.3f} / {:.3f} | {:.3f} / {:.3f} | {:.2f} |\n",
             raw_txnw.per_op(&CpuSample::etcd), raw_txnw.per_op(&CpuSample::self),
             raw.per_op(&CpuSample::etcd), raw.per_op(&CpuSample::self),
             cpu_ratio(raw_txnw, raw, &CpuSample::etcd));
  fmt::print("| raw etcd create Txns/s, each its own Txn (no group commit, as upstream's apiserver; one phase before the rounds) | {:.0f} | {:.0f} | {:.2f} |\n",
             raw_txn1.stats.rate(), raw.stats.rate(), raw_txn1.stats.rate() / raw.stats.rate());
  fmt::print("| ... etcd CPU ms per create Txn / bench client CPU ms | {:.3f} / {:.3f} | {:.3f} / {:.3f} | {:.2f} |\n",
             raw_txn1.per_op(&CpuSample::etcd), raw_txn1.per_op(&CpuSample::self),
             raw.per_op(&CpuSample::etcd), raw.per_op(&CpuSample::self),
             cpu_ratio(raw_txn1, raw, &CpuSample::etcd));
  fmt::print("| list {} pods (rv=0) median ms | {:.1f} | - | - |\n", list_items,
             list_ms.empty() ? 0.0 : list_ms[list_ms.size() / 2]);
  // Watch delivery p50 / p99 (see FanOut): from an etcd commit, and from a create sent to the
  // apiserver (including its write).
  auto row = [&](const std::string& how, const FanOut& f) {
    Stats sent{0, f.from_sent}, commit{0, f.from_commit};
    fmt::print("| watch delivery p50 / p99 ms, {}: from the etcd commit ({} deliveries) | {:.2f} / {:.2f} | - | - |\n",
               how, f.from_commit.size(), commit.pct(0.5), commit.pct(0.99));
    fmt::print("| ... from the etcd commit: p1 / p10 / p90 ms (how the fan-out spreads) | {:.2f} / {:.2f} / {:.2f} | - | - |\n",
               commit.pct(0.01), commit.pct(0.1), commit.pct(0.9));
    fmt::print("| ... from the create sent to the apiserver ({} deliveries) | {:.2f} / {:.2f} | - | - |\n",
               f.from_sent.size(), sent.pct(0.5), sent.pct(0.99));
    fmt::print("| ... CPU ms per event (1 write, {} deliveries): podwarp-control / bench client | {:.2f} / {:.2f} | - | - |\n",
               watchers, f.control_cpu_ms, f.client_cpu_ms);
  };
  if (h1_fanout) row(fmt::format("{} HTTP/1.1 watchers", watchers), fan_h1);
  if (h2_conns > 0) {
    row(fmt::format("{} watchers as HTTP/2 streams on {} connections", watchers, h2_conns), fan_h2);
  }
  if (threads) {
    // podwarp-control's threads during each kind of create, busiest first.
    auto by_thread = [](const char* phase, const Measured& m) {
      std::vector<std::pair<double, std::string>> rows;
      for (const auto& [tid, v] : m.threads) {
        if (v.second > 0) rows.emplace_back(v.second, fmt::format("{} ({})", v.first, tid));
      }
      std::sort(rows.rbegin(), rows.rend());
      fmt::print("podwarp-control CPU ms per create by thread during the {} creates:\n", phase);
      for (const auto& [ms, name] : rows) fmt::print("  {:8.3f}  {}\n", ms / m.count(), name);
    };
    by_thread("HTTP/1.1", api);
    by_thread("HTTP/2", api_h2);
  }
  return 0;
}
