"""A service plot's file name and its verdict line: the root cgroup is `service_root.png`, and
a service watched too short to judge is not said to have "no sustained growth"."""

from __future__ import annotations

import numpy as np

from utils.judge.services import ServicePlot
from utils.outputs.service_plots import plot_names


def plot(service: str, cgroup: str) -> ServicePlot:
    times = np.array(["2026-01-01T00:00:00"], "datetime64[s]")
    values = np.array([1.0])
    return ServicePlot(service, cgroup, times, values, values, None, "anon+swap", None)


def test_the_root_cgroup_has_a_name_of_its_own() -> None:
    plots = [
        plot("/", "/"),
        plot("web.service", "/system.slice/web.service"),
        plot("web.service", "/other/web.service"),
    ]
    assert plot_names(plots) == [
        "service_root.png",
        "service_web.service.png",
        "service_web.service_2.png",
    ]
