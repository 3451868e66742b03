// apiserver_bench: podwarp-control against raw etcd, in one run on one machine.
//
//  1. creates: N pod creates through the apiserver (HTTPS, C concurrent keep-alive
//     connections) vs N raw etcd puts of the same bytes with the same concurrency.
//     Reports creates/s, p50/p99 latency and the ratio.
//  2. list: GET /api/v1/pods?resourceVersion=0 of all N pods from the watch cache (median).
//  3. watch fan-out: W watchers on one namespace; E configmap creates, one at a time; the
//     delay from the create request being sent to each watcher receiving the event (p50/p99).
//
// It also reports the CPU time (user + system, from /proc/<pid>/stat) that podwarp-control,
// etcd and the benchmark client itself spent per create in each create phase, and with
// --threads the split of podwarp-control's CPU over its threads: on a shared 2-core machine
// CPU per create is a steadier measure than wall-clock rates.
//
// Usage: apiserver_bench [--pods N] [--concurrency C] [--watchers W] [--events E]
//                        [--control PATH] [--threads] [--etcd-tcp]
// Both podwarp-control and the raw peer reach etcd over its unix socket (--etcd-tcp: over
// loopback TCP), the same way, so the ratio stays fair.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
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

asio::awaitable<std::unique_ptr<Tls>> connect(asio::ssl::context& ctx, int port) {
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_unique<Tls>(ex, ctx);
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

}  // namespace

int main(int argc, char** argv) {
  int pods = 10000;
  int concurrency = 16;
  int watchers = 1000;
  int events = 50;
  bool threads = false;
  bool etcd_unix = true;
  std::string control_bin = (fs::path(argv[0]).parent_path() / ".." / "bin" / "podwarp-control").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      fmt::print(
          "usage: apiserver_bench [--pods N (10000)] [--concurrency C (16)] [--watchers W (1000)]\n"
          "                       [--events E (50)] [--control PATH] [--threads] [--etcd-tcp]\n"
          "Creates through podwarp-control vs raw etcd puts, list from the watch cache, watch\n"
          "fan-out; CPU ms per create of podwarp-control, etcd and this client.\n"
          "--threads: also podwarp-control's CPU per thread during the creates.\n"
          "--etcd-tcp: both sides reach etcd over loopback TCP instead of its unix socket.\n");
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
    if (i + 1 >= argc) break;
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
    if (a == "--concurrency") concurrency = std::atoi(argv[i + 1]);
    if (a == "--watchers") watchers = std::atoi(argv[i + 1]);
    if (a == "--events") events = std::atoi(argv[i + 1]);
    if (a == "--control") control_bin = argv[i + 1];
    ++i;
  }
  storage::EtcdOptions etcd_opts;
  etcd_opts.client_unix_socket = etcd_unix;
  auto etcd = storage::EtcdProcess::start(etcd_opts);
  if (!etcd) {
    fmt::print(stderr, "etcd: {}\n", etcd.error().what());
    return 1;
  }
  // Both sides talk to etcd the same way: over its unix socket (default) or loopback TCP.
  const std::string etcd_endpoint = etcd_unix ? (*etcd)->unix_endpoint() : (*etcd)->endpoint();

  // 1a. Raw etcd puts of the same bytes.
  Stats raw;
  CpuSample raw_cpu0, raw_cpu1, api_cpu0, api_cpu1;
  std::map<int, std::pair<std::string, double>> threads0, threads1;
  {
    asio::io_context io;
    auto client = storage::make_etcd_client(io.get_executor(), {etcd_endpoint});
    int next = 0;
    raw_cpu0 = CpuSample::take(0, (*etcd)->pid());
    auto t0 = Clock::now();
    for (int w = 0; w < concurrency; ++w) {
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        while (true) {
          int i = next++;
          if (i >= pods) co_return;
          std::string pod = pod_json("bench", fmt::format("pod-{}", i));
          auto s = Clock::now();
          auto r = co_await client->put(fmt::format("/raw/pods/bench/pod-{}", i), pod);
          if (!r) throw std::runtime_error(r.error().message);
          raw.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
        }
      }, asio::detached);
    }
    io.run();
    raw.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    raw_cpu1 = CpuSample::take(0, (*etcd)->pid());
  }

  Control control;
  control.data_dir = fs::temp_directory_path() / fmt::format("podwarp-bench-{}", getpid());
  fs::create_directories(control.data_dir);
  if (!start_control(control, control_bin, etcd_endpoint)) {
    fmt::print(stderr, "podwarp-control did not start (see {}/control.log)\n", control.data_dir.string());
    return 1;
  }
  asio::ssl::context tls = client_tls(control.data_dir / "pki");

  // 1b. Creates through the apiserver.
  Stats api;
  {
    asio::io_context io;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto s = co_await connect(tls, control.port);
      co_await roundtrip(*s, http::verb::post, "/api/v1/namespaces",
                         R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}})");
      co_await roundtrip(*s, http::verb::post, "/api/v1/namespaces",
                         R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"fanout"}})");
    }, asio::detached);
    io.run();
  }
  {
    asio::io_context io;
    int next = 0;
    int failures = 0;
    api_cpu0 = CpuSample::take(control.pid, (*etcd)->pid());
    if (threads) threads0 = thread_cpu_ms(control.pid);
    auto t0 = Clock::now();
    for (int w = 0; w < concurrency; ++w) {
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto s = co_await connect(tls, control.port);
        while (true) {
          int i = next++;
          if (i >= pods) co_return;
          std::string pod = pod_json("bench", fmt::format("pod-{}", i));
          auto st = Clock::now();
          auto res = co_await roundtrip(*s, http::verb::post, "/api/v1/namespaces/bench/pods", pod);
          if (res.result_int() != 201) ++failures;
          api.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - st).count());
        }
      }, asio::detached);
    }
    io.run();
    api.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    api_cpu1 = CpuSample::take(control.pid, (*etcd)->pid());
    if (threads) threads1 = thread_cpu_ms(control.pid);
    if (failures > 0) fmt::print(stderr, "{} creates failed\n", failures);
  }

  // 2. List all pods from the watch cache.
  std::vector<double> list_ms;
  std::size_t list_items = 0;
  {
    asio::io_context io;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto s = co_await connect(tls, control.port);
      for (int i = 0; i < 7; ++i) {
        auto st = Clock::now();
        auto res = co_await roundtrip(*s, http::verb::get, "/api/v1/pods?resourceVersion=0", "");
        list_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - st).count());
        if (i == 0) {
          auto v = parse_json(res.body());
          if (v) list_items = v->at("items").as_array().size();
        }
      }
    }, asio::detached);
    io.run();
  }
  std::sort(list_ms.begin(), list_ms.end());

  // 3. Watch fan-out.
  std::vector<double> deliver_ms;
  {
    asio::io_context io;
    std::vector<Clock::time_point> sent(static_cast<std::size_t>(events));
    int ready = 0;
    bool all_ready = false;
    asio::steady_timer ready_signal(io, Clock::time_point::max());
    for (int w = 0; w < watchers; ++w) {
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto s = co_await connect(tls, control.port);
        http::request<http::empty_body> req{http::verb::get,
            "/api/v1/namespaces/fanout/configmaps?watch=true&resourceVersion=0&timeoutSeconds=120", 11};
        req.set(http::field::host, "127.0.0.1");
        co_await http::async_write(*s, req, asio::use_awaitable);
        beast::flat_buffer buf;
        http::response_parser<http::buffer_body> p;
        p.body_limit(boost::none);
        co_await http::async_read_header(*s, buf, p, asio::use_awaitable);
        if (++ready == watchers) {
          all_ready = true;
          ready_signal.cancel();
        }
        char chunk[8192];
        std::string pending;
        int got = 0;
        while (got < events && !p.is_done()) {
          p.get().body().data = chunk;
          p.get().body().size = sizeof chunk;
          boost::system::error_code ec;
          co_await http::async_read_some(*s, buf, p, asio::redirect_error(asio::use_awaitable, ec));
          if (ec && ec != http::error::need_buffer) co_return;
          auto now = Clock::now();
          pending.append(chunk, sizeof chunk - p.get().body().size);
          std::size_t pos;
          while ((pos = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, pos);
            pending.erase(0, pos + 1);
            auto at = line.find("\"name\":\"ev-");
            if (at == std::string::npos) continue;
            int idx = std::atoi(line.c_str() + at + 11);
            if (idx >= 0 && idx < events) {
              deliver_ms.push_back(std::chrono::duration<double, std::milli>(now - sent[static_cast<std::size_t>(idx)]).count());
              ++got;
            }
          }
        }
      }, asio::detached);
    }
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      boost::system::error_code ec;
      if (!all_ready) co_await ready_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      auto s = co_await connect(tls, control.port);
      asio::steady_timer pause(co_await asio::this_coro::executor);
      for (int i = 0; i < events; ++i) {
        std::string cm = fmt::format(
            R"({{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"ev-{}"}},"data":{{"k":"v"}}}})", i);
        sent[static_cast<std::size_t>(i)] = Clock::now();
        co_await roundtrip(*s, http::verb::post, "/api/v1/namespaces/fanout/configmaps", cm);
        // Let each event drain before the next, so each measures one event's fan-out.
        pause.expires_after(std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }, asio::detached);
    io.run();
  }
  Stats fan;
  fan.latencies_ms = deliver_ms;

  fmt::print("apiserver_bench: pods={} concurrency={} watchers={} events={} etcd over {}\n", pods,
             concurrency, watchers, events, etcd_unix ? "unix socket" : "tcp");
  fmt::print("| measure | podwarp | peer (raw etcd) | ratio |\n|---|---|---|---|\n");
  fmt::print("| creates/s | {:.0f} | {:.0f} | {:.2f} |\n", api.rate(), raw.rate(), api.rate() / raw.rate());
  double a50 = api.pct(0.5), a99 = api.pct(0.99), r50 = raw.pct(0.5), r99 = raw.pct(0.99);
  fmt::print("| create p50 ms | {:.2f} | {:.2f} | {:.2f} |\n", a50, r50, a50 / r50);
  fmt::print("| create p99 ms | {:.2f} | {:.2f} | {:.2f} |\n", a99, r99, a99 / r99);
  const double n = pods > 0 ? pods : 1;
  fmt::print("| CPU ms per create: podwarp-control | {:.3f} | - | - |\n",
             (api_cpu1.control - api_cpu0.control) / n);
  fmt::print("| CPU ms per create: etcd | {:.3f} | {:.3f} | {:.2f} |\n",
             (api_cpu1.etcd - api_cpu0.etcd) / n, (raw_cpu1.etcd - raw_cpu0.etcd) / n,
             (api_cpu1.etcd - api_cpu0.etcd) / (raw_cpu1.etcd - raw_cpu0.etcd));
  fmt::print("| CPU ms per create: bench client | {:.3f} | {:.3f} | {:.2f} |\n",
             (api_cpu1.self - api_cpu0.self) / n, (raw_cpu1.self - raw_cpu0.self) / n,
             (api_cpu1.self - api_cpu0.self) / (raw_cpu1.self - raw_cpu0.self));
  fmt::print("| list {} pods (rv=0) median ms | {:.1f} | - | - |\n", list_items,
             list_ms.empty() ? 0.0 : list_ms[list_ms.size() / 2]);
  fmt::print("| watch delivery p50 ms ({} watchers, {} deliveries) | {:.2f} | - | - |\n", watchers,
             fan.latencies_ms.size(), fan.pct(0.5));
  fmt::print("| watch delivery p99 ms | {:.2f} | - | - |\n", fan.pct(0.99));
  if (threads) {
    // podwarp-control's threads during the creates, busiest first.
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& [tid, v] : threads1) {
      auto it = threads0.find(tid);
      double d = v.second - (it == threads0.end() ? 0.0 : it->second.second);
      if (d > 0) rows.emplace_back(d, fmt::format("{} ({})", v.first, tid));
    }
    std::sort(rows.rbegin(), rows.rend());
    fmt::print("podwarp-control CPU ms per create by thread during the creates:\n");
    for (const auto& [ms, name] : rows) fmt::print("  {:8.3f}  {}\n", ms / n, name);
  }
  return 0;
}
