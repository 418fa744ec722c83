// Where cgroup v2 lives on this host and which cgroup a path or this process means. The
// mount point is read from /proc/self/mountinfo, never assumed (/sys/fs/cgroup on most
// Kubernetes nodes, /sys/fs/cgroup/unified on hybrid hosts).
#pragma once

#include <cstddef>
#include <string>

#include "base/expected.h"

namespace netprof {

// The first cgroup2 mount in `mountinfo_text` (the contents of /proc/self/mountinfo).
Expected<std::string> find_cgroup2_mount(const std::string& mountinfo_text);
Expected<std::string> cgroup2_mount_point();

// The cgroup v2 directory of this process (mount point + the "0::" line of /proc/self/cgroup).
Expected<std::string> own_cgroup_dir();

// A user's --cgroup argument as a canonical directory: an existing directory under the
// cgroup2 mount, or a path relative to that mount ("kubepods/pod123/...").
Expected<std::string> resolve_cgroup_dir(const std::string& argument);

// The cgroup v2 hierarchy a node's cgroup tree offers at `dir` (canonical): `dir` itself
// when it is cgroup2, else its `unified` child on a hybrid host (cgroup v1 controllers in
// dir/<controller>, cgroup2 in dir/unified, as systemd mounts it). A host's /sys/fs/cgroup
// mounted into a container (the DaemonSet's /host/sys/fs/cgroup) may be either. A relative
// `dir` is taken below this process's cgroup2 mount, as resolve_cgroup_dir does.
Expected<std::string> cgroup2_hierarchy_at(const std::string& dir);

// The CPUs a cgroup's cpu.max ("QUOTA PERIOD" or "max PERIOD") lets it use: QUOTA/PERIOD, or
// 0 for "max" (no limit) and for text that is not a cpu.max line.
double cpus_of_cpu_max(const std::string& cpu_max_text);

// The CPUs this process's cgroup quota lets it use: the smallest cpu.max limit of its cgroup
// v2 directory and every ancestor below the mount (quotas nest); 0 = no limit, or no cgroup2.
double own_cgroup_cpu_limit();

// How many CPUs netprof may use: those in its affinity mask (sched_getaffinity), fewer if
// the cgroup quota allows fewer (rounded up: 1.5 CPUs may keep 2 threads busy part time); at
// least 1.
size_t usable_cpu_count();

// True if `dir` is `ancestor` or below it (both canonical).
bool cgroup_is_within(const std::string& dir, const std::string& ancestor);

}  // namespace netprof
