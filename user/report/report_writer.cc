#include "report/report_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <memory>
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

// The names that mean "this process's fd N": /dev/stdout, /dev/stderr, /dev/fd/N,
// /proc/self/fd/N. Returns -1 for any other path.
int own_fd_of(std::string_view path) {
  if (path == "/dev/stdout") return STDOUT_FILENO;
  if (path == "/dev/stderr") return STDERR_FILENO;
  for (std::string_view prefix : {"/dev/fd/", "/proc/self/fd/"}) {
    if (!path.starts_with(prefix)) continue;
    const std::string_view digits = path.substr(prefix.size());
    int fd = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) return fd;
  }
  return -1;
}

std::string parent_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
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
  if (const int fd = own_fd_of(path); fd >= 0) return ReportWriter(fd, {}, std::move(path));
  std::string destination = path;
  return ReportWriter(-1, std::move(path), std::move(destination));
}

std::string ReportWriter::check() const {
  if (fd_ >= 0) return {};
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return destination_ + ": is a directory (give a file name in it)";
    if (S_ISSOCK(st.st_mode)) return destination_ + ": is a socket (not supported)";
    return {};
  }
  if (errno != ENOENT) return destination_ + ": " + std::strerror(errno);
  struct stat lst {};
  if (::lstat(path_.c_str(), &lst) == 0) return {};  // a dangling symlink: its target is created
  const std::string dir = parent_of(path_);
  if (::stat(dir.c_str(), &st) != 0) return destination_ + ": " + dir + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return destination_ + ": " + dir + ": " + std::strerror(ENOTDIR);
  return {};
}

std::string ReportWriter::write(const nlohmann::json& report) const {
  std::string line = serialize_report(report);
  line.pop_back();
  return write_line(std::move(line));
}

std::string ReportWriter::write_line(std::string line) const {
  line.push_back('\n');
  const std::string& text = line;
  if (fd_ >= 0) {
    const int err = write_all(fd_, text);
    return err ? failure(destination_, "write", err) : std::string();
  }
  return write_file(text);
}

std::string ReportWriter::write_file(const std::string& text) const {
  struct stat st {};
  if (::lstat(path_.c_str(), &st) != 0) {
    if (errno != ENOENT) return failure(destination_, "lstat", errno);
    return write_replacing(path_, text);  // nothing there yet
  }
  if (S_ISREG(st.st_mode)) return write_replacing(path_, text);
  if (S_ISLNK(st.st_mode)) {
    // Keep the link; a regular file behind it is replaced like any other.
    struct stat target_st {};
    if (::stat(path_.c_str(), &target_st) == 0 && S_ISREG(target_st.st_mode)) {
      const std::unique_ptr<char, decltype(&::free)> real(::realpath(path_.c_str(), nullptr),
                                                          &::free);
      if (!real) return failure(destination_, "realpath", errno);
      return write_replacing(real.get(), text);
    }
  }
  if (S_ISDIR(st.st_mode)) return failure(destination_, "open", EISDIR);
  // A device, a FIFO, a symlink to one of them, or a dangling symlink: replacing it would
  // destroy something that is not ours (the host's /dev/null, a reader's FIFO).
  return write_through(text);
}

std::string ReportWriter::write_through(const std::string& text) const {
  // O_NONBLOCK so that a FIFO nobody reads is an error (ENXIO) rather than a reporter stuck
  // forever; the writes themselves block, like writes to stdout.
  const int fd =
      ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (err == ENXIO) {
      return "cannot write report to " + destination_ + ": open: no process is reading it (" +
             std::strerror(err) + ")";
    }
    return failure(destination_, "open", err);
  }
  if (const int flags = ::fcntl(fd, F_GETFL); flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  int err = write_all(fd, text);
  const char* step = err ? "write" : nullptr;
  if (::close(fd) != 0 && !step) {
    step = "close";
    err = errno;
  }
  return step ? failure(destination_, step, err) : std::string();
}

std::string ReportWriter::write_replacing(const std::string& target,
                                          const std::string& text) const {
  // Same directory as the target, so rename() stays within one filesystem and is atomic.
  const std::string temp = target + ".tmp." + std::to_string(::getpid());
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
  if (!step && ::rename(temp.c_str(), target.c_str()) != 0) {
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
