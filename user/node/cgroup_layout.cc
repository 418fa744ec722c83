#include "node/cgroup_layout.h"

#include <vector>

namespace netprof {
namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// API-server UIDs are UUIDs; static (file) pods get a 32-hex-digit hash. The systemd driver
// escapes '-' as '_'. Returns the UID with dashes, or "" when `text` is neither form.
std::string normalize_uid(std::string_view text) {
  std::string uid;
  size_t hex_digits = 0;
  for (char c : text) {
    if (c == '_' || c == '-') {
      uid.push_back('-');
    } else if (is_hex(c)) {
      uid.push_back(c);
      ++hex_digits;
    } else {
      return {};
    }
  }
  if (hex_digits != 32) return {};
  if (uid.size() == 32) return uid;
  const bool uuid =
      uid.size() == 36 && uid[8] == '-' && uid[13] == '-' && uid[18] == '-' && uid[23] == '-';
  return uuid ? uid : std::string();
}

bool is_container_id(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!is_hex(c)) return false;
  return true;
}

std::optional<PodCgroupName> parse_systemd_pod(std::string_view name) {
  if (!ends_with(name, ".slice")) return std::nullopt;
  name.remove_suffix(6);
  const size_t pod = name.rfind("-pod");
  if (pod == std::string_view::npos) return std::nullopt;
  const std::string_view level = name.substr(0, pod);
  PodCgroupName result;
  result.driver = CgroupDriver::kSystemd;
  if (ends_with(level, "kubepods-burstable")) {
    result.qos = QosClass::kBurstable;
  } else if (ends_with(level, "kubepods-besteffort")) {
    result.qos = QosClass::kBestEffort;
  } else if (ends_with(level, "kubepods")) {
    result.qos = QosClass::kGuaranteed;
  } else {
    return std::nullopt;
  }
  result.uid = normalize_uid(name.substr(pod + 4));
  if (result.uid.empty()) return std::nullopt;
  return result;
}

std::optional<PodCgroupName> parse_cgroupfs_pod(std::string_view name, std::string_view parent) {
  if (!starts_with(name, "pod")) return std::nullopt;
  PodCgroupName result;
  result.driver = CgroupDriver::kCgroupfs;
  if (parent == "burstable") {
    result.qos = QosClass::kBurstable;
  } else if (parent == "besteffort") {
    result.qos = QosClass::kBestEffort;
  } else if (parent == "kubepods") {
    result.qos = QosClass::kGuaranteed;
  } else {
    return std::nullopt;
  }
  result.uid = normalize_uid(name.substr(3));
  if (result.uid.empty()) return std::nullopt;
  return result;
}

}  // namespace

std::string_view qos_name(QosClass qos) {
  switch (qos) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      return "BestEffort";
  }
  return "";
}

std::string_view runtime_name(ContainerRuntime runtime) {
  switch (runtime) {
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kUnknown:
      return "";
  }
  return "";
}

std::optional<PodCgroupName> parse_pod_cgroup(std::string_view name, std::string_view parent) {
  if (auto pod = parse_systemd_pod(name)) return pod;
  return parse_cgroupfs_pod(name, parent);
}

std::optional<ContainerCgroupName> parse_container_cgroup(std::string_view name) {
  // systemd driver: a transient scope named by the runtime.
  struct Prefix {
    std::string_view text;
    ContainerRuntime runtime;
  };
  static constexpr Prefix kScopes[] = {{"cri-containerd-", ContainerRuntime::kContainerd},
                                       {"crio-", ContainerRuntime::kCrio},
                                       {"docker-", ContainerRuntime::kDocker}};
  if (ends_with(name, ".scope")) {
    const std::string_view stem = name.substr(0, name.size() - 6);
    for (const Prefix& prefix : kScopes) {
      if (!starts_with(stem, prefix.text)) continue;
      const std::string_view id = stem.substr(prefix.text.size());
      if (!is_container_id(id)) return std::nullopt;  // e.g. crio-conmon-<id>
      return ContainerCgroupName{std::string(id), prefix.runtime};
    }
    return std::nullopt;
  }
  // cgroupfs driver: containerd and Docker name the directory by the id, CRI-O as crio-<id>.
  if (starts_with(name, "crio-") && is_container_id(name.substr(5)))
    return ContainerCgroupName{std::string(name.substr(5)), ContainerRuntime::kCrio};
  if (is_container_id(name))
    return ContainerCgroupName{std::string(name), ContainerRuntime::kUnknown};
  return std::nullopt;
}

std::optional<PodPath> parse_pod_path(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  std::optional<PodPath> found;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto pod = parse_pod_cgroup(parts[i], i > 0 ? parts[i - 1] : std::string_view());
    if (!pod) continue;
    PodPath result;
    result.pod = std::move(*pod);
    const size_t end = static_cast<size_t>(parts[i].data() + parts[i].size() - path.data());
    result.pod_dir = std::string(path.substr(0, end));
    if (i + 1 < parts.size()) result.container = parse_container_cgroup(parts[i + 1]);
    found = std::move(result);
  }
  return found;
}

}  // namespace netprof
