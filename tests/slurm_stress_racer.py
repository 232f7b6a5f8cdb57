"""One racer of test_slurm.py's kill-anywhere test: a session that asks a SLURM-executed store for
every key, in its own order; a build runs as a SLURM job. A job failure it hears of (a job the
driver cancelled) ends it with exit 3, as a user would then rerun the command.

Usage: python slurm_stress_racer.py STORE CLUSTER_CONFIG KEYS SEED
"""

import random
import sys
import time
from pathlib import Path

from pynqrepro.core.atomic import atomic_write_text
from pynqrepro.core.executor import JobFailed, JobSpec
from pynqrepro.core.executor_options import make_executor
from pynqrepro.core.progress import ProgressLine
from pynqrepro.core.store import ArtifactStore


def content(name: str) -> str:
    return f"the artifact of {name}\n" * 100


def main() -> None:
    root, cluster_config, keys, seed = sys.argv[1:5]
    order = keys.split(",")
    random.Random(int(seed)).shuffle(order)
    store = ArtifactStore(Path(root), executor=make_executor("slurm", Path(cluster_config), progress=ProgressLine(None)))
    try:
        for name in order:
            def build(out: Path, name=name) -> None:
                time.sleep(1.0)
                atomic_write_text(out / "part1.txt", content(name))
                time.sleep(1.0)
                atomic_write_text(out / "part2.txt", content(name))

            artifact = store.get_or_build("slurm_stress", {"name": name}, build, job=JobSpec("finn"))
            assert (artifact.file("part1.txt").read_text(), artifact.file("part2.txt").read_text()) == \
                (content(name), content(name))
    except JobFailed:
        sys.exit(3)


if __name__ == "__main__":
    main()
