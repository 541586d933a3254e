"""Versioned schemas of the events institutions send, over HTTPS or straight to Kafka.

Every event is keyed by the phone number of the person it concerns (`person_phone`), so a
person's calls, transfers and payments meet in one partition of the event topics.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164 phone number")]
Account = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{3,33}$", description="account number")]
INSTITUTION_ID_MAX = 40
INSTITUTION_ID_PATTERN = rf"^[a-z0-9][a-z0-9-]{{1,{INSTITUTION_ID_MAX - 1}}}$"
InstitutionId = Annotated[str, Field(pattern=INSTITUTION_ID_PATTERN, description="institution id")]
RESERVED_PREFIX = "stopline"  # no institution id may start with it: the services' Kafka principals do


def institution_id_problem(institution_id: str) -> str | None:
    """Why `institution_id` cannot name an institution (its events, topics and Kafka principal), if not."""
    if not re.fullmatch(INSTITUTION_ID_PATTERN, institution_id):
        return "2 to 40 lower-case letters, digits and hyphens, starting with a letter or digit"
    if institution_id.startswith(RESERVED_PREFIX):
        return f"ids starting with {RESERVED_PREFIX!r} are reserved"
    return None


# Amounts travel as decimal strings (a JSON number would pass through a binary float): "48000.00". The
# published pattern and the checks below accept the same strings (the range is Field's, with its message).
AMOUNT_PATTERN = r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,11}(\.[0-9]{1,2})?)$"
_DECIMAL_TEXT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]{1,2})?")


def _amount_text(value: Any) -> Any:
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise ValueError('a decimal string with at most two places, like "48000.00"')
        return Decimal(value)
    if isinstance(value, int | float):
        raise ValueError('a decimal string, like "48000.00", not a JSON number')
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_amount_text),
    Field(gt=0, lt=Decimal("1000000000000"), max_digits=14, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "description": 'CNY, e.g. "48000.00"'}),
]
EVENT_ID_MAX = 64
EventId = Annotated[str, Field(min_length=1, max_length=EVENT_ID_MAX, pattern=r"^[A-Za-z0-9._:-]+$")]


# Any way of writing a number Python or pydantic would read (`1.7e9`, `.5`): each is Unix time to pydantic.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
NOT_A_NUMBER = "an ISO 8601 date-time with a time zone, not a number"


def _not_a_number(value: Any) -> Any:
    # Pydantic reads a bare number as Unix time (seconds or milliseconds, by its size): too easy to
    # get wrong by a factor of 1,000, so a time is always written out with its time zone.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise PydanticCustomError("not_a_number", NOT_A_NUMBER)
    return value


# Every date-time a client gives (an event's, a request body's, a query string's): with its time zone
# (pydantic refuses a naive one), never a bare number.
Instant = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
EventTime = Annotated[
    Instant,
    Field(
        description="when it happened at the institution: ISO 8601 with a time zone, at most a few minutes "
        "ahead of Stopline's clock and within its history window (STOPLINE_EVENT_MAX_AHEAD_S, "
        "STOPLINE_EVENT_HISTORY_DAYS)"
    ),
]


BLANK = "must not be blank (empty or only white space)"


def blank(text: str | None) -> bool:
    """Whether a text says nothing: absent, empty or only white space."""
    return text is None or not text.strip()


def _not_blank(value: str) -> str:
    if blank(value):
        raise PydanticCustomError("blank", BLANK)
    return value


# A text that is required says something: white space alone is refused as an empty text is.
NonBlank = Annotated[str, Field(min_length=1), AfterValidator(_not_blank)]


def _integer(value: Any) -> Any:
    # The published schemas say integer: pydantic's lax int would also take true, 2.0 and " 42 " (as StrictInt
    # refuses them; a Literal takes no `strict`, hence this).
    if type(value) is not int:
        raise ValueError("an integer (a JSON number without a fraction or exponent)")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_integer)]

SOURCES = ("telecom", "bank", "payment")


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    event_id: EventId = Field(description="unique per institution; the de-duplication key")
    occurred_at: EventTime
    schema_version: SchemaVersion = 1

    @property
    def source(self) -> str:
        return self.type.split(".", 1)[0]

    @property
    def person_phone(self) -> str:
        """The partition key: the phone number of the customer this event is about."""
        raise NotImplementedError


class Call(EventBase):
    """A call received by a subscriber of the reporting operator."""

    type: Literal["telecom.call"]
    caller: Phone
    callee: Phone
    duration_s: StrictInt = Field(ge=0, le=86_400)
    caller_reported: StrictBool = Field(False, description="the operator's own fraud reports name the caller")

    @property
    def person_phone(self) -> str:
        return self.callee


class Sms(EventBase):
    type: Literal["telecom.sms"]
    sender: Phone
    recipient: Phone
    contains_link: StrictBool = False

    @property
    def person_phone(self) -> str:
        return self.recipient


class SimChange(EventBase):
    type: Literal["telecom.sim_change"]
    subscriber: Phone

    @property
    def person_phone(self) -> str:
        return self.subscriber


PAYEE_INSTITUTION = (
    "the payee's institution by its Stopline id (not a bank code), so the payee account is one with its "
    "institution's own reports; a payee institution outside Stopline by an id of your choosing (accepted, "
    "and counted)"
)


class Transfer(EventBase):
    """A transfer out of an account held at the reporting bank."""

    type: Literal["bank.transfer"]
    payer_account: Account
    payer_phone: Phone = Field(description="the payer's phone number on file")
    payee_account: Account
    payee_institution: InstitutionId = Field(description=PAYEE_INSTITUTION)
    amount: Amount
    currency: Literal["CNY"] = "CNY"
    channel: Literal["mobile", "online", "counter", "atm"] = "mobile"

    @property
    def person_phone(self) -> str:
        return self.payer_phone


class AccountOpened(EventBase):
    type: Literal["bank.account_opened"]
    account: Account
    holder_phone: Phone

    @property
    def person_phone(self) -> str:
        return self.holder_phone


class Login(EventBase):
    type: Literal["bank.login"]
    account: Account
    holder_phone: Phone
    device_id: NonBlank = Field(max_length=64)
    new_device: StrictBool = False

    @property
    def person_phone(self) -> str:
        return self.holder_phone


class Payment(EventBase):
    type: Literal["payment.payment"]
    payer_account: Account
    payer_phone: Phone
    payee_account: Account
    payee_institution: InstitutionId = Field(description=PAYEE_INSTITUTION)
    amount: Amount
    currency: Literal["CNY"] = "CNY"

    @property
    def person_phone(self) -> str:
        return self.payer_phone


class TopUp(EventBase):
    type: Literal["payment.topup"]
    account: Account
    holder_phone: Phone
    amount: Amount
    source_account: Account

    @property
    def person_phone(self) -> str:
        return self.holder_phone


class Withdrawal(EventBase):
    type: Literal["payment.withdrawal"]
    account: Account
    holder_phone: Phone
    amount: Amount
    destination_account: Account

    @property
    def person_phone(self) -> str:
        return self.holder_phone


Event = Annotated[
    Call | Sms | SimChange | Transfer | AccountOpened | Login | Payment | TopUp | Withdrawal,
    Field(discriminator="type"),
]
EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (Call, Sms, SimChange, Transfer, AccountOpened, Login, Payment, TopUp, Withdrawal)
}
event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


class Envelope(BaseModel):
    """The message on an event topic: the event, who sent it, and when Stopline received it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    institution: InstitutionId
    received_at: datetime | None = Field(
        None, description="set by the ingest API; absent when produced directly"
    )
    event: Event


envelope_adapter: TypeAdapter[Envelope] = TypeAdapter(Envelope)


def batch_schema(max_events: int) -> dict[str, Any]:
    """JSON Schema of the ingest API's body, `{"events": [...]}`, with its definitions under `$defs` as
    `#/components/schemas/...` references (as OpenAPI holds them)."""

    class EventBatch(BaseModel):
        model_config = ConfigDict(extra="forbid")
        events: list[Event] = Field(min_length=1, max_length=max_events)

    return TypeAdapter(EventBatch).json_schema(ref_template="#/components/schemas/{model}")


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event type and of the Kafka envelope, by name."""
    out = {name: cls.model_json_schema() for name, cls in EVENT_TYPES.items()}
    out["envelope"] = Envelope.model_json_schema()
    return out
