"""Alerts: what the scorer tells the coordination service about a flow it finds suspicious."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from streams.schemas.events import EVENT_ID_MAX, INSTITUTION_ID_MAX, Account, Amount, InstitutionId, Phone

# call_then_transfer: a victim paying after a suspicious call the alert tells; mule_fan_in: an account
# collecting from many and paying on; suspicious_payment: a victim's payment the model finds likely a scam
# for other reasons than a call (investment, job or loan scams run over apps and messages, an account taken
# over). Consumers store it as text.
Typology = Literal["call_then_transfer", "mule_fan_in", "suspicious_payment"]
Action = Literal["warn_citizen", "notify_police", "recommend_stop_payment"]
# The kind of scam the model thinks it is (docs/simulator.md describes each), beside the alert's kind.
ScamTypology = Literal[
    "impersonation_police",
    "impersonation_service",
    "investment",
    "job_scam",
    "loan",
    "mule_network",
    "wallet_scam",
    "account_takeover",
    "sim_swap",
]

_ALERT_NS = uuid.UUID("6f1d3c1e-7d0e-4b36-9a57-2f0d7d2e8a11")
# A bound on the feature vector an alert carries (the model has 36 today), so a malformed message
# cannot make every consumer store a huge array.
MAX_FEATURES = 256
MAX_PAYMENTS = 200  # a victim's payments in one episode; more are summed into the last revision's amount
MAX_TRIGGERS = MAX_PAYMENTS + 1  # a victim's alert: the call, if any, then its payments
# An event as the services name it, `institution:event_id` (`event_ref`): no longer than its parts allow, so
# the scorer cannot write a longer one (its own bug would show) and what consumers store it in holds it (the
# notifier's warning episode, VARCHAR(200), is the typology and the alert's first trigger).
EVENT_REF_MAX = INSTITUTION_ID_MAX + 1 + EVENT_ID_MAX
EventRef = Annotated[str, Field(min_length=1, max_length=EVENT_REF_MAX, description="institution:event_id")]


class Subject(BaseModel):
    """Who and which money the alert is about; the fields a workflow needs and no more."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: Phone | None = Field(None, description="the likely victim's phone, to warn them")
    account: Account | None = Field(None, description="the account the alert is about (victim's or mule's)")
    institution: InstitutionId | None = Field(None, description="the institution holding `account`")
    payee_account: Account | None = Field(None, description="where the victim's money went")
    payee_institution: InstitutionId | None = None


class AlertPayment(BaseModel):
    """One of the episode's money-outs the alert is about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_ref: EventRef = Field(description="institution:event_id of the money-out")
    amount: Amount
    occurred_at: AwareDatetime
    payee_account: Account | None = None
    payee_institution: InstitutionId | None = None


class Alert(BaseModel):
    """One alert per scam episode and subject. Later payments of the same episode are sent as revisions of
    the same alert (same `alert_id`, a higher `revision`, the payments so far): a consumer updates what it
    holds instead of counting a new alert. docs/alerts.md says how to merge them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: uuid.UUID = Field(description="deterministic: the same episode always gives the same id")
    typology: Typology
    score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(min_length=1, description="in words an operator understands")
    recommended_actions: list[Action] = Field(min_length=1)
    subject: Subject
    triggering_event_ids: list[EventRef] = Field(
        min_length=1, max_length=MAX_TRIGGERS, description="institution:event_id of each trigger"
    )
    amount_at_risk: str | None = Field(None, description="decimal CNY")
    event_time: AwareDatetime = Field(description="when the last triggering event happened")
    created_at: AwareDatetime
    scorer_version: str
    # The model's input, kept so a case's outcome can later label it for training (models.training.feedback).
    # Optional: rule-based alerts have none, and messages from before these fields stay valid.
    features: list[float] | None = Field(None, max_length=MAX_FEATURES, description="model input, in order")
    feature_set: str | None = Field(
        None, max_length=16, description="FEATURE_SET_HASH of the code that computed `features`"
    )
    revision: int = Field(
        1, ge=1, description="1 when raised; each later payment of the episode sends the alert again, +1"
    )
    incident_id: uuid.UUID | None = Field(
        None,
        description="the incident the alert belongs to: alerts about the same collection account (its "
        "victims' alerts and the account's own) share it (`incident_id_for`)",
    )
    payments: list[AlertPayment] = Field(
        default_factory=list,
        max_length=MAX_PAYMENTS,
        description="the episode's money-outs known at this revision; amount_at_risk is their sum",
    )
    scam_typology: ScamTypology | None = Field(None, description="the kind of scam the model thinks it is")
    scam_typology_score: float | None = Field(
        None, ge=0, le=1, description="the model's probability of `scam_typology` among scam kinds"
    )
    schema_version: Literal[1] = 1


alert_adapter: TypeAdapter[Alert] = TypeAdapter(Alert)


# What the consumers' columns hold (NUMERIC(15, 2): below 10^13; VARCHAR(64)). An amount at risk is a
# sum (a mule's hour of inflows, each a valid amount), so a scorer can write one that fits no column.
AMOUNT_AT_RISK_PATTERN = r"^(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?$"
STORED_AMOUNT_LIMIT = Decimal(10) ** 13
MAX_SCORER_VERSION = 64


class ReceivedAlert(Alert):
    """An alert as its consumers (coordination, notifier) read it: top-level fields a newer scorer adds
    are ignored, so a scorer may be upgraded before its consumers without them skipping its alerts.
    The scorer itself writes `Alert`, which refuses unknown fields, so its own mistakes still show.
    Its values are bounded to what the consumers store: one they could not store would fail its whole
    batch at every attempt (the decoder skips it, counted, as it does any invalid alert)."""

    model_config = ConfigDict(extra="ignore")  # frozen, as Alert

    amount_at_risk: str | None = Field(
        None, pattern=AMOUNT_AT_RISK_PATTERN, description="decimal CNY, below 10^13, 2 decimals at most"
    )
    scorer_version: str = Field(max_length=MAX_SCORER_VERSION)

    @field_validator("payments")
    @classmethod
    def _payments_sum_is_stored(cls, payments: list[AlertPayment]) -> list[AlertPayment]:
        """Each payment's amount fits, but the consumers store their sum (coordination merging a revision,
        the notifier growing a warning's amount at risk and, from it, a case's amount lost)."""
        if sum((p.amount for p in payments), Decimal(0)) >= STORED_AMOUNT_LIMIT:
            raise ValueError("their sum is 10^13 or more, past what the consumers' NUMERIC(15, 2) holds")
        return payments


received_alert_adapter: TypeAdapter[ReceivedAlert] = TypeAdapter(ReceivedAlert)


def alert_id_for(typology: str, subject_key: str, trigger: str) -> uuid.UUID:
    """A stable id, so a re-scored trigger (after a crash) produces the same alert, not a new one."""
    return uuid.uuid5(_ALERT_NS, f"{typology}|{subject_key}|{trigger}")


def incident_id_for(institution: str, account: str) -> uuid.UUID:
    """The incident around a collection account: every alert naming it as payee or subject shares it."""
    return uuid.uuid5(_ALERT_NS, f"incident|{institution}/{account}")


def event_ref(institution: str, event_id: str) -> str:
    return f"{institution}:{event_id}"
