"""Lookup of a large store entry: after its first verification (the cheap manifest: a stat per file)
beside a lookup that hashes every file (the store before the cheap manifest, and ``--verify``).

A synthesis artifact is FINN's whole output folder, often gigabytes; it is looked up by every
report, board run and rerun. The entry here is one file of ``--gb`` GB plus ``--files`` small ones
(a FINN build folder holds thousands).

Usage: python benchmarks/bench_store_lookup.py [--gb 1] [--files 2000] [--repeats 20] [--dir DIR]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pynqrepro.core.store import ArtifactStore, is_built

BLOCK = 1 << 20


def _entry(gb: float, files: int):
    def build(out: Path) -> None:
        block = bytes(range(256)) * (BLOCK // 256)
        with open(out / "bitfile.bin", "wb") as handle:
            for index in range(int(gb * 1024)):
                handle.write(block[:-8] + index.to_bytes(8, "little"))
        reports = out / "reports"
        reports.mkdir()
        for index in range(files):
            (reports / f"report_{index}.rpt").write_text(f"report {index}\n" * 20)
    return build


def _median_s(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        assert run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the entry's large file (GB)")
    parser.add_argument("--files", type=int, default=2000, help="small files beside it")
    parser.add_argument("--repeats", type=int, default=20, help="lookups timed (median reported)")
    parser.add_argument("--dir", type=Path, default=None, help="where the store goes (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = ArtifactStore(Path(tmp) / "store")
        build = _entry(args.gb, args.files)
        start = time.perf_counter()
        artifact = store.get_or_build("finn_synthesis", {"bench": args.gb}, build)
        built_s = time.perf_counter() - start
        cheap = _median_s(lambda: store.get_or_build("finn_synthesis", {"bench": args.gb}, build) == artifact,
                          args.repeats)
        full = _median_s(lambda: is_built(artifact.path, verify=True), max(3, args.repeats // 5))
        print(f"entry: {args.gb:g} GB + {args.files} small files (built and published in {built_s:.1f} s)")
        print(f"lookup after its first verification (cheap manifest): {cheap * 1e3:.2f} ms (median of {args.repeats})")
        print(f"lookup hashing every file (--verify; the store before): {full * 1e3:.0f} ms "
              f"(median of {max(3, args.repeats // 5)}, files in the page cache)")
        print(f"ratio: {full / cheap:.0f}x")


if __name__ == "__main__":
    main()
