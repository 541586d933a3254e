"""What a stage-two snapshot brings back: the accounts of its partition and which institutions report
outflows, so a restarted instance does not read a reporting bank's payees as silent until that bank's
next outflow happens to reach it."""

from __future__ import annotations

from models.features.vector import FEATURE_NAMES
from services.scorer.account_stage import AccountStage
from services.scorer.settings import ScorerSettings
from services.scorer.snapshots import Snapshot
from streams.schemas.movements import Movement
from tests.scorer.scenes import score, unused_producer
from tests.scorer.test_warmup_gate import T0, SureModel, _inflow

SEEN = FEATURE_NAMES.index("payee_outflows_seen")


def _stage() -> AccountStage:
    model = SureModel()
    return AccountStage(ScorerSettings(), unused_producer(), prefix="", version="t", model=model)  # type: ignore[arg-type]


def _outflow(at: float) -> Movement:
    """The payee bank's own report of an account paying out: the bank reports outflows."""
    inflow = _inflow(at, "bank-a:out-1")
    update = {"direction": "out", "payer_phone": None, "person_features": None, "feature_set": None}
    return inflow.model_copy(update=update)


def test_a_restored_partition_knows_which_institutions_report_outflows() -> None:
    before = _stage()
    score(before, [_outflow(T0)])
    snapshot = Snapshot("accounts", 0, {}, before.checkpoints.layout, before._export(0), T0)

    after = _stage()
    after._restore(0, Snapshot.from_bytes(snapshot.to_bytes()).state)
    assert set(after.accounts[0]) == set(before.accounts[0]) == {"bank-a/6222000000000000001"}

    (pending,) = score(after, [_inflow(T0 + 3600, "bank-b:in-1")])[1]
    assert pending.row[SEEN] == 1.0  # bank-a's payees are seen paying out, as before the restart
    (silent,) = score(_stage(), [_inflow(T0 + 3600, "bank-b:in-2")])[1]
    assert silent.row[SEEN] == 0.0  # the same inflow, nothing restored: read as a silent bank
