"""The feature table: one row per scored money-out, its feature columns, a `label` column and a few
descriptive columns. Stored as `.npz` (fast, for `make train`) or `.csv`/`.csv.gz` (any tool can write
one: feedback exports and outside data sets train the same way).

A CSV is read column by column with numpy (`loadtxt` with `usecols`), never as rows of Python objects,
and its header is checked before anything else is read: a table without its label, time or id column
is refused naming the column (the CLI exits 2), and an optional column it lacks reads as empty."""

from __future__ import annotations

import csv
import gzip
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO

import numpy as np

META = ("event_ref", "episode_id", "typology")  # text columns
TIMES = ("scored_at", "occurred_at")  # seconds since the epoch
OPTIONAL = ("occurred_at", "episode_id", "typology")  # read as empty (n/a in reports) when missing


class TableError(ValueError):
    """A table that cannot be used as asked; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Columns:
    """Which columns of a table hold the label (0/1), the time (seconds since the epoch or ISO 8601, with
    a zone) and the row's id; every other column that is not one of META or TIMES is a feature unless
    `features` names them."""

    label: str = "label"
    time: str = "scored_at"
    id: str = "event_ref"
    features: tuple[str, ...] | None = None

    @property
    def metadata(self) -> frozenset[str]:
        return frozenset((*META, *TIMES, "label", self.label, self.time, self.id))


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
    # The optional columns this table really had (a table without episodes cannot report on them).
    present: frozenset[str] = frozenset(OPTIONAL)

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
            self.present,
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


def load(path: Path, columns: Columns = Columns()) -> FeatureTable:
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    if path.suffix == ".npz":
        return _load_npz(path, columns)
    header = read_header(path)
    index = {name: i for i, name in enumerate(header)}
    for role, name in (("label", columns.label), ("time", columns.time), ("id", columns.id)):
        if name not in index:
            raise TableError(f"{path}: no {role} column {name!r} (the header has {len(header)} columns)")
    features = _feature_names(path, header, columns)

    # Two passes over the file: the numbers (label and features) and the text (id, time, descriptions).
    numeric = _loadtxt(path, [index[n] for n in (columns.label, *features)], np.float64)
    label = numeric[:, 0]
    if not np.isin(label, (0, 1)).all():
        raise TableError(f"{path}: the label column {columns.label!r} must hold 0 or 1 only")
    wanted = [columns.id, columns.time, *(o for o in OPTIONAL if o in index and o != columns.time)]
    texts = dict(zip(wanted, _loadtxt(path, [index[n] for n in wanted], str).T, strict=True))
    scored_at = _times(path, columns.time, texts[columns.time])
    blank = np.full(len(label), "", dtype=str)
    return FeatureTable(
        features,
        numeric[:, 1:],
        label.astype(np.int8),
        scored_at,
        _times(path, "occurred_at", texts["occurred_at"]) if "occurred_at" in texts else scored_at.copy(),
        texts[columns.id],
        texts.get("episode_id", blank),
        texts.get("typology", blank),
        frozenset(o for o in OPTIONAL if o in texts),
    )


def read_header(path: Path) -> list[str]:
    """The column names of a CSV table (its first line), read before anything else."""
    with _open(path, "rt") as src:
        try:
            header = next(csv.reader(src))
        except StopIteration:
            raise TableError(f"{path}: the file is empty") from None
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise TableError(f"{path}: columns named twice: {duplicated}")
    return [h.strip() for h in header]


def _feature_names(path: Path, header: Sequence[str], columns: Columns) -> tuple[str, ...]:
    if columns.features is None:
        return tuple(h for h in header if h not in columns.metadata)
    missing = [f for f in columns.features if f not in header]
    if missing:
        raise TableError(f"{path}: no feature columns {missing}")
    return columns.features


def _loadtxt(path: Path, usecols: list[int], dtype: type) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": a header alone
            out: np.ndarray = np.loadtxt(
                path, delimiter=",", skiprows=1, usecols=usecols, dtype=dtype, quotechar='"', ndmin=2
            )
    except ValueError as exc:  # numpy names the row and the column
        raise TableError(f"{path}: {exc}") from None
    return out.reshape(-1, len(usecols))


def _times(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    """Seconds since the epoch, from numbers or from ISO 8601 instants with a zone."""
    try:
        return values.astype(np.float64)
    except ValueError:
        pass
    out: np.ndarray = np.empty(len(values))
    for i, value in enumerate(values):
        text = str(value)
        try:
            out[i] = float(text)
            continue
        except ValueError:
            pass
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise TableError(
                f"{path}: row {i + 1} of the time column {name!r} is {text!r}: seconds since the epoch "
                "or an ISO 8601 instant with a zone"
            ) from None
        if at.tzinfo is None:
            raise TableError(f"{path}: row {i + 1} of the time column {name!r} has no zone: {text!r}")
        out[i] = at.timestamp()
    return out


def _load_npz(path: Path, columns: Columns) -> FeatureTable:
    with np.load(path, allow_pickle=False) as data:
        for required in ("features", "X", "label", "scored_at", "event_ref"):
            if required not in data:
                raise TableError(f"{path}: no {required!r} array (a table saved by models.training.table)")
        n = len(data["label"])
        blank = np.full(n, "", dtype=str)
        present = frozenset(k for k in OPTIONAL if k in data)
        table = FeatureTable(
            tuple(str(f) for f in data["features"]),
            data["X"],
            data["label"],
            data["scored_at"],
            data["occurred_at"] if "occurred_at" in data else data["scored_at"].copy(),
            data["event_ref"],
            data["episode_id"] if "episode_id" in data else blank,
            data["typology"] if "typology" in data else blank,
            present,
        )
    if columns.features is not None:
        missing = [f for f in columns.features if f not in table.features]
        if missing:
            raise TableError(f"{path}: no feature columns {missing}")
        table = replace(table, features=columns.features, X=table.columns(columns.features))
    return table


def load_each(paths: Sequence[Path], columns: Columns = Columns()) -> list[FeatureTable]:
    """The tables (e.g. a simulated one and a feedback export), each with its columns in the first one's
    order; a table without the first one's feature columns (in any order) is a TableError naming the
    file and the columns it lacks or adds."""
    if not paths:
        raise TableError("no feature table given")
    first = load(paths[0], columns)
    out = [first]
    for path in paths[1:]:
        table = load(path, columns)
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
        frozenset.intersection(*(t.present for t in tables)),
    )


def _open(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, mode, newline="")  # type: ignore[return-value]
    return path.open(mode[0], newline="")
