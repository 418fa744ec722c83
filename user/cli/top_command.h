// `netprof top`: a live per-route view of a running netprof, read from its admin API.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace netprof {

// top's per-route table for the reports a profiling mode prints itself (--format table, and
// demo's closing summary): the same columns, request rates from the previous report.
class ReportTable {
 public:
  explicit ReportTable(std::string title);
  ~ReportTable();
  // One report as text: on a terminal a frame that redraws the screen in place, sized to it;
  // otherwise every route, lines trimmed.
  std::string text(const nlohmann::json& report, bool terminal);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void register_top_command(CLI::App& app);

}  // namespace netprof
