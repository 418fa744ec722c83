// Runs the real `netprof proxy` binary as a child process, the way users run it, and reads
// what it reports: the JSON report file, and its RSS and open fds from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace netprof::torture {

enum class Interception {
  kProxy,          // `netprof proxy`: clients connect to netprof's own port
  kAttach,         // `netprof attach --inbound-ports TARGET`: clients connect to the target
  kAttachNoSkmsg,  // ... with --no-skmsg
};

struct ProxyConfig {
  Interception mode = Interception::kProxy;
  uint16_t target_port = 0;
  std::vector<std::string> extra_args;  // e.g. {"--max-connections", "10"}
  uint64_t nofile_limit = 0;            // RLIMIT_NOFILE of the child; 0 = inherit
  double report_interval_s = 0.2;
};

class NetprofProcess {
 public:
  explicit NetprofProcess(const ProxyConfig& config);  // starts it; fails the test if it cannot
  ~NetprofProcess();                                    // SIGKILL if still running
  NetprofProcess(const NetprofProcess&) = delete;
  NetprofProcess& operator=(const NetprofProcess&) = delete;

  bool started() const { return port_ != 0; }
  uint16_t port() const { return port_; }  // where clients connect
  pid_t pid() const { return pid_; }
  bool alive() const;

  // The last report written (the file is replaced atomically). Empty object if none yet.
  nlohmann::json report() const;
  // Waits until a new report is written after this call, then returns it.
  nlohmann::json fresh_report(int timeout_ms = 5000) const;
  // SIGTERM, wait for exit, return the final report. exit_code() is valid afterwards.
  nlohmann::json stop();
  int exit_code() const { return exit_code_; }
  std::string stderr_text() const;

  uint64_t rss_kib() const;   // VmRSS
  uint64_t hwm_kib() const;   // VmHWM
  int open_fds() const;       // entries in /proc/PID/fd

 private:
  std::string dir_, report_path_, stderr_path_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int exit_code_ = -1;
};

// Totals over the report's routes; with `protocol` ("h1", "h2"), over its routes only.
struct ReportTotals {
  uint64_t count = 0, errors = 0, request_bytes = 0, response_bytes = 0;
  std::map<std::string, uint64_t> status;  // "200" -> n
};
ReportTotals totals(const nlohmann::json& report, const char* protocol = nullptr);
uint64_t connection_counter(const nlohmann::json& report, const char* name);

std::string netprof_binary();

// Empty if `netprof attach` can run here, else why not (not root, no BPF support...).
std::string attach_unavailable_reason();
// NETPROF_REQUIRE_BPF=1: a skipped eBPF test is a failure instead.
bool bpf_required();

}  // namespace netprof::torture
