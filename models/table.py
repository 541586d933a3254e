"""The feature table: one row per scored money-out, the feature columns in FEATURE_NAMES order, a `label`
column and a few descriptive columns. Stored as `.npz` (fast, for `make train`) or `.csv`/`.csv.gz` (any
tool can write one: feedback exports and outside data sets train the same way)."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import numpy as np

META = ("event_ref", "episode_id", "typology")  # text columns
TIMES = ("scored_at", "occurred_at")  # seconds since the epoch


class TableError(ValueError):
    """A table that cannot be used as asked; the message names the file and what is wrong."""


@dataclass
class FeatureTable:
    features: tuple[str, ...]
    X: np.ndarray  # float64, rows × features
    label: np.ndarray  # int8, 1 = money lost to a scam
    scored_at: np.ndarray
    occurred_at: np.ndarray
    event_ref: np.ndarray  # str
    episode_id: np.ndarray  # str, "" outside a scam
    typology: np.ndarray  # str, "" outside a scam

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def subset(self, mask: np.ndarray) -> FeatureTable:
        return FeatureTable(
            self.features,
            self.X[mask],
            self.label[mask],
            self.scored_at[mask],
            self.occurred_at[mask],
            self.event_ref[mask],
            self.episode_id[mask],
            self.typology[mask],
        )

    def columns(self, names: tuple[str, ...]) -> np.ndarray:
        """The feature matrix in the order `names` asks, or KeyError naming what is missing."""
        missing = [n for n in names if n not in self.features]
        if missing:
            raise KeyError(f"the table lacks features {missing}")
        index = [self.features.index(n) for n in names]
        return self.X[:, index]


def save(table: FeatureTable, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npz":
        np.savez_compressed(
            path,
            features=np.array(table.features),
            X=table.X,
            label=table.label,
            scored_at=table.scored_at,
            occurred_at=table.occurred_at,
            event_ref=table.event_ref,
            episode_id=table.episode_id,
            typology=table.typology,
        )
        return
    with _open(path, "wt") as out:
        writer = csv.writer(out)
        writer.writerow([*META, *TIMES, "label", *table.features])
        for i in range(len(table)):
            writer.writerow(
                [table.event_ref[i], table.episode_id[i], table.typology[i]]
                + [f"{table.scored_at[i]:.3f}", f"{table.occurred_at[i]:.3f}", int(table.label[i])]
                + [f"{v:.6g}" for v in table.X[i]]
            )


def load(path: Path) -> FeatureTable:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return FeatureTable(
                tuple(str(f) for f in data["features"]),
                data["X"],
                data["label"],
                data["scored_at"],
                data["occurred_at"],
                data["event_ref"],
                data["episode_id"],
                data["typology"],
            )
    with _open(path, "rt") as src:
        reader = csv.reader(src)
        header = next(reader)
        rows = list(reader)
    col = {name: i for i, name in enumerate(header)}
    if "label" not in col:
        raise TableError(f"{path}: a feature table needs a `label` column")
    features = tuple(h for h in header if h not in (*META, *TIMES, "label"))

    def text(name: str) -> np.ndarray:
        return np.array([r[col[name]] if name in col else "" for r in rows])

    def number(name: str) -> np.ndarray:
        return np.array([float(r[col[name]]) if name in col else 0.0 for r in rows])

    return FeatureTable(
        features,
        np.array([[float(r[col[f]]) for f in features] for r in rows], dtype=np.float64).reshape(
            len(rows), len(features)
        ),
        number("label").astype(np.int8),
        number("scored_at"),
        number("occurred_at"),
        text("event_ref"),
        text("episode_id"),
        text("typology"),
    )


def load_each(paths: Sequence[Path]) -> list[FeatureTable]:
    """The tables (e.g. a simulated one and a feedback export), each with its columns in the first one's
    order; a table without the first one's feature columns (in any order) is a TableError naming the
    file and the columns it lacks or adds."""
    if not paths:
        raise TableError("no feature table given")
    first = load(paths[0])
    out = [first]
    for path in paths[1:]:
        table = load(path)
        missing = [f for f in first.features if f not in table.features]
        extra = [f for f in table.features if f not in first.features]
        if missing or extra:
            raise TableError(
                f"{path}: its feature columns differ from {paths[0]}'s: missing {missing}, extra {extra}"
            )
        out.append(replace(table, features=first.features, X=table.columns(first.features)))
    return out


def concat(tables: Sequence[FeatureTable]) -> FeatureTable:
    """The rows of tables in the order given; their columns are in one order already (`load_each`)."""
    if len(tables) == 1:
        return tables[0]
    return FeatureTable(
        tables[0].features,
        np.concatenate([t.X for t in tables]).astype(np.float64, copy=False),
        np.concatenate([t.label for t in tables]).astype(np.int8, copy=False),
        np.concatenate([t.scored_at for t in tables]).astype(np.float64, copy=False),
        np.concatenate([t.occurred_at for t in tables]).astype(np.float64, copy=False),
        np.concatenate([t.event_ref.astype(str) for t in tables]),
        np.concatenate([t.episode_id.astype(str) for t in tables]),
        np.concatenate([t.typology.astype(str) for t in tables]),
    )


def _open(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, mode, newline="")  # type: ignore[return-value]
    return path.open(mode[0], newline="")
