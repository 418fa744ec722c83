#!/usr/bin/env python3
"""netprof's real image on a real container runtime, run the way the DaemonSet runs it.

A dockerd of its own (Debian's docker.io 20.10 with containerd 1.6 and runc 1.1; no iptables,
no forwarding, no masquerading: host -> container traffic needs none) builds a Debian 12 base
image locally (mmdebstrap + docker import: no registry is reachable), the netprof image from
deploy/Dockerfile and a tiny pod image (busybox httpd). "Pods" are containers whose cgroup
parents follow the kubelet's layouts: cgroupfs kubepods/{besteffort,burstable,}/pod<uid> and
the systemd naming kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice (made by
Docker's cgroupfs driver, which takes any path: the container directory is then the bare id,
as with cgroupfs), all three QoS classes, one pod with a pause container, one hostNetwork pod.
netprof runs with the settings read from deploy/kubernetes/*.yaml (capabilities, hostPID,
security context, env, args, mounts, memory and CPU limits, the ConfigMap); this test plays the
kubelet: it writes the /var/log/pods records and service-account mounts.

Checked: every pod found and named right by the right source (kubelet record, or hostname and
service-account namespace), pods started after netprof too (never the node's hostname); the
hostNetwork pod skipped; per-pod and per-route counts on /stats and /metrics for traffic from
the host to the pods' bridge IPs; a pod removed and a new one added; an empty pod cgroup
backed off; kill -9 of netprof leaves traffic flowing and no BPF link on any pod's netns or
cgroup; SCALE_PODS pods attached at once within the manifest's memory limit.

Skips (exit 77) with one line when no container engine can run here (not root, no dockerd,
dockerd does not start); with NETPROF_REQUIRE_BPF=1 (CI) those are failures. In a sanitized
build (--sanitized) it always skips: it tests the image, which builds its own Release binary
from the sources, so re-running it under ASan+UBSan tests nothing new and doubles the time.

Re-runnable: one run at a time (a lock in the cache dir); the daemon's data root (image layer
cache) and the base rootfs tarball are kept in the cache dir so a second run takes about a
minute; containers, the daemon, its bridge and the pod cgroups are removed at the end, also on
failure, and leftovers of a killed run are removed at the start.

Usage: docker_e2e.py --repo DIR [--cache-dir DIR] [--scale-pods N] [--sanitized] [--keep]
                     [--no-build]
"""
import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import yaml

SKIP = 77
# Pods attached at once within the manifest's memory limit (issue #10). BPF maps are charged
# to netprof's memory cgroup, so this is a real bound: with one BPF object per pod (~34 MiB
# locked each) the 14th pod failed with ENOMEM under 512 MiB; node mode's shared object makes
# the per-pod cost map entries and links.
DEFAULT_SCALE_PODS = 40
BRIDGE = "npe2e0"
SUBNET_PREFIX = "10.213.77"  # the bridge's /24; checked free before use
POD_PORT = 80  # in the ConfigMap's inbound_ports
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

log_start = time.monotonic()


def say(text):
    print(f"[{time.monotonic() - log_start:6.1f} s] {text}", flush=True)


class Skip(Exception):
    pass


class Failure(Exception):
    pass


def run(cmd, check=True, capture=True, timeout=None, input_text=None):
    result = subprocess.run(cmd, capture_output=capture, text=True, timeout=timeout,
                            input=input_text)
    if check and result.returncode != 0:
        raise Failure(f"{' '.join(cmd[:6])}... exited {result.returncode}: "
                      f"{(result.stderr or '')[-2000:]}{(result.stdout or '')[-2000:]}")
    return result


def wait_until(what, condition, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cgroup_mounts():
    """(mount point, fstype) of every cgroup and cgroup2 mount."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            fstype = tail.split()[0] if tail else ""
            if fstype in ("cgroup", "cgroup2"):
                out.append((head.split()[4], fstype))
    return out


def cgroup2_mount():
    for point, fstype in cgroup_mounts():
        if fstype == "cgroup2":
            return point
    return None


class Docker:
    """A dockerd of this test's own: own data root (kept in the cache), exec root, pidfile,
    socket and bridge."""

    def __init__(self, cache, run_dir):
        self.data_root = os.path.join(cache, "docker")
        self.run_dir = run_dir
        self.exec_root = os.path.join(run_dir, "exec")
        self.pidfile = os.path.join(run_dir, "dockerd.pid")
        self.socket = os.path.join(run_dir, "docker.sock")
        self.log_path = os.path.join(run_dir, "dockerd.log")
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise Skip("no dockerd (install docker.io: scripts/install-deps --test)")
        self.dockerd = dockerd
        # The client from the same package: another `docker` earlier on PATH may be newer
        # than this daemon's API.
        client = os.path.join(os.path.dirname(dockerd), "docker")
        self.client = client if os.path.exists(client) else shutil.which("docker")
        if self.client is None:
            raise Skip("no docker client next to " + dockerd)
        self.proc = None

    def __call__(self, *args, **kwargs):
        return run([self.client, "-H", "unix://" + self.socket, *args], **kwargs)

    def start(self):
        os.makedirs(self.data_root, exist_ok=True)
        os.makedirs(self.exec_root, exist_ok=True)
        cmd = [self.dockerd, "--iptables=false", "--ip-forward=false", "--ip-masq=false",
               "--ip6tables=false", "--bridge", BRIDGE, "--data-root", self.data_root,
               "--exec-root", self.exec_root, "--pidfile", self.pidfile,
               "-H", "unix://" + self.socket, "--exec-opt", "native.cgroupdriver=cgroupfs",
               "--storage-driver", "overlay2"]
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Skip("dockerd does not start here: " + tail(self.log_path))
            if os.path.exists(self.socket) and self("version", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise Skip("dockerd did not answer within 60 s: " + tail(self.log_path))

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def tail(path, lines=5):
    try:
        with open(path) as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def kill_pidfile(path, name_part):
    """Stops a daemon left behind by a killed run, by the PID in its pidfile (only if that
    process is still the daemon named)."""
    try:
        pid = int(open(path).read().strip())
        cmdline = open(f"/proc/{pid}/cmdline").read()
    except (OSError, ValueError):
        return
    if name_part not in cmdline:
        return
    say(f"stopping {name_part} {pid} left by an earlier run")
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def ip(*args, check=True):
    return run(["ip", *args], check=check)


def make_bridge():
    if ip("link", "show", BRIDGE, check=False).returncode == 0:
        ip("link", "del", BRIDGE)
    addresses = ip("-4", "-o", "addr").stdout + ip("-4", "route").stdout
    if SUBNET_PREFIX + "." in addresses:
        raise Failure(f"{SUBNET_PREFIX}.0/24 is in use on this machine; change SUBNET_PREFIX")
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", SUBNET_PREFIX + ".1/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def remove_bridge():
    if ip("link", "show", BRIDGE, check=False).returncode == 0:
        ip("link", "del", BRIDGE, check=False)
    # A docker0 this daemon may have made despite --bridge (it does not, but a killed run of
    # an older version of this test could have): only when no dockerd is left to own it.
    if ip("link", "show", "docker0", check=False).returncode == 0 and \
            run(["pgrep", "-x", "dockerd"], check=False).returncode != 0:
        ip("link", "del", "docker0", check=False)


# ---------------------------------------------------------------------------------------------
# Images


def rootfs_key():
    """The base tarball depends on what mmdebstrap is asked for and where apt fetches from."""
    h = hashlib.sha256(b"mmdebstrap --variant=minbase bookworm v1\n")
    for path in ["/etc/apt/sources.list"] + sorted(
            os.path.join("/etc/apt/sources.list.d", n)
            for n in (os.listdir("/etc/apt/sources.list.d")
                      if os.path.isdir("/etc/apt/sources.list.d") else [])):
        if os.path.isfile(path):
            h.update(open(path, "rb").read())
    h.update(run(["dpkg", "--print-architecture"]).stdout.encode())
    return h.hexdigest()[:16]


def ensure_base_image(docker, cache):
    key = rootfs_key()
    # The key of the tarball the daemon's debian:12-slim was imported from, kept beside its
    # data root: same key, same image, and the image builds' layer cache stays valid.
    key_file = os.path.join(docker.data_root, "netprof-rootfs-key")
    have = docker("image", "inspect", "debian:12-slim", check=False)
    if have.returncode == 0 and os.path.exists(key_file) and open(key_file).read() == key:
        docker("tag", "debian:12-slim", "debian:12")
        return
    tarball = os.path.join(cache, f"debian-12-minbase-{key}.tar")
    if not os.path.exists(tarball):
        if shutil.which("mmdebstrap") is None:
            raise Skip("no mmdebstrap (scripts/install-deps --test) to build the base image")
        say("building the Debian 12 base rootfs with mmdebstrap (cold cache: ~2 min)")
        partial = tarball + ".partial"
        run(["mmdebstrap", "--quiet", "--variant=minbase",
             "--dpkgopt=path-exclude=/usr/share/{doc,man,locale}/*", "bookworm", partial],
            timeout=900)
        os.rename(partial, tarball)
    docker("import", tarball, "debian:12-slim", timeout=600)
    # deploy/Dockerfile's build stage starts FROM debian:12: the same rootfs serves.
    docker("tag", "debian:12-slim", "debian:12")
    with open(key_file, "w") as f:
        f.write(key)


POD_DOCKERFILE = """FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends busybox \\
 && rm -rf /var/lib/apt/lists/* \\
 && cp /bin/sleep /pause \\
 && mkdir -p /www && for p in a b c; do echo "$p" > /www/$p; done
"""
POD_IMAGE = "netprof-e2e-pod:1"


def build_images(docker, repo, image, no_build=False):
    say("building the pod image (busybox httpd)")
    docker("build", "--network", "host", "-t", POD_IMAGE, "-", input_text=POD_DOCKERFILE,
           timeout=900)
    if no_build and docker("image", "inspect", image, check=False).returncode == 0:
        say(f"--no-build: using the {image} already built (development only)")
        return
    say(f"building {image} from deploy/Dockerfile (cold cache: several minutes)")
    started = time.monotonic()
    result = docker("build", "--network", "host", "-f", os.path.join(repo, "deploy/Dockerfile"),
                    "-t", image, repo, timeout=1500)
    context = re.search(r"Sending build context to Docker daemon\s+(\S+)", result.stdout)
    say(f"netprof image built in {time.monotonic() - started:.0f} s"
        + (f", build context {context.group(1)}" if context else ""))
    docker("image", "prune", "-f", check=False)  # the previous build's untagged layers


# ---------------------------------------------------------------------------------------------
# The DaemonSet, as docker run arguments


def read_manifests(repo):
    docs = []
    kube = os.path.join(repo, "deploy", "kubernetes")
    for name in sorted(os.listdir(kube)):
        if name.endswith(".yaml"):
            with open(os.path.join(kube, name)) as f:
                docs += [d for d in yaml.safe_load_all(f) if d]
    daemonset = next(d for d in docs if d.get("kind") == "DaemonSet")
    configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    return daemonset, configmaps


def memory_bytes(text):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if str(text).endswith(suffix):
            return int(float(str(text)[: -len(suffix)]) * factor)
    return int(text)


class DaemonSetRun:
    """docker run arguments derived from the DaemonSet: nothing retyped but the mapping of
    Kubernetes fields to Docker flags, and two documented substitutions (CAP_BPF, and the
    node's /var/log/pods played by this test's own directory)."""

    def __init__(self, repo, run_dir, pod_logs):
        daemonset, configmaps = read_manifests(repo)
        spec = daemonset["spec"]["template"]["spec"]
        annotations = daemonset["spec"]["template"]["metadata"].get("annotations", {})
        container = spec["containers"][0]
        self.image = container["image"]
        sc = container.get("securityContext", {})
        args = ["--name", "netprof-e2e"]
        if spec.get("hostPID"):
            args += ["--pid", "host"]
        if spec.get("hostNetwork"):
            args += ["--network", "host"]
        if sc.get("privileged"):
            args += ["--privileged"]
        if "runAsUser" in sc:
            args += ["--user", str(sc["runAsUser"])]
        if sc.get("readOnlyRootFilesystem"):
            args += ["--read-only"]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        apparmor = annotations.get(
            f"container.apparmor.security.beta.kubernetes.io/{container['name']}")
        if apparmor == "unconfined":
            args += ["--security-opt", "apparmor=unconfined"]
        seccomp = sc.get("seccompProfile", {}).get("type")
        if seccomp not in (None, "RuntimeDefault"):
            args += ["--security-opt", "seccomp=unconfined"]
        caps = sc.get("capabilities", {})
        for cap in caps.get("drop", []):
            args += ["--cap-drop", cap]
        self.capabilities = []
        for cap in caps.get("add", []):
            # Docker 20.10 rejects CAP_BPF ("unknown capability"); CAP_SYS_ADMIN, also in the
            # manifest, covers bpf() (deploy/README.md, "Privileges, and why").
            if cap == "BPF":
                if "SYS_ADMIN" not in caps.get("add", []):
                    raise Failure("the manifest drops CAP_SYS_ADMIN: Docker 20.10 has no CAP_BPF")
                continue
            args += ["--cap-add", cap]
            self.capabilities.append(cap)
        limits = container.get("resources", {}).get("limits", {})
        self.memory_limit = memory_bytes(limits["memory"]) if "memory" in limits else None
        if self.memory_limit:
            args += ["--memory", str(self.memory_limit), "--memory-swap", str(self.memory_limit)]
        if "cpu" in limits:
            cpu = str(limits["cpu"])
            args += ["--cpus", str(float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))]
        grace = spec.get("terminationGracePeriodSeconds")
        if grace is not None:
            args += ["--stop-timeout", str(grace)]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        # This VM's PID 1 hides its namespaces (MACHINE-FACTS): name the node's netns through
        # a process of the node that netprof (hostPID) can see: this test.
        if not readable("/proc/1/ns/net"):
            env["NETPROF_HOST_NETNS"] = f"/proc/{os.getpid()}/ns/net"
        for name, value in env.items():
            args += ["-e", f"{name}={value}"]
        self.env = env
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            ro = ":ro" if mount.get("readOnly") else ""
            if "hostPath" in volume:
                source = volume["hostPath"]["path"]
                if source == "/var/log/pods":
                    source = pod_logs  # this test is the node's kubelet
                if volume["hostPath"].get("type") == "DirectoryOrCreate":
                    os.makedirs(source, exist_ok=True)
                args += ["-v", f"{source}:{mount['mountPath']}{ro}"]
            elif "configMap" in volume:
                data = configmaps[volume["configMap"]["name"]]["data"]
                directory = os.path.join(run_dir, "configmap-" + mount["name"])
                os.makedirs(directory, exist_ok=True)
                for key, text in data.items():
                    with open(os.path.join(directory, key), "w") as f:
                        f.write(text)
                args += ["-v", f"{directory}:{mount['mountPath']}{ro}"]
                if "config.json" in data:
                    self.config = json.loads(data["config.json"])
            else:
                raise Failure(f"volume {mount['name']}: no Docker mapping for {volume}")
        self.args = args
        self.command = container.get("args", [])
        # /metrics and /healthz: the port the liveness probe uses, on the pod IP. The rest of
        # the admin API (/stats) where admin_address puts it: on the pod's loopback, it is
        # reached from inside the pod's netns, as `kubectl port-forward` does.
        probe_port = container["livenessProbe"]["httpGet"]["port"]
        self.metrics_port = probe_port if isinstance(probe_port, int) else next(
            p["containerPort"] for p in container.get("ports", []) if p.get("name") == probe_port)
        admin = self.config.get("admin", "127.0.0.1:9464")
        if admin in ("", "off"):
            raise Failure(f"the ConfigMap turns the admin API off ({admin!r}): no /stats")
        host, _, port = admin.rpartition(":")
        self.admin_loopback = host in ("127.0.0.1", "localhost", "[::1]")
        self.admin_port = int(port)


def readable(path):
    try:
        os.close(os.open(path, os.O_RDONLY))
        return True
    except OSError:
        return False


class Netprof:
    def __init__(self, docker, daemonset):
        self.docker = docker
        self.ds = daemonset

    def start(self):
        self.docker("rm", "-f", "netprof-e2e", check=False)
        self.docker("run", "-d", *self.ds.args, self.ds.image, *self.ds.command)
        self.ip = container_ip(self.docker, "netprof-e2e")
        self.pid = self.docker("inspect", "-f", "{{.State.Pid}}", "netprof-e2e").stdout.strip()
        wait_until("netprof's /healthz", lambda: self.healthy(), 60)

    def healthy(self):
        state = self.state()
        if not state.get("Running"):
            raise Failure(f"netprof exited ({state}): {self.log()[-3000:]}")
        try:
            return http_get(self.metrics_url("/healthz"), timeout=2)[0] == 200
        except OSError:
            return False

    def metrics_url(self, path):
        return f"http://{self.ip}:{self.ds.metrics_port}{path}"

    def admin_get(self, path):
        if not self.ds.admin_loopback:
            return http_get(f"http://{self.ip}:{self.ds.admin_port}{path}")
        out = run(["nsenter", "-t", self.pid, "-n", "curl", "-sS", "--max-time", "5", "-w",
                   "\\n%{http_code}", f"http://127.0.0.1:{self.ds.admin_port}{path}"],
                  check=False)
        body, _, code = out.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), body.encode()

    def state(self):
        out = self.docker("inspect", "-f", "{{json .State}}", "netprof-e2e", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def log(self):
        out = self.docker("logs", "netprof-e2e", check=False)
        return (out.stdout or "") + (out.stderr or "")

    def stats(self):
        status, body = self.admin_get("/stats")
        if status != 200:
            raise Failure(f"/stats answered {status}")
        return json.loads(body)

    def metrics(self):
        status, body = http_get(self.metrics_url("/metrics"))
        if status != 200:
            raise Failure(f"/metrics answered {status}")
        return body.decode()

    def attached(self, uid):
        return any(f"uid {uid} " in line and ": attached" in line
                   for line in self.log().splitlines())


def container_ip(docker, name):
    out = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                 name).stdout.strip()
    if not out:
        raise Failure(f"{name} has no bridge IP")
    return out


# ---------------------------------------------------------------------------------------------
# Pods


QOS_PARENT = {
    ("cgroupfs", "BestEffort"): "/kubepods/besteffort/pod{uid}",
    ("cgroupfs", "Burstable"): "/kubepods/burstable/pod{uid}",
    ("cgroupfs", "Guaranteed"): "/kubepods/pod{uid}",
    ("systemd", "BestEffort"):
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{uid_}.slice",
    ("systemd", "Burstable"):
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice",
    ("systemd", "Guaranteed"): "/kubepods.slice/kubepods-pod{uid_}.slice",
}


class Pod:
    """A pod: its containers in the cgroup the kubelet would give it. `source` says how the
    kubelet side names it: "kubelet" (a /var/log/pods record; the hostname is then set to
    something else, to show which source wins) or "hostname" (hostname + service-account
    namespace file mounted at /var/run/secrets/..., which the image's /var/run -> /run
    symlink moves to /run/secrets/... inside the container)."""

    def __init__(self, name, namespace, qos, driver, source, pause=False, host_network=False):
        self.uid = str(uuid.uuid4())
        self.name, self.namespace, self.qos, self.driver = name, namespace, qos, driver
        self.source, self.pause, self.host_network = source, pause, host_network
        self.parent = QOS_PARENT[(driver, qos)].format(uid=self.uid,
                                                       uid_=self.uid.replace("-", "_"))
        self.containers = []
        self.ip = None

    def start(self, docker, run_dir, pod_logs):
        label = ["--label", "netprof-e2e=1", "--cgroup-parent", self.parent]
        httpd = ["busybox", "httpd", "-f", "-p", str(POD_PORT), "-h", "/www"]
        common = ["run", "-d", *label, "--name", f"{self.name}-{self.uid[:8]}"]
        hostname = self.name if self.source == "hostname" else "h-" + self.name
        volumes = []
        if self.source == "kubelet":
            os.makedirs(os.path.join(pod_logs, f"{self.namespace}_{self.name}_{self.uid}",
                                     "app"), exist_ok=True)
        else:
            sa = os.path.join(run_dir, "sa-" + self.uid)
            os.makedirs(sa, exist_ok=True)
            with open(os.path.join(sa, "namespace"), "w") as f:
                f.write(self.namespace)
            volumes = ["-v", f"{sa}:{SA_DIR}:ro"]
        if self.host_network:
            docker(*common, "--network", "host", POD_IMAGE, "busybox", "sleep", "1000000")
            self.containers.append(common[-1])
            return
        if self.pause:
            # The sandbox: a pause process holding the netns and hostname; the app joins its
            # netns (Docker copies the hostname along).
            infra = f"{self.name}-{self.uid[:8]}-pause"
            docker("run", "-d", *label, "--name", infra, "--hostname", hostname, POD_IMAGE,
                   "/pause", "infinity")
            self.containers.append(infra)
            docker("run", "-d", *label, "--name", f"{self.name}-{self.uid[:8]}", *volumes,
                   "--network", f"container:{infra}", POD_IMAGE, *httpd)
            self.containers.append(f"{self.name}-{self.uid[:8]}")
            self.ip = container_ip(docker, infra)
            return
        docker(*common, "--hostname", hostname, *volumes, POD_IMAGE, *httpd)
        self.containers.append(common[-1])
        self.ip = container_ip(docker, common[-1])

    def remove(self, docker):
        for name in reversed(self.containers):
            docker("rm", "-f", name, check=False)
        self.containers = []

    def get(self, path):
        return http_get(f"http://{self.ip}:{POD_PORT}{path}")


def remove_pod_cgroups():
    """The pod cgroups Docker leaves behind (it removes only the containers'), in every
    hierarchy, deepest first; a directory another user still has is left alone."""
    for point, _ in cgroup_mounts():
        for top in ("kubepods", "kubepods.slice"):
            base = os.path.join(point, top)
            if not os.path.isdir(base):
                continue
            for root, dirs, _ in sorted(os.walk(base), key=lambda t: -t[0].count("/")):
                try:
                    os.rmdir(root)
                except OSError:
                    pass


def remove_run_dir(run_dir):
    """dockerd leaves mounts below its exec root (exec/netns/default, a bind mount of the
    node's netns): unmount them, deepest first, before removing the directory."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point == run_dir or point.startswith(run_dir + "/"):
                mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        run(["umount", "-l", point], check=False)
    shutil.rmtree(run_dir, ignore_errors=True)


def bpf_links():
    out = run(["bpftool", "-j", "link", "list"], check=False)
    try:
        return json.loads(out.stdout) if out.returncode == 0 else []
    except json.JSONDecodeError:
        return []


def netns_inode(pid):
    return os.stat(f"/proc/{pid}/ns/net").st_ino


# ---------------------------------------------------------------------------------------------
# The test


def check_pod_entry(stats, pod, requests=None):
    entry = next((p for p in stats.get("pods", []) if p["uid"] == pod.uid), None)
    if entry is None:
        raise Failure(f"/stats has no pod {pod.uid} ({pod.name})")
    problems = []
    if entry["name"] != pod.name:
        problems.append(f"name {entry['name']!r}, expected {pod.name!r}")
    if entry["namespace"] != pod.namespace:
        problems.append(f"namespace {entry['namespace']!r}, expected {pod.namespace!r}")
    if entry["qos"] != pod.qos:
        problems.append(f"qos {entry['qos']!r}, expected {pod.qos!r}")
    expected_sources = (("kubelet", "kubelet") if pod.source == "kubelet"
                        else ("hostname", "service-account"))
    got_sources = (entry.get("name_source"), entry.get("namespace_source"))
    if got_sources != expected_sources:
        problems.append(f"sources {got_sources}, expected {expected_sources}")
    if requests is not None and entry["requests"] != requests:
        problems.append(f"{entry['requests']} requests, expected {requests}")
    if problems:
        raise Failure(f"pod {pod.name}: " + "; ".join(problems) + f": {entry}")
    return entry


def metric_value(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def traffic(pods, rounds):
    """Requests from the host to each pod's bridge IP; pod i gets i+1 GETs of /a and one of
    /b, per round. Returns the requests per pod."""
    counts = {}
    for i, pod in enumerate(pods):
        for _ in range(rounds):
            for path in ["/a"] * (i + 1) + ["/b"]:
                status, body = pod.get(path)
                if status != 200 or body.strip() != path[1:].encode():
                    raise Failure(f"GET {path} of {pod.name} ({pod.ip}): {status} {body[:80]!r}")
        counts[pod.uid] = rounds * (i + 2)
    return counts


def e2e(args, docker, run_dir):
    pod_logs = os.path.join(run_dir, "var-log-pods")
    os.makedirs(pod_logs)
    ds = DaemonSetRun(args.repo, run_dir, pod_logs)
    say(f"DaemonSet as docker run: {' '.join(ds.args)} {ds.image} {' '.join(ds.command)}")
    if POD_PORT not in ds.config.get("inbound_ports", []):
        raise Failure(f"the ConfigMap's inbound_ports {ds.config.get('inbound_ports')} "
                      f"do not hold port {POD_PORT}")
    ensure_base_image(docker, args.cache_dir)
    build_images(docker, args.repo, ds.image, args.no_build)

    pods = [
        Pod("web-besteffort", "shop", "BestEffort", "cgroupfs", "kubelet"),
        Pod("web-burstable", "shop", "Burstable", "cgroupfs", "hostname"),
        Pod("web-guaranteed", "billing", "Guaranteed", "cgroupfs", "kubelet"),
        Pod("api-besteffort", "billing", "BestEffort", "systemd", "hostname"),
        Pod("api-burstable", "shop", "Burstable", "systemd", "kubelet", pause=True),
        Pod("api-guaranteed", "shop", "Guaranteed", "systemd", "hostname", pause=True),
    ]
    host_pod = Pod("node-exporter", "monitoring", "BestEffort", "cgroupfs", "kubelet",
                   host_network=True)
    say(f"starting {len(pods)} pods and a hostNetwork pod before netprof")
    for pod in pods + [host_pod]:
        pod.start(docker, run_dir, pod_logs)

    netprof = Netprof(docker, ds)
    netprof.start()
    say(f"netprof runs at {netprof.ip}; waiting for every pod to be attached")
    wait_until("the pods started before netprof to be attached",
               lambda: all(netprof.attached(p.uid) for p in pods), 60)
    wait_until("the hostNetwork pod to be skipped",
               lambda: f"pod {host_pod.uid}: not attached: shares the node's" in netprof.log(),
               30)
    if netprof.attached(host_pod.uid):
        raise Failure("the hostNetwork pod was attached")
    # A hybrid node's /sys/fs/cgroup (v1 controllers, cgroup2 at unified/) is followed into
    # its cgroup2 mount, not refused.
    root = ds.env.get("NETPROF_CGROUP_ROOT", "")
    if cgroup2_mount().endswith("/unified") and \
            f"pods under {root.rstrip('/')}/unified" not in netprof.log():
        raise Failure(f"netprof did not use {root}/unified on this hybrid host")
    # The interception's notes come once, not on every attach line.
    if any(": attached" in line and "note" in line for line in netprof.log().splitlines()):
        raise Failure("an attach line repeats the interception's notes")

    # Pods started while netprof runs: named by their own process, never by the runtime's
    # init (which still has the node's hostname).
    late = [Pod("late-kubelet", "shop", "Burstable", "cgroupfs", "kubelet"),
            Pod("late-hostname", "billing", "BestEffort", "systemd", "hostname")]
    for pod in late:
        pod.start(docker, run_dir, pod_logs)
    pods += late
    wait_until("the pods started after netprof to be attached",
               lambda: all(netprof.attached(p.uid) for p in late), 60)

    # An empty pod cgroup (runtimes leave them behind): retried with a backoff, then left to
    # the regular rescan.
    empty_uid = str(uuid.uuid4())
    empty = os.path.join(cgroup2_mount(), "kubepods", "besteffort", "pod" + empty_uid)
    os.makedirs(empty)

    say("traffic from the host to every pod's bridge IP")
    counts = traffic(pods, rounds=2)
    hostname = os.uname().nodename

    def counted():
        stats = netprof.stats()
        for pod in pods:
            entry = next((p for p in stats.get("pods", []) if p["uid"] == pod.uid), None)
            if entry is None or entry["requests"] != counts[pod.uid]:
                return None
        return stats
    try:
        stats = wait_until("every pod's requests on /stats", counted, 30)
    except Failure:
        raise Failure(f"counts on /stats: {json.dumps(netprof.stats().get('pods'))[:4000]}")
    for i, pod in enumerate(pods):
        entry = check_pod_entry(stats, pod, counts[pod.uid])
        if entry["name"] == hostname:
            raise Failure(f"pod {pod.uid} carries the node's hostname {hostname}")
        routes = {r["route"]: r["count"] for r in entry["routes"]}
        if routes != {"/a": 2 * (i + 1), "/b": 2}:
            raise Failure(f"pod {pod.name}: routes {routes}, expected /a: {2 * (i + 1)}, /b: 2")
    if any(p["uid"] == host_pod.uid for p in stats.get("pods", [])):
        raise Failure("the hostNetwork pod is on /stats")
    metrics = netprof.metrics()
    for i, pod in enumerate(pods):
        labels = {"k8s_pod_name": pod.name, "k8s_pod_uid": pod.uid,
                  "k8s_namespace_name": pod.namespace, "http_route": "/a"}
        value = metric_value(metrics, "netprof_http_requests_total", labels)
        if value != 2 * (i + 1):
            raise Failure(f"netprof_http_requests_total{labels} = {value}, expected "
                          f"{2 * (i + 1)}")
    say(f"{len(pods)} pods named by the right source, counted per pod and route on /stats "
        "and /metrics")

    # A pod removed, a new one added.
    gone = pods.pop(1)
    gone.remove(docker)
    wait_until("the removed pod to be detached",
               lambda: f"uid {gone.uid}: detached" in netprof.log(), 30)
    # /stats is a snapshot refreshed every --stats-interval: poll for the change.
    def gone_entry():
        entry = next(p for p in netprof.stats()["pods"] if p["uid"] == gone.uid)
        return entry if entry["gone_at_ms"] else None
    try:
        wait_until("the removed pod to be marked gone on /stats", gone_entry, 15)
    except Failure:
        entry = next(p for p in netprof.stats()["pods"] if p["uid"] == gone.uid)
        raise Failure(f"the removed pod is not marked gone: {entry}")
    new = Pod("web-new", "shop", "Guaranteed", "systemd", "kubelet")
    new.start(docker, run_dir, pod_logs)
    pods.append(new)
    wait_until("the new pod to be attached", lambda: netprof.attached(new.uid), 30)
    traffic([new], rounds=1)
    wait_until("the new pod's requests on /stats",
               lambda: any(p["uid"] == new.uid and p["requests"] == 2
                           for p in netprof.stats()["pods"]), 30)
    check_pod_entry(netprof.stats(), new, 2)
    say("a removed pod is detached and kept as gone; a new one is attached and named")

    wait_until("the empty pod cgroup's backoff to end",
               lambda: f"pod {empty_uid}: no process has joined its cgroup; looking again at "
                       "each rescan" in netprof.log(), 40)
    tries = netprof.log().count(f"pod {empty_uid}")
    if tries != 1:
        raise Failure(f"the empty pod cgroup was logged {tries} times")
    os.rmdir(empty)
    say("an empty pod cgroup is retried with a backoff, then left to the regular rescan")

    # kill -9: the kernel drops every link with netprof's fds; traffic goes on.
    pod_netns = {netns_inode(int(docker("inspect", "-f", "{{.State.Pid}}", p.containers[0])
                                     .stdout.strip())) for p in pods}
    pod_cgroups = set()
    for pod in pods:
        path = os.path.join(cgroup2_mount(), pod.parent.lstrip("/"))
        pod_cgroups.add(os.stat(path).st_ino)

    def links_on_pods():
        return [link for link in bpf_links()
                if link.get("netns_ino") in pod_netns or link.get("cgroup_id") in pod_cgroups]
    if not links_on_pods():
        raise Failure("no BPF link on the pods' netns or cgroups while netprof runs "
                      "(bpftool link list): the check below would prove nothing")
    docker("kill", "--signal", "KILL", "netprof-e2e")
    wait_until("netprof to die", lambda: not netprof.state().get("Running"), 30)
    wait_until("no BPF link left on the pods' netns and cgroups", lambda: not links_on_pods(), 10)
    traffic(pods, rounds=1)
    say("kill -9: no BPF link left on any pod, traffic flows")

    # Scale: netprof restarted (as the DaemonSet would), then pods up to args.scale_pods, all
    # attached at once within the manifest's memory limit.
    netprof.start()
    more = []
    for i in range(max(0, args.scale_pods - len(pods))):
        qos = ("BestEffort", "Burstable", "Guaranteed")[i % 3]
        driver = ("cgroupfs", "systemd")[i % 2]
        more.append(Pod(f"scale-{i}", "scale", qos, driver, ("kubelet", "hostname")[i % 2]))
    say(f"scale: {len(pods) + len(more)} pods under the manifest's memory limit "
        f"({ds.memory_limit // 2**20} MiB)")
    for pod in more:
        pod.start(docker, run_dir, pod_logs)
    pods += more

    def all_attached():
        log = netprof.log()
        failed = [line for line in log.splitlines() if ": not attached: " in line
                  and any(p.uid in line for p in pods)]
        if failed:
            raise Failure("pods not attached: " + " | ".join(failed[:5]))
        if not netprof.state().get("Running"):
            raise Failure(f"netprof stopped: {netprof.state()}")
        return all(f"uid {p.uid} " in log for p in pods) and \
            sum(1 for p in pods if netprof.attached(p.uid)) == len(pods)
    wait_until(f"{len(pods)} pods attached", all_attached, 120 + 2 * len(pods))
    state = netprof.state()
    if state.get("OOMKilled"):
        raise Failure("netprof was OOM-killed")
    usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", "netprof-e2e").stdout
    traffic(pods[-3:], rounds=1)
    stats = wait_until("the last pods on /stats (a snapshot, refreshed every interval)",
                       lambda: (lambda s: s if all(any(e["uid"] == p.uid for e in s.get("pods", []))
                                                   for p in pods[-3:]) else None)(netprof.stats()),
                       15)
    for pod in pods[-3:]:
        check_pod_entry(stats, pod)
    say(f"scale: {len(pods)} pods attached; netprof's container memory {usage.strip()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True)
    default_cache = os.path.join(os.environ.get("XDG_CACHE_HOME")
                                 or os.path.expanduser("~/.cache"), "netprof", "runtime-e2e")
    parser.add_argument("--cache-dir", default=os.environ.get("NETPROF_E2E_CACHE", default_cache))
    parser.add_argument("--scale-pods", type=int,
                        default=int(os.environ.get("NETPROF_E2E_SCALE_PODS",
                                                   DEFAULT_SCALE_PODS)))
    parser.add_argument("--sanitized", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the daemon running")
    parser.add_argument("--no-build", action="store_true",
                        help="reuse an existing netprof image (development only)")
    args = parser.parse_args()
    require = os.environ.get("NETPROF_REQUIRE_BPF") == "1"

    def interrupted(signum, _frame):  # SIGTERM (ctest, CI): clean up as on failure
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)

    if args.sanitized:
        print("SKIP: sanitized build: this test checks the image (built from the sources by "
              "deploy/Dockerfile, Release), not this build's binary; it runs once, in the "
              "plain build")
        return SKIP
    try:
        if os.geteuid() != 0:
            raise Skip("needs root to run a container engine")
        os.makedirs(args.cache_dir, exist_ok=True)
        lock = open(os.path.join(args.cache_dir, "lock"), "w")
        fcntl.flock(lock, fcntl.LOCK_EX)  # one run at a time: shared data root and bridge
        run_dir = os.path.join(tempfile.gettempdir(), "netprof-e2e-runtime")
        # Leftovers of a run killed before its cleanup (ctest's timeout kills outright).
        kill_pidfile(os.path.join(run_dir, "dockerd.pid"), "dockerd")
        kill_pidfile(os.path.join(run_dir, "exec", "containerd", "containerd.pid"), "containerd")
        remove_run_dir(run_dir)
        remove_bridge()
        remove_pod_cgroups()
        os.makedirs(run_dir)
        docker = Docker(args.cache_dir, run_dir)
    except Skip as e:
        print(f"{'FAIL (NETPROF_REQUIRE_BPF=1)' if require else 'SKIP'}: {e}")
        return 1 if require else SKIP

    code = 0
    try:
        make_bridge()
        docker.start()
        docker("rm", "-f", *docker("ps", "-aq").stdout.split(), check=False)
        e2e(args, docker, run_dir)
        say("PASS")
    except Skip as e:
        print(f"{'FAIL (NETPROF_REQUIRE_BPF=1)' if require else 'SKIP'}: {e}")
        code = 1 if require else SKIP
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}")
        if docker.proc is not None:
            out = docker("logs", "netprof-e2e", check=False)
            print("--- netprof's log (last 60 lines) ---")
            print("\n".join(((out.stdout or "") + (out.stderr or "")).splitlines()[-60:]))
        code = 1
    finally:
        if args.keep and code == 0:
            say(f"left running: docker -H unix://{docker.socket}")
        else:
            if docker.proc is not None and docker.proc.poll() is None:
                ids = docker("ps", "-aq", check=False).stdout.split()
                if ids:
                    docker("rm", "-f", *ids, check=False, timeout=120)
            docker.stop()
            kill_pidfile(os.path.join(run_dir, "exec", "containerd", "containerd.pid"),
                         "containerd")
            remove_bridge()
            remove_pod_cgroups()
            remove_run_dir(run_dir)
    return code


if __name__ == "__main__":
    sys.exit(main())
