"""The name a person knows a cgroup by: a systemd unit, a container, a Kubernetes pod.

Pure functions of the cgroup's path and of what the runtimes' own files said (read by
utils.collect.cgroups when the snapshot is taken, since a container's files are gone once
it is); no daemon is ever asked. The shapes of the paths, as each runtime makes them:

- systemd: every unit is a cgroup named after it (`nginx.service`, `user@1000.service`,
  `session-3.scope`, `user-1000.slice`); systemd.unit(5), systemd.slice(5).
- Docker: `/docker/<64 hex id>` with the cgroupfs driver, `/system.slice/docker-<id>.scope`
  with the systemd driver (moby's daemon/oci_linux.go); its name is the "Name" of
  /var/lib/docker/containers/<id>/config.v2.json, with a leading "/".
- Podman: `libpod-<id>.scope` (systemd driver, under machine.slice or a user's slice) or
  `/libpod_parent/libpod-<id>` (cgroupfs driver); its conmon runs in `libpod-conmon-<id>.scope`.
- containerd's CRI plugin: `cri-containerd-<id>.scope`, or `<slice>:cri-containerd:<id>` where
  containerd's systemd cgroup path is kept as one name; CRI-O: `crio-<id>.scope` and
  `crio-conmon-<id>.scope`.
- Kubernetes (kubelet's pkg/kubelet/cm/cgroup_manager_linux.go): a pod's cgroup is
  `pod<uid>` under `/kubepods[/burstable|/besteffort]` (cgroupfs driver), or with the systemd
  driver `kubepods-burstable-pod<uid with "-" as "_">.slice` under
  `/kubepods.slice/kubepods-burstable.slice`; its containers' cgroups lie below it. The
  kubelet keeps each pod's logs in /var/log/pods/<namespace>_<pod>_<uid>
  (pkg/kubelet/kuberuntime/helpers.go, BuildPodLogsDirectory): the pod's name by its uid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

ID_SHOWN = 12  # characters of a container id shown, as `docker ps` shows them
ROOT_NAME = "/"
NO_NAMES: Mapping[str, str] = MappingProxyType({})

# systemd's unit types that own a cgroup (systemd.unit(5)).
UNIT_SUFFIXES = (".service", ".scope", ".slice", ".socket", ".mount", ".swap")
_HEX_ID = r"([0-9a-f]{64})"
# (kind, pattern of one path component): the first that matches names the container.
_CONTAINERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("docker", re.compile(rf"docker-{_HEX_ID}\.scope")),
    ("podman-conmon", re.compile(rf"libpod-conmon-{_HEX_ID}(?:\.scope)?")),
    ("podman", re.compile(rf"libpod-{_HEX_ID}(?:\.scope)?")),
    ("containerd", re.compile(rf"(?:.*:)?cri-containerd[-:]{_HEX_ID}(?:\.scope)?")),
    ("crio-conmon", re.compile(rf"crio-conmon-{_HEX_ID}(?:\.scope)?")),
    ("crio", re.compile(rf"crio-{_HEX_ID}(?:\.scope)?")),
)
_BARE_ID = re.compile(_HEX_ID)
# A pod's component: systemd driver (containerd may join its container's id to it, after a
# ":"), or cgroupfs driver (below a kubepods component).
_POD_SLICE = re.compile(r"kubepods(?:-[a-z]+)*-pod([0-9a-fA-F_]+)\.slice(?::.*)?")
_POD_DIR = re.compile(r"pod([0-9a-fA-F-]+)")
# /var/log/pods/<namespace>_<pod>_<uid>: namespaces and pod names are DNS names, which
# hold no "_" (Kubernetes' object names and IDs), so the three fields split cleanly.
_POD_LOG_DIR = re.compile(r"([a-z0-9][a-z0-9.-]*)_([a-z0-9][a-z0-9.-]*)_([0-9a-fA-F-]+)")


class Identity(NamedTuple):
    """What a cgroup's path says it is: its kind ("unit", "docker", "podman", "containerd",
    "crio", "k8s", "path" or "root"), the container id or unit name, and the pod's uid."""

    kind: str
    ident: str
    pod_uid: str = ""


def _components(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def pod_uid(components: list[str]) -> str:
    """The uid of the Kubernetes pod a path lies in (dashed, lower case), or ""."""
    below_kubepods = False
    for part in components:
        slice_match = _POD_SLICE.fullmatch(part)
        if slice_match is not None:
            return slice_match[1].replace("_", "-").lower()
        dir_match = _POD_DIR.fullmatch(part)
        if below_kubepods and dir_match is not None:
            return dir_match[1].lower()
        below_kubepods = below_kubepods or part.startswith("kubepods")
    return ""


def identify(path: str) -> Identity:
    """What the path says: a pod, else the innermost container, else the innermost systemd
    unit, else its last component."""
    parts = _components(path)
    if not parts:
        return Identity("root", ROOT_NAME)
    uid = pod_uid(parts)
    if uid:
        return Identity("k8s", uid, uid)
    for part in reversed(parts):
        for kind, pattern in _CONTAINERS:
            match = pattern.fullmatch(part)
            if match is not None:
                return Identity(kind, match[1])
    if len(parts) >= 2 and parts[0] == "docker" and _BARE_ID.fullmatch(parts[1]):
        return Identity("docker", parts[1])  # /docker/<id>: the cgroupfs driver
    for part in reversed(parts):
        if part.endswith(UNIT_SUFFIXES) and len(part) > len(".scope"):
            return Identity("unit", part)
    return Identity("path", parts[-1])


def service_name(
    path: str, docker_names: Mapping[str, str] = NO_NAMES, pods: Mapping[str, str] = NO_NAMES
) -> str:
    """The name a person knows the cgroup at `path` by, never empty: `nginx.service`,
    `docker:web` (or `docker:<12-character id>` without the container's config),
    `podman:<id>`, `k8s:<namespace>/<pod>` (or `k8s:pod<uid>` without its log dir), else the
    path's last component ("/" for the root). `docker_names` maps a container id to its
    name, `pods` a pod's uid to `<namespace>/<pod>`."""
    who = identify(path)
    if who.kind == "k8s":
        return f"k8s:{pods.get(who.pod_uid) or 'pod' + who.pod_uid}"
    if who.kind == "docker":
        return f"docker:{docker_names.get(who.ident) or who.ident[:ID_SHOWN]}"
    if who.kind in ("unit", "path", "root"):
        return who.ident
    return f"{who.kind}:{who.ident[:ID_SHOWN]}"


def docker_name(config: bytes) -> str | None:
    """A container's name from Docker's config.v2.json ("Name": "/web" is `web`), or None
    if the bytes are not such a file."""
    try:
        document = json.loads(config)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    name = document.get("Name") if isinstance(document, dict) else None
    if not isinstance(name, str):
        return None
    name = name.lstrip("/")
    return name if name and name.isprintable() else None


def parse_pod_log_dir(name: str) -> tuple[str, str] | None:
    """(uid, `<namespace>/<pod>`) of a /var/log/pods entry, or None for another name."""
    match = _POD_LOG_DIR.fullmatch(name)
    if match is None:
        return None
    return match[3].lower(), f"{match[1]}/{match[2]}"
