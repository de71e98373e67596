"""The names of cgroups, against real path shapes taken from each runtime's source or docs
(named beside each case), with Hypothesis for any path and any runtime file."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utils.collect.cgroup_names import (
    docker_name,
    identify,
    parse_pod_log_dir,
    service_name,
)

DOCKER_ID = "cf87ba651579c9231db817909e7865e5747bd7abcac0c57ce23cf4abbaee046b"
POD_UID = "6a4ce4a0-ba47-11ea-b2a7-0cc47ac5979e"
PODS = {POD_UID: "shop/web-7d9f8-x2x4q", "8712f785-1a3e-41ec-a00b-e2dcc77431cb": "kube-system/dns"}

# (path, name without any runtime file, where the shape comes from)
CASES = [
    # systemd: a unit's cgroup is named after it (systemd.unit(5), systemd.slice(5));
    # coroot-node-agent cgroup/cgroup_test.go for the first three.
    ("/system.slice/docker.service", "docker.service", "coroot cgroup_test.go"),
    ("/runtime.slice/kubelet.service", "kubelet.service", "coroot cgroup_test.go"),
    (
        "/system.slice/system-postgresql.slice/postgresql@9.4-main.service",
        "postgresql@9.4-main.service",
        "coroot cgroup_test.go",
    ),
    ("/system.slice/system-serial\\x2dgetty.slice", "system-serial\\x2dgetty.slice", "coroot"),
    ("/user.slice/user-1000.slice/user@1000.service", "user@1000.service", "systemd.special(7)"),
    ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope", "systemd-logind(8)"),
    (
        "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-x.scope",
        "app-gnome-x.scope",
        "systemd.special(7), user@.service's app.slice",
    ),
    ("/system.slice/nginx.service/worker", "nginx.service", "a unit's own sub-cgroup (v2)"),
    # Docker: cgroupfs driver /docker/<id>, systemd driver docker-<id>.scope (moby
    # daemon/oci_linux.go; coroot cgroup_test.go).
    (
        "/docker/b43d92bf1e5c6f78bb9b7bc6f40721280299855ba692092716e3a1b6c0b86f3f",
        "docker:b43d92bf1e5c",
        "coroot cgroup_test.go",
    ),
    (f"/system.slice/docker-{DOCKER_ID}.scope", "docker:cf87ba651579", "coroot cgroup_test.go"),
    # Podman: cgroupfs driver /libpod_parent/libpod-<id> (minikube's cgroup examples,
    # kubernetes/minikube#9508), systemd driver machine.slice/libpod-<id>.scope and its
    # conmon's libpod-conmon-<id>.scope (podman's docs on --cgroup-manager).
    (
        "/libpod_parent/libpod-73a4fb9769188ae5dc51cb7e24b9f2752a4af7b802a8949f06a7b2f2363ab0e9",
        "podman:73a4fb976918",
        "minikube#9508",
    ),
    (f"/machine.slice/libpod-{DOCKER_ID}.scope", "podman:cf87ba651579", "podman docs"),
    (f"/machine.slice/libpod-conmon-{DOCKER_ID}.scope", "podman-conmon:cf87ba651579", "podman"),
    (
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{DOCKER_ID}.scope",
        "podman:cf87ba651579",
        "rootless podman under the user's manager",
    ),
    # containerd and CRI-O outside Kubernetes: runc's systemd driver turns
    # "slice:prefix:name" into slice/prefix-name.scope.
    (f"/system.slice/cri-containerd-{DOCKER_ID}.scope", "containerd:cf87ba651579", "runc"),
    (f"/system.slice/crio-{DOCKER_ID}.scope", "crio:cf87ba651579", "cri-o"),
    (f"/system.slice/crio-conmon-{DOCKER_ID}.scope", "crio-conmon:cf87ba651579", "cri-o"),
    # Kubernetes: kubelet's pkg/kubelet/cm/cgroup_manager_linux.go (ToSystemd, ToCgroupfs);
    # the paths are coroot cgroup_test.go's.
    (
        f"/kubepods/burstable/pod{POD_UID}/"
        "17db96a24ae1e9dd57143e62b1cb0d2d35e693c65c774c7470e87b0572e07c1a",
        f"k8s:pod{POD_UID}",
        "coroot cgroup_test.go: cgroupfs driver, docker",
    ),
    (
        "/kubepods/besteffort/pod0d08203e-255a-11e9-8cd9-0007cb0b2cc8/"
        "671a50f5d60566556912f61511d0ec9e4d5c78d53fbc4676727180438bbbbc55/kube-proxy",
        "k8s:pod0d08203e-255a-11e9-8cd9-0007cb0b2cc8",
        "coroot cgroup_test.go",
    ),
    (
        "/kubepods/poda38c12e8-255a-11e9-8cd9-0007cb0b2cc8/"
        "32c562ed81a2622b37b80cb216859820ba51bd694f60ee4cf10d07a4011266f8",
        "k8s:poda38c12e8-255a-11e9-8cd9-0007cb0b2cc8",
        "coroot cgroup_test.go: a Guaranteed pod, no QoS level",
    ),
    (
        "/kubepods.slice/kubepods-besteffort.slice/"
        "kubepods-besteffort-pod8712f785_1a3e_41ec_a00b_e2dcc77431cb.slice/"
        "docker-73051af271105c07e1f493b34856a77e665e3b0b4fc72f76c807dfbffeb881bd.scope",
        "k8s:pod8712f785-1a3e-41ec-a00b-e2dcc77431cb",
        "coroot cgroup_test.go: systemd driver",
    ),
    (
        "/kubepods.slice/kubepods-burstable.slice/"
        "kubepods-burstable-pod2942c55e_c9cb_428a_93f4_eaf89c1f3ce0.slice/"
        "crio-49f9e8e5395d57c1083996c09e2e6f042d5fe1ec0310facab32f94912b35ce59.scope",
        "k8s:pod2942c55e-c9cb-428a-93f4-eaf89c1f3ce0",
        "coroot cgroup_test.go: CRI-O",
    ),
    (
        "/kubepods.slice/kubepods-burstable.slice/"
        "kubepods-burstable-pod3e61c214bc3ed9ff81e21474dd6cba17.slice/"
        "cri-containerd-c74b0f5062f0bc726cae1e9369ad4a95deed6b298d247f0407475adb23fa3190",
        "k8s:pod3e61c214bc3ed9ff81e21474dd6cba17",
        "coroot cgroup_test.go: containerd, a static pod's hash as uid",
    ),
    (
        "/system.slice/containerd.service/"
        "kubepods-burstable-pod4ed02c0b_0df8_4d14_a30e_fd589ee4143a.slice:cri-containerd:"
        "d4a9f9195eaf7e4a729f24151101e1de61f1398677e7b82acfb936dff0b4ce55",
        "k8s:pod4ed02c0b-0df8-4d14-a30e-fd589ee4143a",
        "coroot cgroup_test.go: containerd's slice:prefix:id kept as one name",
    ),
    ("/kubepods.slice", "kubepods.slice", "the QoS parent: a slice like any"),
    ("/kubepods/besteffort", "besteffort", "cgroupfs QoS parent: its last component"),
    # Anything else: the last component.
    ("/lxc/mysql-primary-db", "mysql-primary-db", "coroot cgroup_test.go"),
    ("/process_api/bedfed92c1173cef6fc83c8ced4308c3", "bedfed92c1173cef6fc83c8ced4308c3", "here"),
    ("/", "/", "the root cgroup"),
    ("", "/", "no path"),
]


@pytest.mark.parametrize(("path", "name", "source"), CASES)
def test_names_from_the_path_alone(path: str, name: str, source: str) -> None:
    assert service_name(path) == name, source


def test_names_with_the_runtimes_files() -> None:
    assert service_name(f"/system.slice/docker-{DOCKER_ID}.scope", {DOCKER_ID: "web"}) == (
        "docker:web"
    )
    assert service_name(f"/docker/{DOCKER_ID}", {DOCKER_ID: "db"}) == "docker:db"
    pod_path = f"/kubepods/burstable/pod{POD_UID}/{DOCKER_ID}"
    assert service_name(pod_path, pods=PODS) == "k8s:shop/web-7d9f8-x2x4q"
    # A container in a pod is named after the pod, whatever runtime runs it.
    assert service_name(pod_path, {DOCKER_ID: "k8s_web"}, PODS) == "k8s:shop/web-7d9f8-x2x4q"
    systemd_pod = (
        "/kubepods.slice/kubepods-besteffort.slice/"
        "kubepods-besteffort-pod8712f785_1a3e_41ec_a00b_e2dcc77431cb.slice"
    )
    assert service_name(systemd_pod, pods=PODS) == "k8s:kube-system/dns"


def test_identify_says_what_to_look_up() -> None:
    assert identify(f"/docker/{DOCKER_ID}") == ("docker", DOCKER_ID, "")
    assert identify(f"/kubepods/pod{POD_UID}/x") == ("k8s", POD_UID, POD_UID)
    assert identify("/system.slice/nginx.service") == ("unit", "nginx.service", "")


def test_docker_config() -> None:
    # moby's container.Container as daemon/daemon.go saves it to config.v2.json, abridged.
    config = {"ID": DOCKER_ID, "Name": "/web", "State": {"Running": True}, "Config": {}}
    assert docker_name(json.dumps(config).encode()) == "web"
    assert docker_name(b'{"Name": ""}') is None
    assert docker_name(b'{"Name": 7}') is None
    assert docker_name(b"[1, 2]") is None
    assert docker_name(b"\xff\xfe") is None
    assert docker_name(b"[" * 100_000) is None  # deeper than the parser recurses


def test_pod_log_dirs() -> None:
    # kubelet's BuildPodLogsDirectory: /var/log/pods/<namespace>_<pod>_<uid>.
    assert parse_pod_log_dir(f"shop_web-7d9f8-x2x4q_{POD_UID}") == (
        POD_UID,
        "shop/web-7d9f8-x2x4q",
    )
    assert parse_pod_log_dir(POD_UID) is None  # the old layout, /var/log/pods/<uid>
    assert parse_pod_log_dir("a_b") is None
    assert parse_pod_log_dir("a_b_c_d") is None


@given(st.text())
def test_any_path_has_a_name(path: str) -> None:
    assert service_name(path)
    assert service_name("/" + path)


@given(st.text(), st.dictionaries(st.text(), st.text()), st.dictionaries(st.text(), st.text()))
def test_any_lookups_give_a_name(path: str, docker: dict[str, str], pods: dict[str, str]) -> None:
    assert service_name(path, docker, pods)


@given(st.binary())
def test_any_config_bytes_give_a_name_or_none(data: bytes) -> None:
    name = docker_name(data)
    assert name is None or (name and not name.startswith("/"))


@given(st.text())
def test_any_log_dir_name_parses_or_not(name: str) -> None:
    found = parse_pod_log_dir(name)
    assert found is None or (found[0] and "/" in found[1])
