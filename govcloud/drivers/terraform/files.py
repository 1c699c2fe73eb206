"""Small file helpers of the Terraform driver's workspaces and run directories: ``write_atomic`` (readers
never see half a file), ``sha256_file`` (what approval of a saved plan binds to), ``new_ident`` (a run's
time-ordered ident). Used by ``driver``; the engine uses ``sha256_file`` to check a plan file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path


def new_ident() -> str:
    """Time-ordered and unique: ``20261126T170312-3f9a1c``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
