"""The store's identity: a random id written once into ``<store>/_store.json``, so that a SLURM job
can check that its node sees the very store its submitter wrote to."""

import json
import os
import uuid
from pathlib import Path

STORE_ID = "_store.json"


def store_id(root: Path) -> str:
    """The store's identity, created on first use (a job compares it with the submitter's)."""
    path = Path(root) / STORE_ID
    try:
        return json.loads(path.read_text())["id"]
    except (OSError, ValueError, KeyError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STORE_ID}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps({"id": uuid.uuid4().hex}))
    try:
        os.link(tmp, path)  # the first process to create it wins; everyone reads its id
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return json.loads(path.read_text())["id"]
