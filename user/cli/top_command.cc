#include "cli/top_command.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/flag_checks.h"
#include "export/http_client.h"

namespace netprof {
namespace {

struct TopOptions {
  std::string title = "netprof top";
  std::string admin = "127.0.0.1:9464";
  double interval_s = 1.0;
  std::string sort = "rate";
  bool once = false;
  bool hide_assets = false;
  size_t max_rows = 0;  // 0 = as many as fit (tty) or all (piped)
  std::string detail;   // "METHOD /route" (or "/route"): show its slow and failed requests
};

struct Row {
  std::string key;  // scope, method, route
  std::string method, route;
  nlohmann::json slow;  // the route's flight records (/stats "slow"), or null
  bool asset = false;
  uint64_t count = 0, errors = 0;
  double rate = 0, p50 = 0, p99 = 0;
  double success() const { return count ? 100.0 * static_cast<double>(count - errors) / static_cast<double>(count) : 100.0; }
};

// One "tls" entry of the report: a TLS server as the relay saw it (never decrypted).
struct TlsRow {
  std::string server_name, version, alpn;
  uint64_t port = 0, connections = 0, failures = 0;
  double p50 = 0, p99 = 0;  // handshake ms
};
// The TLS section shows at most this many entries (most connections first).
constexpr size_t kMaxTlsRows = 10;

struct Sort {
  char key;
  const char* name;
};
constexpr Sort kSorts[] = {{'c', "count"}, {'r', "rate"}, {'5', "p50"}, {'9', "p99"},
                           {'e', "errors"}, {'n', "route"}};

volatile sig_atomic_t g_stop = 0;

// Raw-ish terminal for single-key input; restored on every exit path.
class TerminalMode {
 public:
  TerminalMode() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);  // alternate screen, hide cursor
  }
  ~TerminalMode() {
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }

 private:
  termios saved_{};
  bool active_ = false;
};

int terminal_width() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 100;
}
int terminal_height() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  return 40;
}

std::string fit(std::string_view text, size_t width) {
  if (text.size() <= width) return std::string(text) + std::string(width - text.size(), ' ');
  if (width <= 1) return std::string(text.substr(0, width));
  return std::string(text.substr(0, width - 1)) + "~";
}

std::string num(double v, int decimals, int width) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%*.*f", width, decimals, v);
  return buf;
}

class Top {
 public:
  explicit Top(TopOptions o) : o_(std::move(o)) {
    for (const Sort& s : kSorts) {
      if (o_.sort == s.name) sort_ = s.key;
    }
  }

  // Reads /stats; false with `error` set when the admin API cannot be read.
  bool refresh(std::string& error) {
    // A token-protected admin API (--admin-token-file there): the same token from the env.
    std::vector<std::pair<std::string, std::string>> headers;
    if (const char* token = std::getenv("NETPROF_ADMIN_TOKEN"); token != nullptr && *token != '\0')
      headers.emplace_back("Authorization", std::string("Bearer ") + token);
    const HttpResult r = http_request(url_, "GET", {}, {}, 3000, headers);
    if (!r.ok()) {
      error = r.status ? "HTTP " + std::to_string(r.status) : r.error;
      return false;
    }
    try {
      return read_report(nlohmann::json::parse(r.body));
    } catch (const std::exception& e) {  // not JSON, or not the shape /stats has
      error = std::string("bad /stats JSON: ") + e.what();
      return false;
    }
  }

  bool read_report(nlohmann::json report) {  // by value: operator[] on a const json is UB
    const double uptime = report.value("uptime_s", 0.0);
    const double dt = have_previous_ ? uptime - previous_uptime_ : 0;
    std::map<std::string, uint64_t> counts;
    rows_.clear();
    total_rate_ = 0;
    for (const auto& j : report["routes"]) {
      Row row;
      row.method = j.value("method", "");
      row.route = j.value("route", "");
      row.asset = j.value("file", false);
      row.count = j.value("count", uint64_t{0});
      row.errors = j.value("errors", uint64_t{0});
      const nlohmann::json latency = j.value("latency_ms", nlohmann::json::object());
      row.p50 = latency.value("p50", 0.0);
      row.p99 = latency.value("p99", 0.0);
      const std::string key = std::to_string(j.value("scope", 0)) + " " + row.method + " " + row.route;
      row.key = key;
      if (j.contains("slow")) row.slow = j["slow"];
      counts[key] = row.count;
      if (dt > 0) {
        const auto prev = previous_counts_.find(key);
        const uint64_t before = prev == previous_counts_.end() ? 0 : prev->second;
        row.rate = static_cast<double>(row.count - std::min(before, row.count)) / dt;
      } else if (uptime > 0) {
        row.rate = static_cast<double>(row.count) / uptime;  // first look: the average so far
      }
      total_rate_ += row.rate;
      if (o_.hide_assets && row.asset) continue;
      rows_.push_back(std::move(row));
    }
    active_ = report["connections"].value("active", uint64_t{0});
    tls_.clear();
    for (const auto& j : report.value("tls", nlohmann::json::array())) {
      TlsRow t;
      t.server_name = j.value("server_name", "");
      t.version = j.value("version", "");
      t.alpn = j.value("alpn", "");
      t.port = j.value("port", uint64_t{0});
      t.connections = j.value("connections", uint64_t{0});
      t.failures = j.value("failures", uint64_t{0});
      const nlohmann::json hs = j.value("handshake_ms", nlohmann::json::object());
      t.p50 = hs.value("p50", 0.0);
      t.p99 = hs.value("p99", 0.0);
      tls_.push_back(std::move(t));
    }
    std::stable_sort(tls_.begin(), tls_.end(), [](const TlsRow& a, const TlsRow& b) {
      return a.connections > b.connections;
    });
    previous_counts_ = std::move(counts);
    previous_uptime_ = uptime;
    have_previous_ = true;
    sort_rows();
    return true;
  }

  void sort_rows() {
    std::stable_sort(rows_.begin(), rows_.end(), [this](const Row& a, const Row& b) {
      switch (sort_) {
        case 'c': return a.count > b.count;
        case '5': return a.p50 > b.p50;
        case '9': return a.p99 > b.p99;
        case 'e': return a.success() < b.success();
        case 'n': return a.route < b.route;
        default: return a.rate > b.rate || (a.rate == b.rate && a.count > b.count);
      }
    });
  }

  // The route the detail view shows: the open one, else the one named by --route.
  const Row* detail_row() const {
    for (const Row& r : rows_) {
      if (!detail_key_.empty() ? r.key == detail_key_
                               : !o_.detail.empty() && (o_.detail == r.method + " " + r.route ||
                                                        o_.detail == r.route)) {
        return &r;
      }
    }
    return nullptr;
  }
  bool detail_open() const { return !detail_key_.empty() || !o_.detail.empty(); }

  // Enter on a route: its slowest requests of this and the previous report window and its
  // latest failures (the flight recorder, /stats "slow"), each with its timing in ms from the
  // request's first byte: head, sent upstream, origin (to the response head), body.
  std::string render_detail(int width, bool interactive, const std::string& error) const {
    const size_t w = static_cast<size_t>(std::max(width, 40));
    std::string out;
    const Row* r = detail_row();
    out += fit("netprof top  " + o_.admin + "  " +
                   (r ? r->method + " " + r->route : std::string("(route not seen)")),
               w) +
           "\n";
    if (interactive) out += fit("keys: Enter or Esc back  q quit", w) + "\n";
    if (!error.empty()) out += fit("! " + error, w) + "\n";
    if (r == nullptr) return out;
    const std::string titles =
        "  REQUEST ID      STATUS   TOTALms  ORIGINms  HELDms   HEAD   SENT  NTH ";
    const size_t rest = w - std::min(titles.size(), w - 10);
    auto ms = [](const nlohmann::json& t, const char* k) {
      return t.contains(k) ? t[k].get<double>() : -1.0;
    };
    auto section = [&](const char* title, const char* field) {
      out += fit(std::string(title), w) + "\n";
      const nlohmann::json list = r->slow.is_object()
                                      ? r->slow.value(field, nlohmann::json::array())
                                      : nlohmann::json::array();
      if (list.empty()) {
        out += "  (none)\n";
        return;
      }
      out += titles + fit("TRACE ID / PEER", rest) + "\n";
      for (const auto& x : list) {
        const nlohmann::json t = x.value("timing_ms", nlohmann::json::object());
        const double head = ms(t, "request_head"), sent = ms(t, "request_sent"),
                     resp = ms(t, "response_head");
        const double from = sent >= 0 ? sent : head;
        std::string status = std::to_string(x.value("status", 0));
        if (x.contains("error")) status = x["error"].get<std::string>().substr(0, 7);
        std::string line =
            "  " + fit(x.value("request_id", std::string("-")), 14) + " " + fit(status, 7) +
            num(x.value("duration_ms", 0.0), 2, 9) +
            (resp >= 0 && from >= 0 ? num(resp - from, 2, 10) : std::string(10, ' ')) +
            num(x.value("relay_held_ms", 0.0), 3, 8) +
            (head >= 0 ? num(head, 2, 7) : std::string(7, ' ')) +
            (sent >= 0 ? num(sent, 2, 7) : std::string(7, ' ')) +
            num(x.value("nth_on_connection", 0), 0, 5) + " ";
        const std::string who = x.value("trace_id", std::string()) +
                                (x.contains("peer") ? " " + x["peer"].get<std::string>() : "");
        out += line + fit(who, rest) + "\n";
      }
    };
    section("SLOWEST (this report window)", "slow");
    section("SLOWEST (previous report window)", "previous_slow");
    section("LATEST FAILURES", "failures");
    return out;
  }

  // The whole screen as text: a header, the column titles and as many rows as fit.
  std::string render(int width, size_t max_rows, bool interactive, const std::string& error) const {
    if (detail_open()) return render_detail(width, interactive, error);
    width = std::max(width, 40);
    std::string out;
    const char* sort_name = "rate";
    for (const Sort& s : kSorts) {
      if (s.key == sort_) sort_name = s.name;
    }
    char head[256];
    std::snprintf(head, sizeof head, "%s%s%s  routes %zu  %.1f req/s  conns %llu  sort: %s",
                  o_.title.c_str(), o_.admin.empty() ? "" : "  ", o_.admin.c_str(), rows_.size(), total_rate_,
                  static_cast<unsigned long long>(active_), sort_name);
    out += fit(head, static_cast<size_t>(width)) + "\n";
    if (interactive) {
      out += fit("keys: c count  r req/s  5 p50  9 p99  e errors  n route  a assets  "
                 "j/k move  Enter slow requests  q quit",
                 static_cast<size_t>(width)) +
             "\n";
    }
    if (!error.empty()) out += fit("! " + error, static_cast<size_t>(width)) + "\n";
    // Numeric columns are dropped from the right end of this list as the terminal narrows.
    const bool wide = width >= 72;
    const bool medium = width >= 56;
    std::string titles = "   COUNT    REQ/S";
    if (medium) titles += "    OK%";
    titles += "  P50ms";
    if (wide) titles += "    P99ms";
    titles += " A ";
    const size_t route_width = static_cast<size_t>(width) - std::min(titles.size(), static_cast<size_t>(width) - 10);
    out += titles + fit("ROUTE", route_width) + "\n";
    size_t shown = 0;
    for (const Row& r : rows_) {
      if (max_rows != 0 && shown >= max_rows) break;
      std::string line = num(static_cast<double>(r.count), 0, 8) + num(r.rate, 1, 9);
      if (medium) line += num(r.success(), 1, 7);
      line += num(r.p50, 2, 7);
      if (wide) line += num(r.p99, 2, 9);
      line += r.asset ? " A " : "   ";
      if (interactive && r.key == cursor_key_) line[0] = '>';
      out += line + fit(r.method + " " + r.route, route_width) + "\n";
      ++shown;
    }
    if (shown < rows_.size()) out += "  ... " + std::to_string(rows_.size() - shown) + " more\n";
    if (!tls_.empty()) {
      // TLS: connections per server name; handshake times; never decrypted.
      const std::string tls_titles = "   CONNS   FAIL HSp50ms HSp99ms VERSION ";
      const size_t name_width =
          static_cast<size_t>(width) - std::min(tls_titles.size(), static_cast<size_t>(width) - 10);
      out += tls_titles + fit("TLS SERVER:PORT ALPN", name_width) + "\n";
      for (size_t i = 0; i < tls_.size() && i < kMaxTlsRows; ++i) {
        const TlsRow& t = tls_[i];
        std::string line = num(static_cast<double>(t.connections), 0, 8) +
                           num(static_cast<double>(t.failures), 0, 7) + num(t.p50, 2, 8) +
                           num(t.p99, 2, 8) + " " + fit(t.version, 7) + " ";
        const std::string name = (t.server_name.empty() ? "(no SNI)" : t.server_name) + ":" +
                                 std::to_string(t.port) + (t.alpn.empty() ? "" : " " + t.alpn);
        out += line + fit(name, name_width) + "\n";
      }
      if (tls_.size() > kMaxTlsRows)
        out += "  ... " + std::to_string(tls_.size() - kMaxTlsRows) + " more TLS\n";
    }
    return out;
  }

  // Moves the cursor by `step` rows (j/k, arrows); Enter opens the route under it.
  void move(int step) {
    if (rows_.empty()) return;
    size_t at = 0;
    for (size_t i = 0; i < rows_.size(); ++i)
      if (rows_[i].key == cursor_key_) at = i;
    if (cursor_key_.empty()) step = 0;
    const auto next = static_cast<long>(at) + step;
    cursor_key_ =
        rows_[static_cast<size_t>(std::clamp<long>(next, 0, static_cast<long>(rows_.size()) - 1))]
            .key;
  }
  void enter() {
    if (detail_open()) {
      detail_key_.clear();
      o_.detail.clear();
      return;
    }
    if (cursor_key_.empty()) move(0);
    detail_key_ = cursor_key_;
  }
  void back() {
    detail_key_.clear();
    o_.detail.clear();
  }

  bool key(char c) {
    if (c == 'j') {
      move(1);
      return true;
    }
    if (c == 'k') {
      move(-1);
      return true;
    }
    if (c == '\n' || c == '\r') {
      enter();
      return true;
    }
    for (const Sort& s : kSorts) {
      if (s.key == c) {
        sort_ = c;
        sort_rows();
        return true;
      }
    }
    if (c == 'a') {
      o_.hide_assets = !o_.hide_assets;
      return true;
    }
    return false;
  }

  Url url_;
  TopOptions o_;

 private:
  char sort_ = 'r';
  std::string cursor_key_;  // the row the cursor is on
  std::string detail_key_;  // the route whose slow requests are shown, or empty
  std::vector<Row> rows_;
  std::vector<TlsRow> tls_;
  std::map<std::string, uint64_t> previous_counts_;
  double previous_uptime_ = 0, total_rate_ = 0;
  bool have_previous_ = false;
  uint64_t active_ = 0;
};

// A screen for a file or pipe: no padding, each line ends where its text does.
std::string trimmed_lines(const std::string& screen) {
  std::string out;
  size_t start = 0;
  while (start < screen.size()) {
    const size_t end = screen.find('\n', start);
    std::string_view line(screen.data() + start, end - start);
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    out.append(line).push_back('\n');
    start = end + 1;
  }
  return out;
}

// A screen redrawn in place: home, each line cleared to its end, then clear below.
std::string redraw_frame(const std::string& screen) {
  std::string frame = "\x1b[H";
  size_t start = 0;
  while (start < screen.size()) {
    const size_t end = screen.find('\n', start);
    frame.append(screen, start, end - start).append("\x1b[K\r\n");
    start = end + 1;
  }
  frame += "\x1b[J";
  return frame;
}

int run_top(const TopOptions& o) {
  Top top(o);
  std::string error;
  if (!Url::parse(o.admin, top.url_, error)) {  // "host:port" or a URL; the path is /stats
    std::cerr << "netprof top: --admin: " << error << "\n";
    return 2;
  }
  top.url_.path = "/stats";

  if (o.once || !isatty(STDOUT_FILENO)) {
    if (!top.refresh(error)) {
      std::cerr << "netprof top: cannot read http://" << top.url_.host_header()
                << "/stats: " << error << " (is netprof running with --admin there?)\n";
      return 1;
    }
    const std::string text = trimmed_lines(
        top.render(isatty(STDOUT_FILENO) ? terminal_width() : 120, o.max_rows, false, {}));
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }

  struct sigaction sa{};
  // SIGWINCH only needs to interrupt poll() so that the next frame uses the new width.
  sa.sa_handler = [](int sig) {
    if (sig != SIGWINCH) g_stop = 1;
  };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGWINCH, &sa, nullptr);

  TerminalMode terminal;
  const auto interval = std::chrono::milliseconds(static_cast<int64_t>(o.interval_s * 1000));
  auto next_fetch = std::chrono::steady_clock::now();
  std::string last_error;
  while (!g_stop) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_fetch) {
      last_error.clear();
      if (!top.refresh(last_error)) last_error = "cannot read /stats: " + last_error;
      next_fetch = now + interval;
    }
    const int height = terminal_height();
    const size_t rows = o.max_rows ? o.max_rows : static_cast<size_t>(std::max(height - 5, 1));
    const std::string frame = redraw_frame(top.render(terminal_width(), rows, true, last_error));
    std::fwrite(frame.data(), 1, frame.size(), stdout);
    std::fflush(stdout);

    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_fetch - std::chrono::steady_clock::now());
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(wait.count(), 0))) > 0) {
      char keys[8] = {};
      const ssize_t n = ::read(STDIN_FILENO, keys, sizeof keys);
      const std::string_view in(keys, n > 0 ? static_cast<size_t>(n) : 0);
      if (in == "\x1b[A") {
        top.move(-1);
      } else if (in == "\x1b[B") {
        top.move(1);
      } else if (in == "\x1b") {
        top.back();
      } else if (!in.empty()) {
        const char c = in[0];
        if (c == 'q' || c == 'Q' || c == 3) break;
        if (top.key(c) && c == 'a') next_fetch = std::chrono::steady_clock::now();
      }
    }
  }
  return 0;
}

}  // namespace

struct ReportTable::Impl {
  Top top;
};

ReportTable::ReportTable(std::string title) : impl_(std::make_unique<Impl>(Impl{Top([&] {
                                                 TopOptions o;
                                                 o.title = std::move(title);
                                                 o.admin = "";
                                                 o.sort = "count";
                                                 return o;
                                               }())})) {}

ReportTable::~ReportTable() = default;

std::string ReportTable::text(const nlohmann::json& report, bool terminal) {
  impl_->top.read_report(report);
  if (!terminal) return trimmed_lines(impl_->top.render(120, 0, false, {}));
  // Room for the title, the column titles, "... more" and the cursor's line.
  const size_t rows = static_cast<size_t>(std::max(terminal_height() - 6, 1));
  return redraw_frame(impl_->top.render(terminal_width(), rows, false, {}));
}

void register_top_command(CLI::App& app) {
  auto o = std::make_shared<TopOptions>();
  auto* cmd = app.add_subcommand(
      "top", "Live per-route view of a running netprof (reads its admin API); one snapshot when piped");
  cmd->add_option("-a,--admin", o->admin, "Admin API of the netprof to watch (HOST:PORT or http://HOST:PORT)")
      ->capture_default_str();
  cmd->add_option("-i,--interval", o->interval_s, "Seconds between refreshes")
      ->check(finite_in(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--sort", o->sort, "Initial sort: count, rate, p50, p99, errors, route")
      ->check(CLI::IsMember({"count", "rate", "p50", "p99", "errors", "route"}))
      ->capture_default_str();
  cmd->add_flag("--once", o->once, "Print one snapshot and exit (also the behaviour when piped)");
  cmd->add_flag("--no-assets", o->hide_assets, "Hide static assets (images, css, js, ...)");
  cmd->add_option("--rows", o->max_rows, "Most routes shown (default: what fits, or all when piped)")
      ->check(whole_in(0, 1'000'000));
  cmd->add_option("--route", o->detail,
                  "Show this route's slowest and failed requests ('GET /api/search' or "
                  "'/api/search'), as Enter on it does");
  cmd->callback([o] { std::exit(run_top(*o)); });
}

}  // namespace netprof
