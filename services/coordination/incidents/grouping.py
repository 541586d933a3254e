"""Which incident an alert belongs to: the one rule, in SQL, that every incident query uses.

The scorer names the collection account at the centre of an alert in its `incident_id` (docs/alerts.md):
victims' alerts and the account's own share it, so one mule paying out 14 victims is one incident with
14 victims. Alerts stored before the scorer did so group by the same account read from their subject
(the payee of a victim's alert, the subject of a `mule_fan_in` alert); one with no account at all (a
warning-only episode) by the victim's phone and its first trigger.
"""

from __future__ import annotations

from sqlalchemy import String, case, cast, func, literal
from sqlalchemy.sql.elements import ColumnElement

from services.coordination.alerts.models import AlertRow


def _field(name: str) -> ColumnElement[str]:
    field: ColumnElement[str] = AlertRow.subject[name].astext
    return field


def incident_key() -> ColumnElement[str]:
    """The grouping key of an alert (it may hold account numbers: never shown or sent; see `incident_id`)."""
    unknown = literal("?", String)
    return case(
        (AlertRow.incident_id.is_not(None), "incident:" + cast(AlertRow.incident_id, String)),
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
