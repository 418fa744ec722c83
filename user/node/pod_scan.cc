#include "node/pod_scan.h"

#include <dirent.h>

#include <algorithm>
#include <string_view>

namespace netprof {
namespace {

std::vector<std::string> child_dirs(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;  // gone meanwhile: the next scan will not see it either
  while (const dirent* entry = readdir(d)) {
    if (entry->d_type != DT_DIR) continue;  // cgroupfs always fills d_type
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool may_lead_to_pods(std::string_view name) {
  return name.find("kube") != std::string_view::npos || name == "burstable" || name == "besteffort";
}

void walk(const std::string& dir, std::string_view name, int depth, PodScan& scan) {
  scan.watch_dirs.push_back(dir);
  for (const std::string& child : child_dirs(dir)) {
    const std::string path = dir + "/" + child;
    if (auto pod = parse_pod_cgroup(child, name)) {
      PodCgroup found{std::move(*pod), path, {}, {}};
      for (const std::string& inner : child_dirs(path)) {
        if (auto container = parse_container_cgroup(inner)) {
          found.containers.push_back(std::move(*container));
          found.container_dirs.push_back(path + "/" + inner);
        }
      }
      scan.watch_dirs.push_back(path);  // its containers come and go
      scan.pods.push_back(std::move(found));
    } else if (depth < kMaxPodDepth && may_lead_to_pods(child)) {
      walk(path, child, depth + 1, scan);
    }
  }
}

}  // namespace

PodScan scan_pod_cgroups(const std::string& root) {
  PodScan scan;
  std::string trimmed = root;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  walk(trimmed, slash == std::string::npos ? trimmed : trimmed.substr(slash + 1), 1, scan);
  std::sort(scan.pods.begin(), scan.pods.end(),
            [](const PodCgroup& a, const PodCgroup& b) { return a.name.uid < b.name.uid; });
  return scan;
}

}  // namespace netprof
