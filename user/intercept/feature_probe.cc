#include "intercept/feature_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/cgroup_v2.h"
#include "intercept/netns.h"
#include "intercept/skmsg_probe.h"
#include "base/unique_fd.h"

namespace netprof {
namespace {

constexpr unsigned kIn = static_cast<unsigned>(Need::kInbound);
constexpr unsigned kOut = static_cast<unsigned>(Need::kOutbound);
constexpr unsigned kMsg = static_cast<unsigned>(Need::kSkMsg);

std::string errno_text(int err) { return err ? std::strerror(err) : "not supported"; }

// Effective capabilities from /proc/self/status (no libcap dependency).
unsigned long long effective_caps() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

Feature prog_type(const char* name, bpf_prog_type type, const char* min, unsigned needed,
                  const char* use) {
  const int result = libbpf_probe_bpf_prog_type(type, nullptr);
  return {name, min, needed, result == 1, result == 1 ? use : errno_text(-result), ""};
}

Feature map_type(const char* name, bpf_map_type type, const char* min, unsigned needed,
                 const char* use) {
  const int result = libbpf_probe_bpf_map_type(type, nullptr);
  return {name, min, needed, result == 1, result == 1 ? use : errno_text(-result), ""};
}

// Whether programs of `type` may call helper `id`. Not libbpf_probe_bpf_helper: libbpf 1.1
// looks for "unknown func" in the verifier log, but kernels since 6.2 say "program of this
// type cannot use helper", so it answered "yes" for every helper there. A one-call program
// (ctx in r1) is loaded; a verifier complaint about anything but the helper itself (its
// arguments) still means the helper is there.
int probe_helper(bpf_prog_type type, bpf_func_id id) {
  bpf_attach_type attach = static_cast<bpf_attach_type>(0);
  if (type == BPF_PROG_TYPE_SK_LOOKUP) attach = BPF_SK_LOOKUP;
  if (type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR) attach = BPF_CGROUP_INET4_CONNECT;
  const bpf_insn code[] = {
      {BPF_JMP | BPF_CALL, 0, 0, 0, static_cast<int32_t>(id)},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  char log[4096] = {};
  LIBBPF_OPTS(bpf_prog_load_opts, options, .expected_attach_type = attach, .log_level = 1,
              .log_size = sizeof(log), .log_buf = log);
  UniqueFd prog(bpf_prog_load(type, "netprof_probe", "GPL", code, 3, &options));
  if (prog.valid()) return 1;
  if (errno == EPERM) return -EPERM;
  if (std::strstr(log, "cannot use helper") || std::strstr(log, "unknown func") ||
      std::strstr(log, "invalid func"))
    return 0;
  return 1;
}

Feature helper(const char* name, bpf_prog_type type, bpf_func_id id, const char* min,
               unsigned needed, const char* use) {
  const int result = probe_helper(type, id);
  return {name, min, needed, result == 1,
          result == 1 ? use : "missing for this program type (" + errno_text(-result) + ")",
          ""};
}

// Loads "return 1" of `type` and creates a bpf_link to `target_fd`, then drops both.
// The momentary program allows everything, so attaching it changes nothing.
int try_link(bpf_prog_type type, bpf_attach_type attach, int target_fd) {
  const bpf_insn code[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, options, .expected_attach_type = attach);
  UniqueFd prog(bpf_prog_load(type, "netprof_probe", "GPL", code, 2, &options));
  if (!prog.valid()) return errno;
  UniqueFd link(bpf_link_create(prog.get(), target_fd, attach, nullptr));
  return link.valid() ? 0 : errno;
}

// What this process may do: capabilities; BTF is informational.
void add_process_features(std::vector<Feature>& f) {
  const unsigned long long caps = effective_caps();
  const bool sys_admin = caps & (1ull << 21);
  const bool net_admin = caps & (1ull << 12);
  const bool cap_bpf = caps & (1ull << 39);
  f.push_back({"privileges (CAP_SYS_ADMIN, or CAP_BPF+CAP_NET_ADMIN; setns needs CAP_SYS_ADMIN)",
               "-", kIn | kOut | kMsg, sys_admin || (cap_bpf && net_admin),
               sys_admin ? "CAP_SYS_ADMIN" : (cap_bpf && net_admin ? "CAP_BPF+CAP_NET_ADMIN"
                                                                   : "run as root"),
               ""});

  struct stat st {};
  f.push_back({"BTF (/sys/kernel/btf/vmlinux)", "5.4", 0,
               stat("/sys/kernel/btf/vmlinux", &st) == 0,
               "not required: netprof's programs use the stable uapi context structs", ""});
}

// Program types, helpers and maps, each loaded or created for real.
void add_program_features(std::vector<Feature>& f) {
  f.push_back(prog_type("sk_lookup program", BPF_PROG_TYPE_SK_LOOKUP, "5.9", kIn,
                        "steers inbound connections to the relay"));
  f.push_back(helper("bpf_sk_assign in sk_lookup", BPF_PROG_TYPE_SK_LOOKUP, BPF_FUNC_sk_assign,
                     "5.9", kIn, "hands a connection to the relay listener"));
  f.push_back(map_type("SOCKHASH", BPF_MAP_TYPE_SOCKHASH, "4.18", kIn | kMsg,
                       "holds every pod's relay listeners (by netns cookie) and the sk_msg "
                       "peers"));
  {
    // No kernel so far lets sk_lookup read its netns cookie, so each pod's netns gets its
    // own copy of the small sk_lookup program with its cookie as an immediate.
    Feature cookie = helper("bpf_get_netns_cookie in sk_lookup", BPF_PROG_TYPE_SK_LOOKUP,
                            BPF_FUNC_get_netns_cookie, "-", 0, "");
    cookie.detail = cookie.available
                        ? "available, not needed: netprof gives each pod its own sk_lookup copy"
                        : "missing (in every kernel so far): each pod gets its own copy of the "
                          "sk_lookup program (a few KiB), everything else is shared";
    f.push_back(cookie);
  }
  f.push_back(prog_type("cgroup sock_addr (connect4/connect6)",
                        BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "4.17", kOut,
                        "rewrites outbound connects to the relay"));
  f.push_back(helper("bpf_get_netns_cookie in cgroup sock_addr",
                     BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_netns_cookie, "5.7", kOut,
                     "finds the pod of a connecting socket (pods map)"));
  f.push_back(prog_type("sock_ops program", BPF_PROG_TYPE_SOCK_OPS, "4.13", kOut | kMsg,
                        "records original destinations; fills the sk_msg peer table"));
  f.push_back(helper("bpf_get_netns_cookie in sock_ops", BPF_PROG_TYPE_SOCK_OPS,
                     BPF_FUNC_get_netns_cookie, "5.15", kOut | kMsg,
                     "finds the pod of a socket (pods map)"));
  f.push_back(helper("bpf_get_socket_cookie in sock_ops", BPF_PROG_TYPE_SOCK_OPS,
                     BPF_FUNC_get_socket_cookie, "5.0", kOut,
                     "joins a connect to its established socket"));
  f.push_back(map_type("SOCKHASH", BPF_MAP_TYPE_SOCKHASH, "4.18", kMsg,
                       "holds local peer sockets for sk_msg"));
  f.push_back(prog_type("sk_msg program", BPF_PROG_TYPE_SK_MSG, "4.17", kMsg,
                        "redirects payload between local peers"));
  f.push_back(helper("bpf_msg_redirect_hash", BPF_PROG_TYPE_SK_MSG, BPF_FUNC_msg_redirect_hash,
                     "4.18", kMsg, "the sk_msg redirect itself"));
  f.push_back(helper("bpf_get_netns_cookie in sk_msg", BPF_PROG_TYPE_SK_MSG,
                     BPF_FUNC_get_netns_cookie, "5.15", kMsg,
                     "keys the peer table by netns (loopback tuples repeat across pods)"));
  f.push_back(prog_type("cgroup getsockopt program", BPF_PROG_TYPE_CGROUP_SOCKOPT, "5.3", 0,
                        "not used: netprof hands original destinations over a map"));
}

// Attachments (bpf_link for netns and cgroups: what makes kill -9 fail open), the cgroup v2
// mount, netns cookies of sockets, bpffs.
void add_attachment_features(std::vector<Feature>& f) {
  {
    Feature link{"bpf_link for netns (sk_lookup)", "5.9", kIn, false, "", ""};
    auto netns = Netns::open("");
    const int err = netns ? try_link(BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, netns->fd()) : EBADF;
    link.available = err == 0;
    link.detail = err == 0 ? "sk_lookup detaches when netprof exits" : errno_text(err);
    f.push_back(link);
  }
  auto mount = cgroup2_mount_point();
  f.push_back({"cgroup v2 mount (/proc/self/mountinfo)", "4.5", kOut | kMsg, mount.ok(),
               mount ? "mounted at " + *mount : mount.error(), ""});
  {
    Feature link{"bpf_link for cgroups", "5.7", kOut | kMsg, false, "no cgroup v2 mount", ""};
    auto own = own_cgroup_dir();
    if (own) {
      UniqueFd dir(open(own->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      const int err = dir.valid() ? try_link(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                                             BPF_CGROUP_INET4_CONNECT, dir.get())
                                  : errno;
      link.available = err == 0;
      link.detail = err == 0 ? "cgroup programs detach when netprof exits" : errno_text(err);
    }
    f.push_back(link);
  }
  {
    UniqueFd probe(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const bool cookie = probe.valid() && socket_netns_cookie(probe.get()) != 0;
    f.push_back({"SO_NETNS_COOKIE", "5.14", kIn | kOut | kMsg, cookie,
                 cookie ? "keys each pod's entries in the node's shared BPF maps"
                        : "missing: netprof keys each pod's BPF map entries by its netns cookie",
                 ""});
  }
  {
    struct statfs fs {};
    const bool bpffs = statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
    f.push_back({"bpffs at /sys/fs/bpf", "4.4", 0, bpffs,
                 "not required: netprof pins nothing, so a crash leaves nothing behind", ""});
  }
}

// Last: an experiment with netprof's own programs, meaningful only if they can load (every
// feature sk_msg needs is in `f` already).
void add_skmsg_correctness(std::vector<Feature>& f) {
  {
    Feature correct{"sk_msg redirect keeps FIONREAD and readiness correct", "-", kMsg, false,
                    "", kSkMsgFionreadFix};
    const bool can_try = std::all_of(f.begin(), f.end(), [](const Feature& feature) {
      return feature.available || !(feature.needed_by & kMsg);
    });
    if (can_try) {
      const SkMsgProbe& probe = skmsg_fionread_verdict();
      correct.available = probe.usable();
      correct.detail = probe.summary();
    } else {
      correct.detail = "not tested: sk_msg itself is not available";
    }
    f.push_back(correct);
  }
}

}  // namespace

FeatureReport probe_features() {
  FeatureReport report;
  utsname name{};
  if (uname(&name) == 0) report.kernel = name.release;
  std::vector<Feature>& f = report.features;
  add_process_features(f);
  add_program_features(f);
  add_attachment_features(f);
  add_skmsg_correctness(f);

  auto all_there = [&](unsigned need) {
    for (const Feature& feature : f)
      if ((feature.needed_by & need) && !feature.available) return false;
    return true;
  };
  report.inbound = all_there(kIn);
  report.outbound = all_there(kOut);
  report.skmsg = all_there(kMsg);
  return report;
}

}  // namespace netprof
