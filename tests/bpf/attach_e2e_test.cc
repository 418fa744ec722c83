// End to end: the real `netprof attach` binary profiles a simulated pod in place. A client
// outside the pod talks to the pod's address; the app inside sees unchanged bytes; netprof's
// final report has the right per-URL stats; after netprof exits the app is reached directly.
// Runs on the host and inside vmtest's VM (no tools beyond the netprof binary).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pod_fixture.h"

namespace netprof::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `netprof attach ...` as a child process with stderr captured to a file.
class NetprofProcess {
 public:
  NetprofProcess(std::vector<std::string> args, const std::string& dir) : stderr_path_(dir + "/stderr") {
    const char* bin = std::getenv("NETPROF_BIN");
    args.insert(args.begin(), bin != nullptr ? bin : NETPROF_BIN_PATH);
    pid_ = fork();
    if (pid_ == 0) {
      const int err = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, 2);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
  }
  ~NetprofProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  std::string stderr_text() const { return read_file(stderr_path_); }
  bool running() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  // SIGTERM, then the exit status (-1 if it did not exit normally).
  int stop() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  std::string stderr_path_;
  pid_t pid_ = -1;
};

class AttachEndToEnd : public ::testing::TestWithParam<bool> {};

TEST_P(AttachEndToEnd, ProfilesAPodInPlaceAndFailsOpenAfterExit) {
  NETPROF_NEED_BPF();
  const bool skmsg = GetParam();
  std::string error;
  auto pod = TestPod::create(error);
  ASSERT_TRUE(pod) << error;
  TestHttpServer app(pod->pod(), pod->home(), address(pod->pod_ip4 + ":0"));
  const SocketAddress app_address = address(pod->pod_ip4 + ":" + std::to_string(app.port()));

  char dir_template[] = "/tmp/netprof-attach-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string report_path = dir + "/report.json";
  std::vector<std::string> args = {"attach", "--netns", pod->pod_path(), "--inbound-ports",
                                   std::to_string(app.port()), "--report-file", report_path,
                                   "--report-interval", "0", "--admin", "off"};
  args.push_back(skmsg ? "--skmsg=on" : "--no-skmsg");
  {
    NetprofProcess netprof(args, dir);
    ASSERT_TRUE(wait_until([&] {
      return netprof.stderr_text().find("intercepting netns") != std::string::npos ||
             !netprof.running();
    }, std::chrono::seconds(20)));
    ASSERT_NE(netprof.stderr_text().find("intercepting netns"), std::string::npos)
        << netprof.stderr_text();

    // A client outside the pod, through the veth, as another host would.
    const std::string body = pattern_bytes(20000);
    for (const std::string path : {"/orders/17", "/orders/18", "/logo.png"}) {
      const std::string response =
          exchange_in(pod->client(), pod->home(), app_address, get_request(path), &error);
      EXPECT_NE(response.find("hello " + path), std::string::npos) << path << ": " << error;
    }
    const std::string post = get_request("/upload", body);
    EXPECT_NE(exchange_in(pod->client(), pod->home(), app_address, post, &error).find("hello"),
              std::string::npos) << error;

    // The app saw exactly what the client sent, from the pod's own address (the relay's
    // upstream), and nothing twice.
    const auto requests = app.requests();
    ASSERT_EQ(requests.size(), 4u);
    EXPECT_EQ(requests[0], get_request("/orders/17"));
    EXPECT_EQ(requests[3], post);
    EXPECT_EQ(netprof.stop(), 0) << netprof.stderr_text();
  }

  const auto report = nlohmann::json::parse(read_file(report_path));
  std::map<std::string, nlohmann::json> routes;
  for (const auto& r : report["routes"]) routes[r["method"].get<std::string>() + " " + r["route"].get<std::string>()] = r;
  ASSERT_TRUE(routes.count("GET /orders/{id}")) << report.dump();
  EXPECT_EQ(routes["GET /orders/{id}"]["count"], 2);
  EXPECT_EQ(routes["GET /orders/{id}"]["status"]["200"], 2);
  EXPECT_EQ(routes["GET /logo.png"]["file"], true);
  EXPECT_EQ(routes["POST /upload"]["request_body_bytes"], 20000);
  EXPECT_EQ(report["connections"]["accepted"], 4);
  EXPECT_EQ(report["connections"]["upstream_failed"], 0);

  // netprof is gone: the next connection reaches the app directly.
  EXPECT_NE(exchange_in(pod->client(), pod->home(), app_address, get_request("/direct"), &error)
                .find("hello /direct"), std::string::npos) << error;
  EXPECT_EQ(app.requests().size(), 5u);
  std::system(("rm -rf " + dir).c_str());
}

INSTANTIATE_TEST_SUITE_P(SkMsg, AttachEndToEnd, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "skmsg_on" : "skmsg_off"; });

}  // namespace
}  // namespace netprof::test
