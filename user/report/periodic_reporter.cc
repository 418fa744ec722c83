#include "report/periodic_reporter.h"

#include <cstdio>
#include <utility>

#include "base/clock.h"
#include "report/json_report.h"
#include "stats/route_store.h"

namespace netprof {

PeriodicReporter::PeriodicReporter(ReportSource source, ReportWriter writer,
                                   ReporterOptions options,
                                   std::chrono::steady_clock::time_point started)
    : source_(std::move(source)), writer_(std::move(writer)), options_(options), started_(started) {}

PeriodicReporter::~PeriodicReporter() { stop(); }

void PeriodicReporter::start() {
  if (thread_.joinable() || stopped_ || options_.interval.count() <= 0) return;
  thread_ = std::thread([this] { run(); });
}

std::string PeriodicReporter::stop() {
  if (stopped_) return {};
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  return options_.final_report ? report_now() : std::string();
}

void PeriodicReporter::run() {
  auto next = std::chrono::steady_clock::now() + options_.interval;
  std::unique_lock lock(mu_);
  while (!wake_.wait_until(lock, next, [this] { return stopping_; })) {
    lock.unlock();
    report_now();
    lock.lock();
    // Keep the cadence, but after a stall do not fire a burst of catch-up reports.
    next += options_.interval;
    if (const auto now = std::chrono::steady_clock::now(); next <= now) next = now + options_.interval;
  }
}

std::string PeriodicReporter::report_now() {
  using namespace std::chrono;
  const int64_t now_ms = unix_ms();
  const double uptime_s = duration<double>(steady_clock::now() - started_).count();
  const std::shared_ptr<const RouteTableSnapshot> table = source_();
  std::string line = options_.render ? options_.render(*table, now_ms, uptime_s, options_.scopes)
                                     : report_json_line(*table, now_ms, uptime_s, options_.scopes,
                                                        options_.with_flight);

  std::lock_guard lock(write_mu_);
  std::string error = writer_.write_line(std::move(line));
  if (error.empty()) {
    ++written_;
    if (!last_error_.empty()) {
      std::fprintf(stderr, "netprof: writing reports to %s works again\n",
                   writer_.destination().c_str());
      last_error_.clear();
    }
  } else if (error != last_error_) {
    std::fprintf(stderr, "netprof: %s (still running; will retry at the next report)\n",
                 error.c_str());
    last_error_ = error;
  }
  return error;
}

uint64_t PeriodicReporter::reports_written() const {
  std::lock_guard lock(write_mu_);
  return written_;
}

}  // namespace netprof
