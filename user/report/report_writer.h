// Where reports go: one JSON document per line on a stream (stdout), or a file that is
// replaced atomically so that a reader always sees a whole document.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace netprof {

class ReportWriter {
 public:
  static ReportWriter to_stdout();
  static ReportWriter to_fd(int fd);  // not owned; one document per line
  // Each write goes to a temporary file in the same directory, is fsync'ed, then renamed
  // over `path`.
  static ReportWriter to_file(std::string path);

  // Empty on success, otherwise a message naming the destination and the failing step.
  // Invalid UTF-8 (raw paths are bytes) is replaced, never an error.
  std::string write(const nlohmann::json& report) const;

  const std::string& destination() const { return destination_; }  // "stdout", or the path

 private:
  ReportWriter(int fd, std::string path, std::string destination);
  std::string write_file(const std::string& text) const;

  int fd_ = -1;       // stream mode when >= 0
  std::string path_;  // file mode when fd_ < 0
  std::string destination_;
};

// One line of JSON, as the writers emit it.
std::string serialize_report(const nlohmann::json& report);

}  // namespace netprof
