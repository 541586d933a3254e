"""Which incident an alert belongs to: the one rule, in SQL, that every incident query uses.

Victims' alerts name the account their money went to (the payee); the mule's own alert names it as
its subject. Both group under that account, so one mule paying out 14 victims is one incident with
14 victims. An alert with no account (a warning-only episode) groups by the victim's phone and its
first trigger (the scam call every transfer of the episode shares).

When the scorer's alerts carry an incident key of their own, `incident_key` returns that column and
nothing else changes.
"""

from __future__ import annotations

from sqlalchemy import String, case, func, literal
from sqlalchemy.sql.elements import ColumnElement

from services.coordination.alerts.models import AlertRow


def _field(name: str) -> ColumnElement[str]:
    return AlertRow.subject[name].astext


def incident_key() -> ColumnElement[str]:
    """The grouping key of an alert (it holds account numbers: never shown or sent; see `incident_id`)."""
    unknown = literal("?", String)
    return case(
        (
            (AlertRow.typology == "mule_fan_in") & _field("account").is_not(None),
            "mule:" + func.coalesce(_field("institution"), unknown) + "/" + _field("account"),
        ),
        (
            _field("payee_account").is_not(None),
            "mule:" + func.coalesce(_field("payee_institution"), unknown) + "/" + _field("payee_account"),
        ),
        else_="episode:"
        + func.coalesce(_field("phone"), unknown)
        + "|"
        + func.coalesce(AlertRow.triggering_event_ids[1], unknown),
    )


def incident_id() -> ColumnElement[str]:
    """An opaque, stable id of the incident: what URLs and clients use instead of the key."""
    return func.substr(func.md5(incident_key()), 1, 20)
