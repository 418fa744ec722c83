#include "cli/check_command.h"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "intercept/feature_probe.h"
#include "intercept/libbpf_log.h"

namespace netprof {
namespace {

struct CheckOptions {
  bool json = false;
  bool verbose = false;
};

const char* yes_no(bool value) { return value ? "yes" : "NO"; }

std::string needed_by(unsigned bits) {
  std::string out;
  auto add = [&](Need need, const char* name) {
    if (bits & static_cast<unsigned>(need)) out += (out.empty() ? "" : ",") + std::string(name);
  };
  add(Need::kInbound, "inbound");
  add(Need::kOutbound, "outbound");
  add(Need::kSkMsg, "sk_msg");
  return out.empty() ? "-" : out;
}

// Why `need` is not possible: missing features by name, kernel bugs by what they break.
std::string missing_for(const FeatureReport& report, Need need) {
  std::string missing, broken;
  for (const Feature& feature : report.features) {
    if (!(feature.needed_by & static_cast<unsigned>(need)) || feature.available) continue;
    std::string& out = feature.fixed_in.empty() ? missing : broken;
    out += (out.empty() ? "" : "; ") + (feature.fixed_in.empty() ? feature.name : feature.detail);
  }
  if (!missing.empty()) return "missing: " + missing + (broken.empty() ? "" : "; " + broken);
  return "kernel bug: " + broken;
}

int run_check(const CheckOptions& o) {
  set_libbpf_verbose(o.verbose);
  const FeatureReport report = probe_features();
  const bool any = report.inbound || report.outbound;
  if (o.json) {
    nlohmann::json features = nlohmann::json::array();
    for (const Feature& f : report.features)
      features.push_back({{"name", f.name},
                          {"available", f.available},
                          {"min_kernel", f.min_kernel},
                          {"needed_by", needed_by(f.needed_by)},
                          {"detail", f.detail},
                          {"fixed_in", f.fixed_in}});
    nlohmann::json out = {{"kernel", report.kernel},
                          {"features", features},
                          {"can", {{"inbound", report.inbound},
                                   {"outbound", report.outbound},
                                   {"skmsg", report.skmsg}}},
                          {"interception_possible", any}};
    std::cout << out.dump(2) << "\n";
    return any ? 0 : 1;
  }
  std::cout << "kernel " << report.kernel << "\n\n";
  for (const Feature& f : report.features) {
    const char* mark = f.available ? "  ok   " : (f.needed_by ? "  MISS " : "  --   ");
    std::cout << mark << f.name << "  [";
    if (!f.fixed_in.empty()) std::cout << "kernel bugs, fixed by " << f.fixed_in << ", ";
    else if (f.min_kernel != "-") std::cout << "Linux " << f.min_kernel << "+, ";
    std::cout << (f.needed_by ? "needed for " + needed_by(f.needed_by) : std::string("optional"))
              << "]\n        " << f.detail << "\n";
  }
  auto line = [&](const char* what, bool can, Need need) {
    std::cout << "  " << what << ": " << yes_no(can);
    if (!can) std::cout << " (" << missing_for(report, need) << ")";
    std::cout << "\n";
  };
  std::cout << "\nnetprof here can:\n";
  line("profile a pod's incoming connections (attach --inbound-ports)", report.inbound,
       Need::kInbound);
  line("profile a cgroup's outgoing connections (attach --outbound-ports)", report.outbound,
       Need::kOutbound);
  line("use the sk_msg fast path for local hops (attach turns it on only then; "
       "--skmsg=on|off|auto)",
       report.skmsg, Need::kSkMsg);
  std::cout << "  relay without BPF (netprof proxy): yes\n";
  if (!any) std::cout << "\neBPF interception cannot work here.\n";
  return any ? 0 : 1;
}

}  // namespace

void register_check_command(CLI::App& app) {
  auto options = std::make_shared<CheckOptions>();
  auto* cmd = app.add_subcommand(
      "check", "Probe the kernel for what eBPF interception needs; exit 1 if it cannot work");
  cmd->add_flag("--json", options->json, "print the result as JSON");
  cmd->add_flag("-v,--verbose", options->verbose, "print libbpf's log of the probes");
  cmd->callback([options] { std::exit(run_check(*options)); });
}

}  // namespace netprof
