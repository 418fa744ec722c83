#include "report/report_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <string_view>
#include <utility>

namespace netprof {
namespace {

// Writes everything, across short writes and signals. Returns 0 or an errno.
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

std::string failure(const std::string& destination, const char* step, int err) {
  return "cannot write report to " + destination + ": " + step + ": " + std::strerror(err);
}

}  // namespace

std::string serialize_report(const nlohmann::json& report) {
  std::string text = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  return text;
}

ReportWriter::ReportWriter(int fd, std::string path, std::string destination)
    : fd_(fd), path_(std::move(path)), destination_(std::move(destination)) {}

ReportWriter ReportWriter::to_stdout() { return ReportWriter(STDOUT_FILENO, {}, "stdout"); }

ReportWriter ReportWriter::to_fd(int fd) {
  return ReportWriter(fd, {}, "file descriptor " + std::to_string(fd));
}

ReportWriter ReportWriter::to_file(std::string path) {
  std::string destination = path;
  return ReportWriter(-1, std::move(path), std::move(destination));
}

std::string ReportWriter::write(const nlohmann::json& report) const {
  const std::string text = serialize_report(report);
  if (fd_ >= 0) {
    const int err = write_all(fd_, text);
    return err ? failure(destination_, "write", err) : std::string();
  }
  return write_file(text);
}

std::string ReportWriter::write_file(const std::string& text) const {
  // Same directory as the target, so rename() stays within one filesystem and is atomic.
  const std::string temp = path_ + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failure(destination_, ("create " + temp).c_str(), errno);

  const char* step = nullptr;
  int err = write_all(fd, text);
  if (err) {
    step = "write";
  } else if (::fsync(fd) != 0) {
    step = "fsync";
    err = errno;
  }
  if (::close(fd) != 0 && !step) {
    step = "close";
    err = errno;
  }
  if (!step && ::rename(temp.c_str(), path_.c_str()) != 0) {
    step = "rename";
    err = errno;
  }
  if (step) {
    ::unlink(temp.c_str());
    return failure(destination_, step, err);
  }
  return {};
}

}  // namespace netprof
