#include "node/pod_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <set>

namespace netprof {
namespace {

constexpr uint32_t kWatchMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR;

using Clock = std::chrono::steady_clock;

}  // namespace

PodWatcher::PodWatcher(std::string root, std::chrono::milliseconds rescan_interval,
                       ScanHandler on_scan)
    : root_(std::move(root)), interval_(rescan_interval), on_scan_(std::move(on_scan)) {}

PodWatcher::~PodWatcher() { stop(); }

Status PodWatcher::start() {
  inotify_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_.valid()) return errno_error("inotify_init1", errno);
  wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_.valid()) return errno_error("eventfd", errno);
  if (inotify_add_watch(inotify_.get(), root_.c_str(), kWatchMask) < 0)
    return errno_error("cannot watch the cgroup root " + root_, errno);
  scan();
  thread_ = std::thread([this] { run(); });
  return ok_status();
}

void PodWatcher::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = write(wake_.get(), &one, sizeof one);
  thread_.join();
}

void PodWatcher::rescan_within(std::chrono::milliseconds delay) {
  next_scan_ = std::min(next_scan_, Clock::now() + delay);
}

void PodWatcher::scan() {
  next_scan_ = Clock::now() + interval_;
  PodScan result = scan_pod_cgroups(root_);
  // Watch every directory that can gain pods or containers. Adding a watch twice returns the
  // same descriptor, so this only costs a syscall per directory; removed directories drop
  // their watches by themselves (IN_IGNORED).
  std::set<std::string> watched;
  for (const auto& [wd, dir] : watches_) watched.insert(dir);
  for (const std::string& dir : result.watch_dirs) {
    if (watched.count(dir) != 0) continue;
    const int wd = inotify_add_watch(inotify_.get(), dir.c_str(), kWatchMask);
    if (wd >= 0) watches_[wd] = dir;
  }
  on_scan_(result);
}

void PodWatcher::drain_events(bool& changed) {
  alignas(inotify_event) char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = read(inotify_.get(), buffer, sizeof buffer);
    if (n <= 0) return;  // EAGAIN: drained
    for (ssize_t off = 0; off < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + off);
      if (event->mask & IN_IGNORED) watches_.erase(event->wd);
      if (event->mask & (IN_ISDIR | IN_Q_OVERFLOW)) changed = true;
      off += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
  }
}

void PodWatcher::run() {
  while (!stopping_.load()) {
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_scan_ - Clock::now());
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    const int timeout = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
    const int ready = poll(fds, 2, timeout);
    if (stopping_.load()) return;
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      bool changed = false;
      drain_events(changed);
      // A pod appears as a burst of mkdirs (pod, then containers): let the burst settle.
      if (changed) rescan_within(kDebounce);
    }
    if (Clock::now() >= next_scan_) scan();
  }
}

}  // namespace netprof
