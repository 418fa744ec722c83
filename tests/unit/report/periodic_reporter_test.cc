#include "report/periodic_reporter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "../stats/exchange_builder.h"
#include "report/json_report.h"
#include "stats/route_store.h"
#include "temp_dir.h"

namespace netprof {
namespace {

using namespace netprof::testing;
using nlohmann::json;
using namespace std::chrono_literals;

json read_report(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

uint64_t total_count(const json& report) {
  uint64_t total = 0;
  for (const json& route : report.at("routes")) total += route.at("count").get<uint64_t>();
  return total;
}

// A store the test records into while the reporter's thread reads it.
struct LockedStore {
  std::mutex mu;
  RouteStore store{StoreLimits{}, nullptr, nullptr};
  void on_exchange(const Exchange& e) {
    std::lock_guard lock(mu);
    store.on_exchange(e);
  }
  ReportSource source() {
    return [this] {
      std::lock_guard lock(mu);
      return std::make_shared<const RouteTableSnapshot>(store.snapshot());
    };
  }
};

TEST(PeriodicReporter, StopWritesAFinalReportWithEverythingCounted) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("r.json");
  LockedStore store;
  // An hour: only stop() can produce a report, and stop() must not wait for the interval.
  PeriodicReporter reporter(store.source(), ReportWriter::to_file(path), ReporterOptions{1h, true});
  reporter.start();
  store.on_exchange(completed("/a", 200));
  store.on_exchange(completed("/b", 200));
  reporter.stop();
  EXPECT_EQ(reporter.reports_written(), 1u);
  const json report = read_report(path);
  EXPECT_EQ(report.at("netprof"), 1);
  EXPECT_EQ(total_count(report), 2u);
  reporter.stop();  // idempotent
  EXPECT_EQ(reporter.reports_written(), 1u);
}

TEST(PeriodicReporter, ReportsEveryIntervalThenAFinalOne) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("r.json");
  LockedStore store;
  store.on_exchange(completed("/a", 200));
  PeriodicReporter reporter(store.source(), ReportWriter::to_file(path), ReporterOptions{10ms, true});
  reporter.start();
  // Waits for periodic reports; the bound only turns a hang into a failure.
  for (int i = 0; i < 10000 && reporter.reports_written() < 3; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_GE(reporter.reports_written(), 3u);
  EXPECT_EQ(total_count(read_report(path)), 1u);
  store.on_exchange(completed("/a", 200));
  store.on_exchange(completed("/a", 200));
  const uint64_t before_stop = reporter.reports_written();
  reporter.stop();
  EXPECT_EQ(reporter.reports_written(), before_stop + 1);
  EXPECT_EQ(total_count(read_report(path)), 3u) << "the final report has the latest counts";
}

TEST(PeriodicReporter, ZeroIntervalMeansNoPeriodicReports) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  LockedStore store;
  PeriodicReporter reporter(store.source(), ReportWriter::to_file(dir.file("r.json")),
                            ReporterOptions{0ms, false});
  reporter.start();
  reporter.stop();
  EXPECT_EQ(reporter.reports_written(), 0u);
  EXPECT_FALSE(std::ifstream(dir.file("r.json")).good());
}

TEST(PeriodicReporter, WriteErrorsGoToStderrOnceAndReportingContinues) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("later/r.json");
  LockedStore store;
  PeriodicReporter reporter(store.source(), ReportWriter::to_file(path), ReporterOptions{0ms, true});

  ::testing::internal::CaptureStderr();
  EXPECT_NE(reporter.report_now(), "");
  EXPECT_NE(reporter.report_now(), "");
  std::filesystem::create_directory(dir.path() / "later");
  EXPECT_EQ(reporter.report_now(), "");
  const std::string err = ::testing::internal::GetCapturedStderr();

  EXPECT_NE(err.find("netprof: cannot write report to " + path), std::string::npos) << err;
  EXPECT_EQ(err.find("cannot write"), err.rfind("cannot write")) << "repeated errors are not repeated: " << err;
  EXPECT_NE(err.find("works again"), std::string::npos) << err;
  EXPECT_EQ(reporter.reports_written(), 1u);
  EXPECT_EQ(read_report(path).at("netprof"), 1);
}

}  // namespace
}  // namespace netprof
