"""A niced process's work runs niced everywhere: in its own session and in its database backends.

The batch worker runs at a lower CPU priority (devstack: ``nice -n 10``) so that its folds,
summaries and training never take a core from a push. Two things defeated that on Linux:

- Autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``, on by default in Debian's
  and most desktop kernels) shares the CPU between sessions first, and a process's nice value
  only weighs against the other processes of its own session. Every service of the stack runs
  in a session of its own, so the niced batch worker still got a full session's share, as much
  as a realtime worker. A session's weight is its autogroup's nice value
  (``/proc/<pid>/autogroup``), which is set here to the process's own niceness.
- The association fold spends most of its time in its PostgreSQL backend, a process at the
  default priority, and PostgreSQL starts every backend in a session of its own (``setsid`` in
  each child). Under bench_freshness's load, in the ~300 ms after each once-a-second fold began,
  pushes took p50 52-70 ms against 31-36 for the rest of the second. So each backend this
  process connects to gets the process's niceness too, both as its nice value and as its
  autogroup's.

Only where that can work: a server on this host (a unix socket or a loopback address) and a
process allowed to renice it (the same user, as with the embedded PostgreSQL, or root). Anywhere
else it does nothing and says so once. A process at the default priority (the realtime workers,
the ASGI server) changes nothing. Under systemd or containers, give the batch worker's unit a
lower CPU weight instead (``CPUWeight=``): cgroups share the CPU the way autogroups do here.
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
_AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")
_unable = False  # said once, then quiet


def own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


@functools.lru_cache(maxsize=1)
def autogroups_enabled() -> bool:
    """Read once per process: a kernel setting an administrator rarely flips."""
    try:
        return _AUTOGROUP_SWITCH.read_text().strip() == "1"
    except OSError:  # not Linux, or no autogroup support: nice values weigh machine-wide
        return False


def autogroup_niceness(pid: int | str = "self") -> int | None:
    """The nice value of ``pid``'s autogroup (its session's weight), or None without autogroups."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split("nice")[-1])
    except (OSError, ValueError):
        return None


def set_autogroup_niceness(nice: int, pid: int | str = "self") -> None:
    """Weigh ``pid``'s whole session as a process of niceness ``nice``. Raises OSError when not allowed."""
    Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def _lower(pid: int, nice: int) -> None:
    """Give process ``pid`` niceness ``nice``, as nice value and (with autogroups) as its
    session's weight, where it is higher now. Raises OSError when not allowed or gone."""
    if os.getpriority(os.PRIO_PROCESS, pid) < nice:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    if autogroups_enabled():
        current = autogroup_niceness(pid)
        if current is not None and current < nice:
            set_autogroup_niceness(nice, pid)


def lower_own_session() -> None:
    """A niced process (the batch worker) weighs its session by its own niceness, so the nice
    value it was started with counts against the other services, not only inside its session.
    Called at worker start-up (``recsys.warmup``)."""
    nice = own_niceness()
    if nice <= 0:
        return
    try:
        _lower(os.getpid(), nice)
    except OSError as exc:
        logger.info("recsys: this worker's session keeps its CPU weight (%s)", exc)


def _is_local(settings_dict: dict) -> bool:
    host = str(settings_dict.get("HOST") or "")
    return host.startswith("/") or host in _LOCAL_HOSTS


def follow_niceness(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: give the new connection's backend this process's
    niceness (nice value and autogroup) when it is above the default."""
    global _unable
    if _unable or connection.vendor != "postgresql":
        return
    nice = own_niceness()
    if nice <= 0 or not _is_local(connection.settings_dict):
        return
    pid = getattr(getattr(connection.connection, "info", None), "backend_pid", None)
    if not pid:
        return
    try:
        _lower(pid, nice)  # a pooled connection comes back here on every checkout: syscalls, no query
    except (ProcessLookupError, FileNotFoundError):  # the backend exited meanwhile
        return
    except OSError as exc:  # not ours to renice (another user's server)
        _unable = True
        logger.info("devstack: database backends keep their priority (could not renice pid %s: %s)", pid, exc)


def connect() -> None:
    """Only in a process started niced: the others (the realtime workers, the ASGI server)
    open connections on their hot paths and have nothing to pass on."""
    from django.db.backends.signals import connection_created

    if own_niceness() > 0:
        connection_created.connect(follow_niceness, dispatch_uid="devstack.priority")
