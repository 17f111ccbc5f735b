"""Several LiveRec nodes on one machine: each an ASGI server and its own realtime and batch
Celery workers with distinct node names, all on one PostgreSQL and one Valkey.

Built from devstack's ``Supervisor`` and ``worker_commands`` (a node's workers are the
devstack's, renamed), so a node runs what production runs. Each realtime worker also consumes
a queue of its own (``node_queue``): a test can hand one node a task and kill that node
mid-task.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field

from devstack.__main__ import worker_commands
from devstack.supervisor import Supervisor
from tests.reliability.procs import wait_port
from tests.stack import free_port


def node_queue(name: str) -> str:
    return f"liverec.node.{name}"


@dataclass
class Node:
    name: str
    port: int | None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/liverec/ws/"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Every process of the node at once, as a lost machine (whole process groups: Celery's
        pool children and uvicorn included), then reaped."""
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            proc.wait(30)


def node_commands(name: str) -> list[tuple[str, list[str]]]:
    """devstack's worker commands for one node: one realtime worker (also on the node's own
    queue) and the batch worker, with node names unique to the node."""
    out = []
    for role, cmd in worker_commands(sys.executable, realtime=1):
        cmd = list(cmd)
        at = cmd.index("-n", cmd.index("worker"))  # the node name (a batch command opens with nice -n)
        cmd[at + 1] = f"{role}-{name}@%h"
        if role == "rt":
            q = cmd.index("-Q")
            cmd[q + 1] = f"{cmd[q + 1]},{node_queue(name)}"
        out.append((f"{role}-{name}", cmd))
    return out


def start_node(sup: Supervisor, name: str, *, web: bool = True) -> Node:
    """Start a node's workers and (``web``) its uvicorn on a free port; returns when it listens.
    The workers answer once their Celery start-up is done (``wait_workers``)."""
    node = Node(name=name, port=free_port() if web else None)
    for label, cmd in node_commands(name):
        node.procs[label] = sup.start(label, cmd)
    if web:
        node.procs[f"web-{name}"] = sup.start(
            f"web-{name}", [sys.executable, "-m", "uvicorn", "demo.asgi:application", "--host", "127.0.0.1",
                            "--port", str(node.port), "--log-level", "warning"])
    return node


def wait_ready(app, nodes: list[Node], timeout: float = 180.0) -> None:
    """Each node's ASGI server listens and each of its workers answers a ping by node name."""
    import time

    deadline = time.monotonic() + timeout
    for node in nodes:
        if node.port:
            wait_port(node.port, node.procs[f"web-{node.name}"], timeout=max(1.0, deadline - time.monotonic()))
    wanted = {f"{role}-{node.name}" for node in nodes for role in ("rt", "batch")}
    while True:
        replies = app.control.ping(timeout=1.0) or []
        answered = {name.split("@", 1)[0] for reply in replies for name in reply}
        if wanted <= answered:
            return
        for node in nodes:
            for label, proc in node.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{label} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers {sorted(wanted - answered)} did not answer")
