#include "report/report_writer.h"

#include <gtest/gtest.h>
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

}  // namespace
}  // namespace netprof
