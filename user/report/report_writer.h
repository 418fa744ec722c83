// Where reports go: one JSON document per line on a stream (stdout), or a path.
//
// What a path gets depends on what is there when each report is written:
// - nothing, or a regular file: the report goes to a temporary file in the same directory that
//   is fsync'ed and renamed over the path, so a reader always sees one whole document;
// - a symlink to a regular file: the same, on the file it points to; the link is kept;
// - anything else that is not a directory (a device such as /dev/null, a FIFO, a symlink to
//   one, a dangling symlink): written through, one document per line; nothing is replaced;
// - /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N: the process's own fd N (also when it
//   is a socket, which cannot be opened by path).
// The path is looked at anew for each report, so moving or deleting the file (log rotation)
// needs no signal: the next report creates it again.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace netprof {

class ReportWriter {
 public:
  static ReportWriter to_stdout();
  static ReportWriter to_fd(int fd);  // not owned; one document per line
  static ReportWriter to_file(std::string path);

  // Empty when reports can go to the writer's destination as far as can be told before the
  // first one (the directory exists, the path is not a directory or a socket); otherwise a
  // message naming the path and what is wrong with it.
  std::string check() const;

  // Empty on success, otherwise a message naming the destination and the failing step.
  // Invalid UTF-8 (raw paths are bytes) is replaced, never an error.
  std::string write(const nlohmann::json& report) const;
  // The same for a document already written as one line of JSON (no newline).
  std::string write_line(std::string line) const;

  const std::string& destination() const { return destination_; }  // "stdout", or the path

 private:
  ReportWriter(int fd, std::string path, std::string destination);
  std::string write_file(const std::string& text) const;
  std::string write_replacing(const std::string& target, const std::string& text) const;
  std::string write_through(const std::string& text) const;

  int fd_ = -1;       // stream mode when >= 0
  std::string path_;  // file mode when fd_ < 0
  std::string destination_;
};

// One line of JSON, as the writers emit it.
std::string serialize_report(const nlohmann::json& report);

}  // namespace netprof
