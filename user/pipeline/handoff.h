// Double buffering between one owner thread (a relay worker) and one collector (the stats
// aggregator), with no lock: the owner records into active(); publish() hands it over and
// continues in the other buffer, which the collector gave back empty. While the collector
// still holds a buffer, publish() returns false at once and the owner keeps recording where it
// was: the owner never waits, whatever the collector does.
#pragma once

#include <atomic>
#include <utility>

namespace netprof {

template <class T>
class Handoff {
 public:
  template <class... Args>
  explicit Handoff(const Args&... args) : a_(args...), b_(args...) {}
  Handoff(const Handoff&) = delete;
  Handoff& operator=(const Handoff&) = delete;

  // Owner thread only.
  T& active() { return *active_; }

  // Owner thread: hands the active buffer to the collector if the collector has given the
  // other one back; otherwise does nothing. Never blocks.
  bool publish() {
    if (handed_over_.load(std::memory_order_acquire)) return false;
    std::swap(active_, spare_);  // spare_ (the filled one) belongs to the collector from here
    handed_over_.store(true, std::memory_order_release);
    return true;
  }

  // Whether a filled buffer waits for the collector. Any thread.
  bool pending() const { return handed_over_.load(std::memory_order_acquire); }

  // Collector thread (one at a time): runs fn on the handed-over buffer, which fn must leave
  // empty for reuse, then gives it back. Returns false when nothing was handed over.
  template <class Fn>
  bool collect(Fn&& fn) {
    if (!handed_over_.load(std::memory_order_acquire)) return false;
    fn(*spare_);
    handed_over_.store(false, std::memory_order_release);
    return true;
  }

 private:
  T a_, b_;
  T* active_ = &a_;  // written by the owner only while handed_over_ is false
  T* spare_ = &b_;
  std::atomic<bool> handed_over_{false};
};

}  // namespace netprof
