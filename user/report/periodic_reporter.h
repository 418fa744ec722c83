// Writes the report every interval on its own thread, and a final one at stop(), so a run
// that ends between two intervals still reports everything it counted.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "report/report_writer.h"

namespace netprof {

class ScopeRegistry;
struct RouteTableSnapshot;

// The statistics to report now (an immutable snapshot, shared: see pipeline/stats_hub.h).
using ReportSource = std::function<std::shared_ptr<const RouteTableSnapshot>()>;

struct ReporterOptions {
  std::chrono::milliseconds interval{5000};  // 0: no periodic reports (and no thread)
  bool final_report = true;                  // write one more at stop()
  const ScopeRegistry* scopes = nullptr;     // node mode: adds the per-pod grouping
  bool with_flight = false;                  // --report-slow: the flight records per route
  // The report as text (without the last newline); default: one line of JSON
  // (report_json_line). --format table prints a table instead.
  std::function<std::string(const RouteTableSnapshot&, int64_t generated_at_ms, double uptime_s,
                            const ScopeRegistry* scopes)>
      render{};
};

class PeriodicReporter {
 public:
  // `source` is called on the reporter's thread. Uptime is measured from `started`.
  PeriodicReporter(ReportSource source, ReportWriter writer, ReporterOptions options,
                   std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now());
  ~PeriodicReporter();  // stop()
  PeriodicReporter(const PeriodicReporter&) = delete;
  PeriodicReporter& operator=(const PeriodicReporter&) = delete;

  void start();
  // Wakes the thread at once, joins it and writes the final report. Idempotent. Returns the
  // final report's error (empty when it was written, or when there is none to write).
  std::string stop();

  // Builds and writes one report now. A failure is reported on stderr (once per distinct
  // message, and once more when writing works again) and returned; the caller keeps running.
  std::string report_now();
  uint64_t reports_written() const;

 private:
  void run();

  const ReportSource source_;
  const ReportWriter writer_;
  const ReporterOptions options_;
  const std::chrono::steady_clock::time_point started_;

  std::mutex mu_;  // guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  bool stopped_ = false;  // only touched by the thread calling stop()
  std::thread thread_;

  mutable std::mutex write_mu_;  // serialises report_now(); guards the two below
  std::string last_error_;
  uint64_t written_ = 0;
};

}  // namespace netprof
