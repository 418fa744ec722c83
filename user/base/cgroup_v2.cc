#include "base/cgroup_v2.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include <cerrno>
#include <cmath>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace netprof {
namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_mountinfo(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      const std::string octal = field.substr(i + 1, 3);
      char* end = nullptr;
      const long value = std::strtol(octal.c_str(), &end, 8);
      if (end == octal.c_str() + 3) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

Expected<std::string> canonical_dir(const std::string& path) {
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) return errno_error("cgroup " + path, errno);
  struct stat st {};
  if (stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) return Error{path + " is not a directory"};
  return std::string(resolved);
}

}  // namespace

Expected<std::string> find_cgroup2_mount(const std::string& mountinfo_text) {
  std::istringstream lines(mountinfo_text);
  std::string line;
  while (std::getline(lines, line)) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS"
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::vector<std::string> fields;
    for (std::string field; head >> field;) fields.push_back(field);
    if (fields.size() >= 5) return unescape_mountinfo(fields[4]);
  }
  return Error{"no cgroup2 file system is mounted (see /proc/self/mountinfo); "
               "mount one with: mount -t cgroup2 none /sys/fs/cgroup"};
}

Expected<std::string> cgroup2_mount_point() {
  return find_cgroup2_mount(read_file("/proc/self/mountinfo"));
}

Expected<std::string> own_cgroup_dir() {
  auto mount = cgroup2_mount_point();
  if (!mount) return mount.take_error();
  std::istringstream lines(read_file("/proc/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("0::", 0) == 0) return canonical_dir(*mount + line.substr(3));
  }
  return Error{"this process has no cgroup v2 membership in /proc/self/cgroup"};
}

Expected<std::string> resolve_cgroup_dir(const std::string& argument) {
  auto mount = cgroup2_mount_point();
  if (!mount) return mount.take_error();
  std::string candidate = argument;
  struct stat st {};
  if (argument.empty() || argument[0] != '/' || stat(argument.c_str(), &st) != 0)
    candidate = *mount + "/" + argument;
  auto dir = canonical_dir(candidate);
  if (!dir) return dir.take_error();
  struct statfs fs {};
  if (statfs(dir->c_str(), &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
    return Error{*dir + " is not in a cgroup v2 hierarchy (cgroup2 is mounted at " + *mount + ")"};
  return dir;
}

namespace {

bool is_cgroup2(const std::string& dir, long& fs_type) {
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) != 0) return false;
  fs_type = static_cast<long>(fs.f_type);
  return fs.f_type == CGROUP2_SUPER_MAGIC;
}

std::string fs_type_name(long type) {
  switch (type) {
    case TMPFS_MAGIC:
      return "tmpfs";
    case CGROUP_SUPER_MAGIC:
      return "cgroup v1";
    default: {
      char hex[32];
      snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(type));
      return std::string("file system type ") + hex;
    }
  }
}

}  // namespace

Expected<std::string> cgroup2_hierarchy_at(const std::string& dir) {
  if (dir.empty() || dir[0] != '/') return resolve_cgroup_dir(dir);
  auto canonical = canonical_dir(dir);
  if (!canonical) return canonical.take_error();
  long type = 0;
  if (is_cgroup2(*canonical, type)) return canonical;
  long unified_type = 0;
  if (is_cgroup2(*canonical + "/unified", unified_type)) return *canonical + "/unified";
  std::string hint;
  if (auto mount = cgroup2_mount_point()) hint = "; this process sees cgroup2 at " + *mount;
  return Error{*canonical + " is not a cgroup v2 hierarchy (" + fs_type_name(type) +
               ") and has no cgroup2 'unified' mount below it (hybrid layout)" + hint};
}

bool cgroup_is_within(const std::string& dir, const std::string& ancestor) {
  if (dir == ancestor) return true;
  if (ancestor == "/") return true;
  return dir.size() > ancestor.size() && dir.compare(0, ancestor.size(), ancestor) == 0 &&
         dir[ancestor.size()] == '/';
}

}  // namespace netprof

namespace netprof {

double cpus_of_cpu_max(const std::string& text) {
  std::istringstream in(text);
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || !(period > 0)) return 0;
  char* end = nullptr;
  const double q = std::strtod(quota.c_str(), &end);
  if (end == quota.c_str() || *end != '\0' || !(q > 0) || !std::isfinite(q)) return 0;
  return q / period;
}

double own_cgroup_cpu_limit() {
  auto mount = cgroup2_mount_point();
  auto dir = own_cgroup_dir();
  if (!mount || !dir) return 0;
  double limit = 0;
  std::string at = *dir;
  // Up to, not including, the mount: the root cgroup has no cpu.max.
  while (at.size() > mount->size() && cgroup_is_within(at, *mount)) {
    const double cpus = cpus_of_cpu_max(read_file((at + "/cpu.max").c_str()));
    if (cpus > 0 && (limit == 0 || cpus < limit)) limit = cpus;
    at = at.substr(0, at.rfind('/'));
  }
  return limit;
}

size_t usable_cpu_count() {
  size_t cpus = 1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  if (const double quota = own_cgroup_cpu_limit(); quota > 0)
    cpus = std::min(cpus, static_cast<size_t>(std::ceil(quota)));
  return std::max<size_t>(1, cpus);
}

}  // namespace netprof
