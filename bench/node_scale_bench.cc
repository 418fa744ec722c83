// Node scale: one `netprof node` process following N simulated pods (netns + kubepods cgroup +
// a tiny HTTP server each, from tests/node/sim_node.h), for N = 1, 10, 50, 110 (--pods).
// For each N it starts netprof on a tree that already holds N pods and prints
//   - attach time: from netprof's start until its log says all N pods are attached;
//   - locked kernel memory of netprof's BPF maps and programs, from the kernel's own
//     accounting (memlock in /proc/PID/fdinfo, as `bpftool map/prog show` reports it);
//   - netprof's RSS with the N pods idle (1 s after the last attach);
// then the fit memory = base + per pod x pods over the runs. Root and real BPF; the figures
// are noisy on a shared machine (attach time most): compare runs made under the same load.
//
// Usage: node_scale_bench [--pods 1,10,50,110] [--json FILE]
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sim_node.h"

namespace netprof::test {
namespace {

struct Run {
  int pods = 0;
  double attach_s = 0;
  BpfFootprint bpf;
  uint64_t rss = 0;
};

size_t attached_count(const std::string& log) {
  std::istringstream lines(log);
  size_t count = 0;
  for (std::string line; std::getline(lines, line);)
    if (line.find(": attached") != std::string::npos) ++count;
  return count;
}

std::string uid_of(int i) {
  char uid[64];
  std::snprintf(uid, sizeof uid, "be4c0000-0000-4000-8000-%012d", i);
  return uid;
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

int run_bench(const std::vector<int>& sizes, const std::string& json_path) {
  std::string error;
  auto node = SimNode::create(error);
  if (!node) {
    std::fprintf(stderr, "node_scale_bench: %s\n", error.c_str());
    return 1;
  }
  std::vector<std::unique_ptr<SimPod>> pods;
  std::vector<Run> runs;
  for (int n : sizes) {
    const auto make_start = std::chrono::steady_clock::now();
    while (static_cast<int>(pods.size()) < n) {
      const int i = static_cast<int>(pods.size());
      auto pod = node->add_pod("bench-" + std::to_string(i), uid_of(i),
                               static_cast<SimLayout>(i % 3), error, /*tiny=*/true);
      if (!pod) {
        std::fprintf(stderr, "node_scale_bench: pod %d: %s\n", i, error.c_str());
        return 1;
      }
      pods.push_back(std::move(pod));
    }
    std::fprintf(
        stderr, "node_scale_bench: %d pods ready (%.1f s to make); starting netprof\n", n,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - make_start).count());
    Run run;
    run.pods = n;
    const auto start = std::chrono::steady_clock::now();
    NodeProcess netprof(node->root(), {"--admin", "off", "--max-pods", "256"});
    bool all = false;
    while (!all && std::chrono::steady_clock::now() - start < std::chrono::seconds(120)) {
      all = attached_count(netprof.log()) >= static_cast<size_t>(n);
      if (!all) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    run.attach_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!all) {
      std::fprintf(stderr, "node_scale_bench: only %zu of %d pods attached:\n%s\n",
                   attached_count(netprof.log()), n, netprof.log().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // idle
    run.bpf = bpf_footprint(netprof.pid());
    run.rss = resident_bytes(netprof.pid());
    netprof.signal(SIGTERM);
    netprof.wait_exit(std::chrono::seconds(30));
    std::printf(
        "node scale: %3d pods: attach %6.2f s, BPF %2zu maps %3zu programs, locked "
        "kernel memory %6.2f MiB (maps %.2f + programs %.2f), netprof RSS %6.2f MiB\n",
        n, run.attach_s, run.bpf.maps, run.bpf.programs, mib(run.bpf.memlock()),
        mib(run.bpf.map_memlock), mib(run.bpf.prog_memlock), mib(run.rss));
    std::fflush(stdout);
    runs.push_back(run);
  }
  // memory = base + per_pod x pods, from the smallest and the largest run.
  double base = 0, per_pod = 0, rss_base = 0, rss_per_pod = 0;
  if (runs.size() >= 2 && runs.back().pods > runs.front().pods) {
    const Run& a = runs.front();
    const Run& b = runs.back();
    const double d = b.pods - a.pods;
    per_pod = (static_cast<double>(b.bpf.memlock()) - static_cast<double>(a.bpf.memlock())) / d;
    base = static_cast<double>(a.bpf.memlock()) - per_pod * a.pods;
    rss_per_pod = (static_cast<double>(b.rss) - static_cast<double>(a.rss)) / d;
    rss_base = static_cast<double>(a.rss) - rss_per_pod * a.pods;
    std::printf(
        "node scale: locked kernel memory = %.2f MiB + %.1f KiB x pods "
        "(goal: <= 64 MiB + 256 KiB x pods); RSS = %.2f MiB + %.1f KiB x pods\n",
        base / 1048576, per_pod / 1024, rss_base / 1048576, rss_per_pod / 1024);
  }
  if (!json_path.empty()) {
    std::ofstream out(json_path);
    out << "{\"runs\": [";
    for (size_t i = 0; i < runs.size(); ++i) {
      const Run& r = runs[i];
      out << (i ? ", " : "") << "{\"pods\": " << r.pods << ", \"attach_s\": " << r.attach_s
          << ", \"maps\": " << r.bpf.maps << ", \"programs\": " << r.bpf.programs
          << ", \"map_memlock_bytes\": " << r.bpf.map_memlock
          << ", \"prog_memlock_bytes\": " << r.bpf.prog_memlock << ", \"rss_bytes\": " << r.rss
          << "}";
    }
    out << "], \"memlock_base_bytes\": " << base << ", \"memlock_per_pod_bytes\": " << per_pod
        << ", \"rss_base_bytes\": " << rss_base << ", \"rss_per_pod_bytes\": " << rss_per_pod
        << "}\n";
  }
  return 0;
}

}  // namespace
}  // namespace netprof::test

int main(int argc, char** argv) {
  std::vector<int> sizes = {1, 10, 50, 110};
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--pods" && i + 1 < argc) {
      sizes.clear();
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) sizes.push_back(std::stoi(item));
    } else if (arg == "--json" && i + 1 < argc) {
      json = argv[++i];
    } else {
      std::fprintf(stderr, "usage: node_scale_bench [--pods 1,10,50,110] [--json FILE]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "node_scale_bench: needs root (netns, cgroups, BPF)\n");
    return 2;
  }
  return netprof::test::run_bench(sizes, json);
}
