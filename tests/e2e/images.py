"""The controller's image in end-to-end tests: built by tools/build-image.sh, run as a kubelet would run it.

``podman run`` does not work on the machines these tests run on, so :class:`ImagePod` runs the image's
entrypoint under ``chroot`` in private mount and PID namespaces (``unshare``), with what a pod of
manifests/controller gets: the container's user, a read-only root filesystem with its emptyDirs as
tmpfs, /proc and a minimal /dev, the ServiceAccount's token, ca.crt and namespace under
/var/run/secrets/kubernetes.io/serviceaccount, and ``KUBERNETES_SERVICE_HOST``/``PORT`` naming the
API server. The host's network is shared, so the local stack is reached on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from canary.local.ports import free_ports
from canary.waiting import wait_until

REPO = Path(__file__).parents[2]
BUILD_SCRIPT = REPO / "tools" / "build-image.sh"
DEPLOYMENT = REPO / "manifests" / "controller" / "deployment.yaml"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# Runs as PID 1 of the new namespaces: names the host as the pod, lays out the pod's mounts over the
# image's root (in this mount namespace only), then becomes the container's process. Arguments: the
# pod's name, the image's root, the folder with the ServiceAccount's files, "ro" or "rw", the
# emptyDirs' mount paths separated by spaces, then the command (chroot ...).
_LAUNCHER = r"""
set -eu
name=$1 root=$2 secrets=$3 mode=$4 empty_dirs=$5
shift 5
hostname "$name"
mount --bind "$root" "$root"
[ "$mode" = ro ] && mount -o remount,bind,ro "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755 dev "$root/dev"
for node in null zero full random urandom tty; do
  touch "$root/dev/$node"
  mount --bind "/dev/$node" "$root/dev/$node"
done
for path in $empty_dirs; do
  mount -t tmpfs -o mode=1777 empty-dir "$root$path"
done
# /var/run is a link to /run in Debian; a runtime mounts a tmpfs at /run anyway.
mount -t tmpfs -o mode=755 run "$root/run"
mkdir -p "$root/run/secrets/kubernetes.io/serviceaccount"
mount --bind -o ro "$secrets" "$root/run/secrets/kubernetes.io/serviceaccount"
exec "$@"
"""


@dataclass(frozen=True)
class ImageConfig:
    """What the image says about how to run it (``podman image inspect``)."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: dict[str, str]
    user: str
    workdir: str

    @classmethod
    def of(cls, image: str) -> ImageConfig:
        answer = subprocess.run(["podman", "image", "inspect", "--format", "{{json .Config}}", image],
                                capture_output=True, text=True, check=True)
        config = json.loads(answer.stdout)
        return cls(entrypoint=tuple(config.get("Entrypoint") or ()), cmd=tuple(config.get("Cmd") or ()),
                   env=dict(item.split("=", 1) for item in config.get("Env") or ()),
                   user=config.get("User") or "0", workdir=config.get("WorkingDir") or "/")


def build_image(tag: str) -> None:
    """Build the image as ``make image`` does (a warm build takes seconds: the base and layers are cached)."""
    done = subprocess.run([str(BUILD_SCRIPT)], env={**os.environ, "IMAGE": tag}, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise AssertionError(f"{BUILD_SCRIPT.name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def remove_image(tag: str) -> None:
    """Remove the tag; podman keeps the layers that other images or the build cache use."""
    subprocess.run(["podman", "rmi", tag], capture_output=True, check=False)


@dataclass(frozen=True)
class ServiceAccountFiles:
    """A pod's ServiceAccount volume: the token, the cluster's CA and the pod's namespace."""

    token: str
    ca_crt: bytes
    namespace: str

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        for name, content in (("token", self.token.encode()), ("ca.crt", self.ca_crt),
                              ("namespace", self.namespace.encode())):
            (folder / name).write_bytes(content)
            (folder / name).chmod(0o644)  # the kubelet's default mode: readable by the container's user
        return folder


def api_server_of(kubeconfig: Path) -> tuple[str, str, bytes]:
    """The API server's host, port and CA certificate, from an admin kubeconfig."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    url = urllib.parse.urlsplit(cluster["server"])
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = (kubeconfig.parent / cluster["certificate-authority"]).read_bytes()
    return url.hostname or "", str(url.port or 443), ca


@dataclass(frozen=True)
class Container:
    """The parts of a pod's container this launcher honours."""

    args: tuple[str, ...]
    env: dict[str, str]
    run_as: str  # uid:gid
    read_only_root: bool
    empty_dirs: tuple[str, ...]  # mount paths of emptyDir volumes


def manifest_container(namespace: str, *, env: dict[str, str], args: tuple[str, ...] = ()) -> Container:
    """The container of manifests/controller's Deployment, as a pod of it in ``namespace`` gets it:
    its args (plus ``args``), env with fieldRefs to the namespace resolved (then ``env`` over it), user,
    read-only root and emptyDirs."""
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    resolved: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            resolved[item["name"]] = item["value"]
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            resolved[item["name"]] = namespace
        else:
            raise AssertionError(f"the launcher cannot resolve env {item['name']}: {item}")
    empty = {volume["name"] for volume in pod.get("volumes") or [] if "emptyDir" in volume}
    security = container.get("securityContext") or {}
    uid = str(security.get("runAsUser") or pod["securityContext"]["runAsUser"])
    return Container(args=(*container.get("args", ()), *args), env={**resolved, **env}, run_as=f"{uid}:{uid}",
                     read_only_root=bool(security.get("readOnlyRootFilesystem")),
                     empty_dirs=tuple(m["mountPath"] for m in container.get("volumeMounts") or []
                                      if m["name"] in empty))


class ImagePod:
    """One container of the image, started like a pod's and stopped like one (SIGTERM to PID 1)."""

    def __init__(self, image: str, container: Container, service_account: ServiceAccountFiles, *,
                 api_server: tuple[str, str], folder: Path) -> None:
        self.image, self.container, self.service_account, self.api_server = image, container, service_account, \
            api_server
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "container.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.root: str | None = None
        self.port = 0
        self.name = f"canary-controller-{os.urandom(3).hex()}"
        self.env: dict[str, str] = {}
        self.workdir = "/"

    def _in_container(self, *argv: str) -> list[str]:
        """``argv`` run in the image's root as the container's user, with its environment and working directory."""
        assert self.root is not None
        return ["chroot", f"--userspec={self.container.run_as}", self.root, "/usr/bin/env", "-i", "-C", self.workdir,
                *(f"{k}={v}" for k, v in self.env.items()), *argv]

    def start(self) -> None:
        """Mount the image, start its entrypoint with ``--port`` on a free port and wait for /readyz."""
        config = ImageConfig.of(self.image)
        self.root = subprocess.run(["podman", "image", "mount", self.image], capture_output=True, text=True,
                                   check=True).stdout.strip()
        (self.port,) = free_ports(1)
        secrets = self.service_account.write(self.folder / "serviceaccount")
        host, port = self.api_server
        self.env = {**config.env, "HOSTNAME": self.name, "KUBERNETES_SERVICE_HOST": host,
                    "KUBERNETES_SERVICE_PORT": port, **self.container.env}
        self.workdir = config.workdir
        command = self._in_container(*config.entrypoint, *(self.container.args or config.cmd), "--port",
                                     str(self.port))
        argv = ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child", "sh", "-c", _LAUNCHER, "launcher",
                self.name, self.root, str(secrets), "ro" if self.container.read_only_root else "rw",
                " ".join(self.container.empty_dirs), *command]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            env={"PATH": os.environ["PATH"]})
        try:
            wait_until(self._ready, bool, what=f"the controller in the image to be ready (log {self.log})", timeout=60)
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the container exited with {self.process.returncode}:\n{self.log_tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
            return bool(response.status == 200)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthz(self) -> int:
        """The status code of /healthz (the liveness probe)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the running container, as ``kubectl exec`` would: its namespaces, root, user and env."""
        pid1 = self._pid1()
        assert pid1 is not None, "the container is not running"
        return subprocess.run(["nsenter", f"--target={pid1}", "--mount", "--pid", "--uts", "--",
                               *self._in_container(*argv)], capture_output=True, text=True, check=False, timeout=30)

    def _pid1(self) -> int | None:
        """The host's pid of the namespace's PID 1 (the image's entrypoint), the child of unshare."""
        assert self.process is not None
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except FileNotFoundError:
            return None
        return int(children[0]) if children else None

    def stop(self) -> int | None:
        """SIGTERM to PID 1, as the kubelet stops a container, then unmount the image; the exit code."""
        code = None
        if self.process is not None:
            if self.process.poll() is None and (pid1 := self._pid1()) is not None:
                os.kill(pid1, signal.SIGTERM)
            try:
                code = self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()  # --kill-child: the namespace's PID 1 goes with it
                code = self.process.wait(timeout=10)
        if self.root is not None:
            subprocess.run(["podman", "image", "unmount", self.image], capture_output=True, check=False)
            self.root = None
        return code

    def log_tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
