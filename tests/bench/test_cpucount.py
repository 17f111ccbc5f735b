"""bench.cpucount.strays finds ASGI servers and workers that the bench did not start."""
from __future__ import annotations

import subprocess
import sys
import time

from bench import cpucount

# A process whose command line reads as an ASGI server's (cpucount._role looks for "uvicorn").
SLEEPER = [sys.executable, "-c", "import time; time.sleep(30)", "uvicorn", "demo.asgi:application"]


def test_a_server_left_by_another_run_is_a_stray_and_our_own_is_not():
    own = subprocess.Popen(SLEEPER)
    # Started through a shell that exits at once: its parent becomes init, as an orphan of an
    # interrupted bench does.
    orphan_pid = int(subprocess.run(["sh", "-c", " ".join(f"'{a}'" for a in SLEEPER) + " >/dev/null 2>&1 & echo $!"],
                                    capture_output=True, text=True, check=True).stdout)
    try:
        for _ in range(50):
            found = cpucount.strays()
            if any(line.startswith(f"{orphan_pid} ") for line in found):
                break
            time.sleep(0.05)
        assert any(line.startswith(f"{orphan_pid} (asgi)") for line in found), found
        assert not any(line.startswith(f"{own.pid} ") for line in found), found
    finally:
        own.kill()
        subprocess.run(["kill", str(orphan_pid)], check=False)
        own.wait()
