"""Peak resident memory of a piece of work, measured in a fresh interpreter after its imports and a warm-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def peak_rss_growth_mb(work: str, warm_up: str, **names) -> tuple[float, object]:
    """MB by which `work`'s peak RSS exceeds the RSS before it (after `warm_up`), and what it left in `result`.

    Both are Python source run in a subprocess (from the repository root, so `tests.helpers` imports), with
    `names` (as strings) in the dict `names`. The kernel's high-water mark is reset (`/proc/self/clear_refs`)
    after the warm-up, so the peak is the work's own.
    """
    script = "\n".join(
        [
            "import json, sys",
            "names = json.loads(sys.argv[1])",
            warm_up,
            "def kb(key):",
            "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(key))",
            "open('/proc/self/clear_refs', 'w').write('5')",  # the peak so far becomes the current RSS
            "before = kb('VmRSS:')",
            work,
            'print(json.dumps({"kb": kb("VmHWM:") - before, "result": result}))',
        ]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps({k: str(v) for k, v in names.items()})],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["kb"] / 1024, out["result"]
