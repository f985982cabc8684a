"""Hosts of their own for tests: network namespaces on one bridge (`ip netns`, veth pairs).

Each host is a namespace with one interface on a private /24 the test picks; the bridge
holds the subnet's last address, so the test process itself can reach every host.
Everything is deleted on exit, processes left in a namespace included.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str

    def command(self, *args: str) -> list[str]:
        """`args` run on this host."""
        return ["ip", "netns", "exec", self.namespace, *args]


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"gbprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def lan(*names: str):
    """Yield {name: Host} for hosts on one bridge, addresses 10.x.y.1, .2, ... in order."""
    tag = f"{os.getpid() % 100000}{random.randrange(10)}"
    subnet = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
    bridge = f"gbbr{tag}"
    hosts = {name: Host(f"gb{tag}{name}", f"{subnet}.{i + 1}") for i, name in enumerate(names)}
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet}.254/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, host in enumerate(hosts.values()):
            _ip("netns", "add", host.namespace)
            _ip(
                "link", "add", f"gbv{tag}{i}", "type", "veth", "peer", "name", "eth0", "netns", host.namespace
            )
            _ip("link", "set", f"gbv{tag}{i}", "master", bridge, "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.namespace, "link", "set", "eth0", "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")
        yield hosts
    finally:
        for host in hosts.values():
            pids = subprocess.run(["ip", "netns", "pids", host.namespace], capture_output=True, text=True)
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
