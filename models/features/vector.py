"""The model's feature vector: person-side features of a money-out followed by its payee's features, and
the hash that names this exact feature set (an artifact built for another set is refused at load)."""

from __future__ import annotations

import hashlib

from models.features.account import PAYEE_FEATURES
from models.features.person import PERSON_FEATURES

# Bump when a feature's meaning changes without its name changing: the hash then changes too.
FEATURE_SET_REVISION = 2  # 2: no observation-length features (Stopline's uptime is no signal)
FEATURE_NAMES: tuple[str, ...] = PERSON_FEATURES + PAYEE_FEATURES
FEATURE_SET_HASH = hashlib.sha256(f"{FEATURE_SET_REVISION}|{','.join(FEATURE_NAMES)}".encode()).hexdigest()[
    :16
]
