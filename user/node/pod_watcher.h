// Follows the pods of a node: inotify on the directories of the cgroup tree that can hold pods
// (a mkdir/rmdir there triggers a rescan within kDebounce), plus a full rescan every interval
// in case an event was missed (queue overflow, a watch added just after a mkdir). Each scan
// result goes to `on_scan` on the watcher's own thread; `on_tick` runs there after each wake.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "base/expected.h"
#include "base/unique_fd.h"
#include "node/pod_scan.h"

namespace netprof {

class PodWatcher {
 public:
  static constexpr std::chrono::milliseconds kDebounce{100};
  using ScanHandler = std::function<void(const PodScan&)>;

  PodWatcher(std::string root, std::chrono::milliseconds rescan_interval, ScanHandler on_scan);
  ~PodWatcher();  // stop()
  PodWatcher(const PodWatcher&) = delete;
  PodWatcher& operator=(const PodWatcher&) = delete;

  // Scans once on the calling thread, then follows changes on a thread of its own.
  Status start();
  void stop();
  // Asks for a rescan within `delay` (a pod whose processes have not joined its cgroup yet).
  // Watcher thread only (from on_scan).
  void rescan_within(std::chrono::milliseconds delay);
  size_t watch_count() const { return watches_.size(); }

 private:
  void run();
  void scan();
  void drain_events(bool& changed);

  const std::string root_;
  const std::chrono::milliseconds interval_;
  ScanHandler on_scan_;
  UniqueFd inotify_;
  UniqueFd wake_;                       // eventfd: stop()
  std::map<int, std::string> watches_;  // inotify wd -> directory
  std::chrono::steady_clock::time_point next_scan_{};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace netprof
