"""CPU seconds per process role over a bench phase, read from /proc (Linux).

Latency under load on 2 shared cores is set by who takes the CPU, so the freshness bench
prints each role's share of the phase: the ASGI server, the realtime workers, the batch
worker, PostgreSQL, Valkey and the bench client itself. Processes that start or exit within
the phase count from (or up to) the snapshot that saw them.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _role(pid: int, ppid: int, cmdline: str) -> str | None:
    if pid == os.getpid():
        return "bench client"
    if ppid == os.getpid() and "multiprocessing" in cmdline:
        return "load generator"  # the bench's own child processes (bench_freshness's background)
    if "uvicorn" in cmdline or "daphne" in cmdline:
        return "asgi"
    if "celery" in cmdline:
        if "liverec.realtime" in cmdline:
            return "realtime workers"
        if "liverec.batch" in cmdline:
            return "batch worker"
        return "celery (other)"
    if cmdline.startswith("postgres") or "/postgres" in cmdline.split(" ")[0]:
        # The machine's own PostgreSQL 15 runs too: count only the stack's (not under /usr/lib).
        return None if "/usr/lib/postgresql" in cmdline or ": 15/main" in cmdline else "postgres"
    if "valkey" in cmdline or "redis-server" in cmdline:
        return "valkey"
    return None


def _processes():
    """(pid, its /proc stat fields after the command name, its command line) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        yield int(entry.name), stat.rsplit(")", 1)[1].split(), cmdline


def snapshot() -> dict[int, tuple[str, float]]:
    """{pid: (role, CPU seconds so far)} for the processes of known roles."""
    out = {}
    for pid, fields, cmdline in _processes():
        role = _role(pid, int(fields[1]), cmdline)
        if role is None:
            continue
        out[pid] = (role, (int(fields[11]) + int(fields[12])) / TICKS)  # utime + stime
    return out


def strays() -> list[str]:
    """The ASGI servers and Celery workers running that this process did not start (not among
    its descendants): another bench's stack left behind, say. They take CPU, and one whose stack
    directory was restored under it writes into this bench's database (seen here: an orphaned
    ASGI server and load generator, left by an interrupted run, posted into the next run's
    stack, whose figures then counted their CPU and their events)."""
    found = [(pid, int(fields[1]), cmdline) for pid, fields, cmdline in _processes()]
    parents = {pid: ppid for pid, ppid, _ in found}
    me, out = os.getpid(), []
    for pid, ppid, cmdline in found:
        role = _role(pid, ppid, cmdline)
        if role not in ("asgi", "realtime workers", "batch worker", "celery (other)"):
            continue
        ancestor, seen = ppid, 0
        while ancestor not in (0, 1, me) and seen < 64:
            ancestor, seen = parents.get(ancestor, 0), seen + 1
        if ancestor != me:
            out.append(f"{pid} ({role}): {cmdline[:120]}")
    return out


def machine() -> dict[str, float]:
    """The whole machine's CPU seconds so far by state (/proc/stat): busy (user, nice, system,
    irq, softirq), idle, iowait and steal (time the hypervisor gave this VM's cores to others)."""
    fields = [int(x) / TICKS for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return {"busy": user + nice + system + irq + softirq, "idle": idle, "iowait": iowait, "steal": steal}


class Phase:
    """``with Phase() as p: ...`` then ``p.report()``: each role's CPU as cores busy on average."""

    def __enter__(self):
        self.before = snapshot()
        self.machine_before = machine()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.t0
        self.after = snapshot()
        self.machine_after = machine()
        return False

    def machine_shares(self) -> dict[str, float]:
        """The machine's cores by state over the phase (every process, not only the roles)."""
        return {k: (self.machine_after[k] - self.machine_before[k]) / self.seconds for k in self.machine_before}

    def shares(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for pid, (role, cpu) in self.after.items():
            start = self.before.get(pid, (role, 0.0))[1]
            used[role] = used.get(role, 0.0) + max(0.0, cpu - start)
        return {role: cpu / self.seconds for role, cpu in sorted(used.items(), key=lambda kv: -kv[1])}

    def report(self) -> str:
        shares = self.shares()
        parts = ", ".join(f"{role} {share:.2f}" for role, share in shares.items())
        whole = ", ".join(f"{k} {v:.2f}" for k, v in self.machine_shares().items())
        return (f"  CPU over {self.seconds:.0f} s, in cores busy: {parts} (sum {sum(shares.values()):.2f} of "
                f"{os.cpu_count()}); the whole machine, in cores: {whole}")
