#include "report/report_writer.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "temp_dir.h"

namespace netprof {
namespace {

using netprof::testing::TempDir;
using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A report whose size varies with n, so rewrites are not all the same length.
json document(int n) {
  json routes = json::array();
  for (int i = 0; i < n % 200; ++i) routes.push_back({{"route", "/r" + std::to_string(i)}, {"count", n}});
  return {{"netprof", 1}, {"generation", n}, {"routes", routes}};
}

TEST(ReportWriter, StreamModeWritesOneDocumentPerLine) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const ReportWriter writer = ReportWriter::to_fd(fds[1]);
  EXPECT_EQ(writer.write(document(3)), "");
  EXPECT_EQ(writer.write(document(4)), "");
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);

  std::istringstream lines(out);
  std::string line;
  int seen = 0;
  while (std::getline(lines, line)) {
    EXPECT_EQ(json::parse(line).at("generation"), 3 + seen);
    ++seen;
  }
  EXPECT_EQ(seen, 2);
}

TEST(ReportWriter, StreamErrorsAreReturnedNotThrown) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  const std::string error = ReportWriter::to_fd(fds[1]).write(document(1));
  EXPECT_NE(error.find("cannot write report"), std::string::npos) << error;
}

TEST(ReportWriter, FileModeReplacesTheFileAndLeavesNoTemporaries) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("report.json");
  const ReportWriter writer = ReportWriter::to_file(path);
  EXPECT_EQ(writer.destination(), path);
  EXPECT_EQ(writer.write(document(150)), "");
  EXPECT_EQ(writer.write(document(2)), "");  // shorter: no tail of the older one may remain
  EXPECT_EQ(json::parse(read_file(path)), document(2));
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "report.json");
  }
  EXPECT_EQ(files, 1u);
}

TEST(ReportWriter, FileErrorsNameThePath) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("missing-dir/report.json");
  const std::string error = ReportWriter::to_file(path).write(document(1));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
}

TEST(ReportWriter, AReaderNeverSeesAPartialFile) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("report.json");
  const ReportWriter writer = ReportWriter::to_file(path);
  ASSERT_EQ(writer.write(document(0)), "");

  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      const std::string text = read_file(path);
      // Every read is one whole, valid document: parse throws on a torn or empty file.
      const json doc = json::parse(text);
      const int n = doc.at("generation").get<int>();
      ASSERT_EQ(doc.at("routes").size(), static_cast<size_t>(n % 200));
      reads.fetch_add(1);
    }
  });
  for (int n = 1; n <= 400 || reads.load() < 50; ++n) {
    ASSERT_EQ(writer.write(document(n)), "");
    if (n > 100000) break;
  }
  done = true;
  reader.join();
  EXPECT_GE(reads.load(), 50);
}

TEST(ReportWriter, OwnFdNamesWriteToTheFdItself) {
  // /dev/stdout & co. are this process's fds, even when they are sockets (which cannot be
  // opened by path): they are never resolved, replaced or reopened.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const ReportWriter writer = ReportWriter::to_file("/proc/self/fd/" + std::to_string(fds[1]));
  EXPECT_EQ(writer.check(), "");
  EXPECT_EQ(writer.write(document(5)), "");
  ::close(fds[1]);
  char buf[4096];
  const ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  ASSERT_GT(n, 0);
  EXPECT_EQ(json::parse(std::string(buf, static_cast<size_t>(n))).at("generation"), 5);
  EXPECT_EQ(ReportWriter::to_file("/dev/stdout").destination(), "/dev/stdout");
}

TEST(ReportWriter, FifoIsWrittenThroughAndAMissingReaderIsAnError) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("report.fifo");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const ReportWriter writer = ReportWriter::to_file(path);
  EXPECT_EQ(writer.check(), "");
  const std::string error = writer.write(document(1));
  EXPECT_NE(error.find("no process is reading it"), std::string::npos) << error;

  const int reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  EXPECT_EQ(writer.write(document(2)), "");
  EXPECT_EQ(writer.write(document(3)), "");
  char buf[8192];
  const ssize_t n = ::read(reader, buf, sizeof buf);
  ::close(reader);
  ASSERT_GT(n, 0);
  std::istringstream lines(std::string(buf, static_cast<size_t>(n)));
  std::string line;
  int seen = 0;
  while (std::getline(lines, line)) EXPECT_EQ(json::parse(line).at("generation"), 2 + seen++);
  EXPECT_EQ(seen, 2);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(ReportWriter, CheckRefusesDirectoriesAndMissingParents) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  EXPECT_NE(ReportWriter::to_file(dir.path().string()).check().find("is a directory"),
            std::string::npos);
  EXPECT_NE(ReportWriter::to_file(dir.file("no/r.json")).check().find("No such file"),
            std::string::npos);
  EXPECT_EQ(ReportWriter::to_file(dir.file("r.json")).check(), "");
  EXPECT_EQ(ReportWriter::to_file("relative-report.json").check(), "");
}

}  // namespace
}  // namespace netprof
