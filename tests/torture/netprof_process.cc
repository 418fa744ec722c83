#include "netprof_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace netprof::torture {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t status_field(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const size_t klen = std::strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':')
      return std::strtoull(line.c_str() + klen + 1, nullptr, 10);
  return 0;
}

}  // namespace

std::string netprof_binary() {
  const char* env = std::getenv("NETPROF_BINARY");
  return env && *env ? env : NETPROF_BINARY_PATH;
}

NetprofProcess::NetprofProcess(const ProxyConfig& config) {
  char tmpl[] = "/tmp/netprof-torture-XXXXXX";
  dir_ = mkdtemp(tmpl);
  report_path_ = dir_ + "/report.json";
  stderr_path_ = dir_ + "/stderr";
  const bool attach = config.mode != Interception::kProxy;
  std::vector<std::string> args = {netprof_binary()};
  if (attach) {
    args.insert(args.end(), {"attach", "--inbound-ports", std::to_string(config.target_port),
                             "--no-ipv6"});
    if (config.mode == Interception::kAttachNoSkmsg) args.push_back("--no-skmsg");
  } else {
    args.insert(args.end(), {"proxy", "--listen", "127.0.0.1:0", "--target",
                             "127.0.0.1:" + std::to_string(config.target_port)});
  }
  // The admin API stays on (its sinks are on the exchange path) but on a port of its own, so
  // that tests and other netprofs on this machine do not collide.
  args.insert(args.end(), {"--report-file", report_path_, "--report-interval",
                           std::to_string(config.report_interval_s), "--drain-timeout", "1",
                           "--admin", "127.0.0.1:0"});
  args.insert(args.end(), config.extra_args.begin(), config.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const int err_fd = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  pid_ = fork();
  if (pid_ == 0) {  // only async-signal-safe calls until exec
    if (config.nofile_limit) {
      const rlimit r{config.nofile_limit, config.nofile_limit};
      setrlimit(RLIMIT_NOFILE, &r);
    }
    dup2(err_fd, 2);
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(err_fd);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline && alive()) {
    const std::string text = read_file(stderr_path_);
    if (attach && text.find("netprof: intercepting") != std::string::npos) {
      port_ = config.target_port;
      return;
    }
    const size_t at = text.find("relaying 127.0.0.1:");
    if (at != std::string::npos && text.find(" -> ", at) != std::string::npos) {
      port_ = static_cast<uint16_t>(std::atoi(text.c_str() + at + 19));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "netprof did not start: " << read_file(stderr_path_);
}

std::string attach_unavailable_reason() {
  if (geteuid() != 0) return "not root";
  const std::string cmd = netprof_binary() + " check >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return "`netprof check` says this kernel cannot intercept";
  return {};
}

bool bpf_required() {
  const char* v = std::getenv("NETPROF_REQUIRE_BPF");
  return v && std::string(v) == "1";
}

NetprofProcess::~NetprofProcess() {
  if (pid_ > 0 && exit_code_ < 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool NetprofProcess::alive() const {
  if (pid_ <= 0 || exit_code_ >= 0) return false;
  return waitpid(pid_, nullptr, WNOHANG) == 0;
}

nlohmann::json NetprofProcess::report() const {
  const std::string text = read_file(report_path_);
  if (text.empty()) return nlohmann::json::object();
  // Reports may be one JSON document per line if appended; take the last complete one.
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return nlohmann::json::object();
  return parsed;
}

nlohmann::json NetprofProcess::fresh_report(int timeout_ms) const {
  const auto before = report().value("generated_at_ms", int64_t{0});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = report();
    if (r.value("generated_at_ms", int64_t{0}) > before) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "no new report within " << timeout_ms << " ms; netprof said: "
                << stderr_text();
  return report();
}

nlohmann::json NetprofProcess::stop() {
  if (pid_ <= 0 || exit_code_ >= 0) return report();
  kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "netprof did not exit within 20 s of SIGTERM";
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return report();
}

std::string NetprofProcess::stderr_text() const { return read_file(stderr_path_); }

uint64_t NetprofProcess::rss_kib() const { return status_field(pid_, "VmRSS"); }
uint64_t NetprofProcess::hwm_kib() const { return status_field(pid_, "VmHWM"); }

int NetprofProcess::open_fds() const {
  DIR* d = opendir(("/proc/" + std::to_string(pid_) + "/fd").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

ReportTotals totals(const nlohmann::json& report, const char* protocol) {
  ReportTotals t;
  if (!report.contains("routes")) return t;
  for (const auto& r : report["routes"]) {
    // HTTP/1 routes carry no "protocol" field.
    if (protocol != nullptr && r.value("protocol", std::string("h1")) != protocol) continue;
    t.count += r.value("count", uint64_t{0});
    t.errors += r.value("errors", uint64_t{0});
    t.request_bytes += r.value("request_bytes", uint64_t{0});
    t.response_bytes += r.value("response_bytes", uint64_t{0});
    if (r.contains("status"))
      for (const auto& [code, n] : r["status"].items()) t.status[code] += n.get<uint64_t>();
  }
  return t;
}

uint64_t connection_counter(const nlohmann::json& report, const char* name) {
  if (!report.contains("connections")) return 0;
  return report["connections"].value(name, uint64_t{0});
}

}  // namespace netprof::torture
