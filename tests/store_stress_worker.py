"""One racer of tests/test_store_stress.py: asks the shared store for every key, in its own order,
through a resumable build of a few epochs, and may SIGKILL itself at the points a driver's random
kill rarely hits: right after winning a claim, between the fencing check and the rename that
publishes, right after publishing (claim not yet released) and while its heartbeat touches the claim.

It appends to a ledger (O_APPEND, one line per write) what an independent check needs:
``epoch KEY N PID`` once epoch N's file is in place, ``published KEY TOKEN`` once its publish
returned with its own manifest in the entry, ``kill POINT PID`` before it kills itself.

Usage: python store_stress_worker.py STORE LEDGER KEYS SEED SELF_KILL_P HEARTBEAT(0|1)
"""

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

from pynqrepro.core import claims
from pynqrepro.core import store as store_module
from pynqrepro.core.atomic import atomic_write_text
from pynqrepro.core.executor import JobSpec
from pynqrepro.core.store import MANIFEST, ArtifactStore

EPOCHS = 3
EPOCH_S = 0.06


def epoch_content(key: str, epoch: int) -> str:
    return f"weights of {key} after epoch {epoch}\n" * 50


def main() -> None:
    root, ledger_path, keys, seed, self_kill_p, heartbeat = sys.argv[1:7]
    rng = random.Random(int(seed))
    self_kill_p = float(self_kill_p)
    ledger = os.open(ledger_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def note(line: str) -> None:
        os.write(ledger, (line + "\n").encode())

    def maybe_die(point: str) -> None:
        if rng.random() < self_kill_p:
            note(f"kill {point} {os.getpid()}")
            os.kill(os.getpid(), signal.SIGKILL)

    claims.HEARTBEAT_S, claims.STALE_S = 0.05, 0.5  # the README's 30 s / 300 s, scaled by 1/600
    if heartbeat == "1":  # every other racer counts as another host: liveness by heartbeat alone
        claims.BOOT = f"racer-{os.getpid()}"

    try_claim, holds, publish, utime = claims.try_claim, claims.holds, store_module.BuildTask.publish, os.utime

    def claiming(base, record):
        won = try_claim(base, record)
        if won:
            maybe_die("claim")
        return won

    def fencing(base, record):
        holding = holds(base, record)
        if holding:
            maybe_die("publish-checked-not-renamed")
        return holding

    def publishing(task, built_by):
        published = publish(task, built_by)
        manifest = json.loads((task.final / MANIFEST).read_text()) if published else {}
        if manifest.get("built_by", {}).get("claim") == task.record.token:
            note(f"published {task.key} {task.record.token}")
        maybe_die("published-not-released")
        return published

    def touching(path, *args, **kwargs):
        if ".claim-" in str(path):
            maybe_die("heartbeat")
        return utime(path, *args, **kwargs)

    claims.try_claim, claims.holds, os.utime = claiming, fencing, touching
    store_module.BuildTask.publish = publishing

    store = ArtifactStore(Path(root))
    order = keys.split(",")
    rng.shuffle(order)
    for name in order:
        def build(out: Path, name=name) -> None:
            for epoch in range(1, EPOCHS + 1):
                path = out / f"epoch{epoch}.ckpt"
                if path.exists():
                    continue  # resumed: done by an earlier holder
                time.sleep(EPOCH_S * rng.random())
                atomic_write_text(path, epoch_content(name, epoch))
                note(f"epoch {name} {epoch} {os.getpid()}")

        artifact = store.get_or_build("stress", {"name": name}, build, job=JobSpec("train", resumable=True))
        for epoch in range(1, EPOCHS + 1):
            assert artifact.file(f"epoch{epoch}.ckpt").read_text() == epoch_content(name, epoch)


if __name__ == "__main__":
    main()
