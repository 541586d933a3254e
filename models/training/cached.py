"""Simulated traffic replayed once: the training world's feature table is kept under `.local/models/`,
named by everything it is made of (the configuration, and the code of the simulator and of the features),
so a second `make train` that changes only the model reuses it instead of simulating the world again."""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
# The code a table is made by: any change to it makes another name.
SOURCES = ("services/simulator", "models/features", "models/training/dataset.py", "streams/schemas")
T = TypeVar("T")


def code_digest(sources: tuple[str, ...] = SOURCES) -> str:
    digest = hashlib.sha256()
    for source in sources:
        path = ROOT / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def name_of(*parts: Any) -> str:
    """A file name for what `parts` (reprs of frozen dataclasses, numbers) and the code make."""
    described = "|".join(repr(p) for p in parts) + "|" + code_digest()
    return hashlib.sha256(described.encode()).hexdigest()[:20]


def kept(directory: Path, stem: str, make: Callable[[], T], *parts: Any) -> T:
    """`make()`'s result, from `directory` if the same parts and code made it before. Only files this
    function wrote are read back (the directory is the checkout's own `.local`)."""
    path = directory / f"{stem}-{name_of(*parts)}.pickle"
    if path.exists():
        log.info("reusing %s", path)
        with path.open("rb") as f:
            value: T = pickle.load(f)  # noqa: S301 - written by this function, in the checkout's .local
        return value
    value = make()
    keep(path, value)
    return value


def keep(path: Path, value: object) -> None:
    """Written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    with partial.open("wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)
