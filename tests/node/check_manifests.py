#!/usr/bin/env python3
"""Checks deploy/: the Kubernetes manifests parse and hold what a least-privilege netprof
DaemonSet needs (hostPID, exactly the documented capabilities, probes on /healthz, Prometheus
annotations, read-only host mounts, resources, config the binary accepts), and the Dockerfile
is the multi-stage Debian 12 build. With kubectl on PATH, `kubectl kustomize` must render the
set offline too (a client-side dry run needs an API server, so it is not used).

Usage: check_manifests.py DEPLOY_DIR   (exit 0 when every check passes)
"""
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


def quantity(text):
    """Kubernetes quantity -> float (cores or bytes)."""
    text = str(text)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


# deploy/README.md, "Resources": memory = base + per pod x pods (+ busy connections), measured
# by bench/run's node scale cell with the default map sizes.
BASE_BYTES = 42.3 * 2**20
PER_POD_BYTES = 21 * 2**10
PENDING_ENTRY_BYTES = 0.56 * 2**10  # the five LRU maps, per bpf_pending_entries entry


def config_fields(repo):
    """Current field names `netprof node` accepts, from the one table of settings
    (user/settings/setting_table.cc; old spellings are deprecated, so not accepted here)."""
    source = open(os.path.join(repo, "user", "settings", "setting_table.cc")).read()
    rows = re.findall(r'setting\("([a-z0-9_]+)", K::\w+, (\w+)', source)
    return {name for name, modes in rows if modes in ("kRelayModes", "kInterceptModes", "kNode")}


def main(deploy):
    repo = os.path.dirname(os.path.abspath(deploy))
    kube = os.path.join(deploy, "kubernetes")
    docs = {}
    for name in sorted(os.listdir(kube)):
        if name.endswith(".yaml"):
            with open(os.path.join(kube, name)) as f:
                for doc in yaml.safe_load_all(f):
                    if doc:
                        docs.setdefault(doc.get("kind"), []).append((name, doc))

    kustomization = docs.get("Kustomization", [(None, {})])[0][1]
    listed = set(kustomization.get("resources", []))
    for kind in ("Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"):
        if check(len(docs.get(kind, [])) == 1, f"expected one {kind}"):
            check(docs[kind][0][0] in listed, f"{docs[kind][0][0]} not in kustomization.yaml")
    if failures:
        return
    namespace = docs["Namespace"][0][1]["metadata"]["name"]
    for kind in ("ServiceAccount", "ConfigMap", "DaemonSet"):
        check(docs[kind][0][1]["metadata"].get("namespace") == namespace,
              f"{kind} not in namespace {namespace}")
    account = docs["ServiceAccount"][0][1]
    check(account.get("automountServiceAccountToken") is False,
          "the service account should not mount a token (netprof does not use the API)")

    configmap = docs["ConfigMap"][0][1]
    try:
        config = json.loads(configmap["data"]["config.json"])
    except (KeyError, ValueError) as e:
        check(False, f"ConfigMap config.json is not JSON: {e}")
        return
    unknown = set(config) - config_fields(repo)
    check(not unknown, f"ConfigMap fields netprof node rejects: {sorted(unknown)}")
    ports = config.get("inbound_ports", []) + config.get("outbound_ports", [])
    check(ports and all(isinstance(p, int) and 1 <= p <= 65535 for p in ports),
          "config.json needs valid inbound/outbound ports")
    # The cluster reaches /metrics and /healthz only (metrics_address, on the pod IP); the
    # dashboard, /stats and /tap stay on loopback unless opened with a token.
    metrics = config.get("metrics_address", "")
    check(metrics and not metrics.startswith("127."),
          "metrics_address must be a non-loopback address: the kubelet probes and Prometheus "
          "scrapes the pod IP")
    admin_port = int((metrics or ":0").rsplit(":", 1)[1])
    admin = config.get("admin", "127.0.0.1:9464")
    check(admin.startswith("127.") or admin == "off" or bool(config.get("admin_token_file")),
          "admin must stay on loopback (dashboard, /stats, /tap) unless admin_token_file is set")

    ds = docs["DaemonSet"][0][1]
    spec = ds["spec"]
    pod = spec["template"]["spec"]
    meta = spec["template"]["metadata"]
    check(spec["selector"]["matchLabels"].items() <= meta["labels"].items(),
          "selector does not match the template labels")
    check(pod.get("serviceAccountName") == account["metadata"]["name"], "service account not used")
    check(pod.get("hostPID") is True, "hostPID: true is needed (cgroup.procs PIDs, /proc/PID/ns)")
    check(not pod.get("hostNetwork"), "hostNetwork is not needed")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(grace > config.get("drain_timeout", 5) + 5,
          "terminationGracePeriodSeconds must leave room for the drain and the final report")

    annotations = meta.get("annotations", {})
    check(annotations.get("prometheus.io/scrape") == "true", "prometheus.io/scrape missing")
    check(annotations.get("prometheus.io/path") == "/metrics", "prometheus.io/path missing")
    check(annotations.get("prometheus.io/port") == str(admin_port),
          "prometheus.io/port differs from metrics_address")

    containers = pod["containers"]
    check(len(containers) == 1, "one container expected")
    c = containers[0]
    sc = c.get("securityContext", {})
    check(sc.get("privileged") in (None, False), "must not be privileged")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem must be true")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "capabilities must drop ALL")
    added = set(caps.get("add", []))
    expected = {"BPF", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"}
    check(added == expected, f"capabilities added {sorted(added)}, expected exactly {sorted(expected)}")
    readme = open(os.path.join(deploy, "README.md")).read() if os.path.exists(
        os.path.join(deploy, "README.md")) else ""
    for cap in added:
        check(f"CAP_{cap}" in readme, f"deploy/README.md does not explain CAP_{cap}")

    named_ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for probe in ("livenessProbe", "readinessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == "/healthz", f"{probe} must GET /healthz")
        port = named_ports.get(get.get("port"), get.get("port"))
        check(port == admin_port, f"{probe} port {port} is not the metrics_address port {admin_port}")

    res = c.get("resources", {})
    for what in ("cpu", "memory"):
        req, lim = res.get("requests", {}).get(what), res.get("limits", {}).get(what)
        if check(req is not None and lim is not None, f"{what} request and limit required"):
            check(quantity(req) <= quantity(lim), f"{what} request above its limit")
    # The memory request covers an idle node at max_pods by the documented formula.
    pending = config.get("bpf_pending_entries", 65536)
    idle = (BASE_BYTES + (pending - 65536) * PENDING_ENTRY_BYTES +
            PER_POD_BYTES * config.get("max_pods", 256))
    request = res.get("requests", {}).get("memory")
    if request is not None:
        check(quantity(request) >= idle,
              f"memory request {request} is below base + per pod x max_pods = "
              f"{idle / 2**20:.0f} MiB (deploy/README.md, Resources)")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    host_paths = {v["hostPath"]["path"]: name for name, v in volumes.items() if "hostPath" in v}
    for path in ("/sys/fs/cgroup", "/sys/fs/bpf", "/var/log/pods"):
        name = host_paths.get(path)
        if check(name is not None, f"hostPath {path} not mounted"):
            check(mounts.get(name, {}).get("readOnly") is True, f"{path} must be mounted read-only")
    cgroup_mount = mounts.get(host_paths.get("/sys/fs/cgroup"), {}).get("mountPath")
    check(env.get("NETPROF_CGROUP_ROOT") == cgroup_mount,
          "NETPROF_CGROUP_ROOT must point at the host cgroup mount")
    pod_logs_mount = mounts.get(host_paths.get("/var/log/pods"), {}).get("mountPath")
    check(env.get("NETPROF_POD_LOGS_DIR", "/var/log/pods") == pod_logs_mount,
          "the node's /var/log/pods must be mounted where pod_logs_dir points")
    config_volume = [n for n, v in volumes.items()
                     if v.get("configMap", {}).get("name") == configmap["metadata"]["name"]]
    if check(config_volume, "the ConfigMap is not mounted"):
        args = c.get("args", [])
        config_path = args[args.index("--config") + 1] if "--config" in args else ""
        mount_path = mounts.get(config_volume[0], {}).get("mountPath", "")
        check(config_path == mount_path.rstrip("/") + "/config.json",
              f"--config {config_path!r} is not the mounted config.json")

    dockerfile = open(os.path.join(deploy, "Dockerfile")).read()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    check(len(stages) >= 2 and stages[0] == "debian:12" and stages[-1].startswith("debian:12"),
          f"Dockerfile stages {stages}: expected a debian:12 build and a Debian 12 runtime")
    check("COPY --from=" in dockerfile, "the runtime stage must copy the binary from the build")
    check(re.search(r'^ENTRYPOINT \["/usr/local/bin/netprof"\]', dockerfile, re.M),
          "ENTRYPOINT must be the netprof binary")

    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run([kubectl, "kustomize", kube], capture_output=True, text=True,
                             timeout=60)
        if check(out.returncode == 0, f"kubectl kustomize failed: {out.stderr.strip()}"):
            kinds = {d.get("kind") for d in yaml.safe_load_all(out.stdout) if d}
            check({"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"} <= kinds,
                  f"kubectl kustomize rendered {sorted(kinds)}")
    else:
        print("note: kubectl not installed; rendering with kubectl kustomize skipped")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
    for failure in failures:
        print("FAIL:", failure)
    print("deploy manifests:", "ok" if not failures else f"{len(failures)} problem(s)")
    sys.exit(1 if failures else 0)
