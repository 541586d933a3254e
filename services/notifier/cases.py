"""The bridge from a citizen's "I am being defrauded" to the coordination case and its stop-payment.

`NoCaseService` stands in while the coordination case service is not deployed with the notifier:
the answer is still recorded (outcome reached_too_late) and the phone desk calls the person.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.logging import log_fields
from services.notifier.desk import service as desk
from services.notifier.warnings.models import CitizenWarning

log = logging.getLogger(__name__)


class NoCaseService:
    async def defrauded(
        self, session: AsyncSession, *, warning: CitizenWarning, actor: str
    ) -> uuid.UUID | None:
        # Without a case service a human must act at once: the desk calls and opens the case by hand.
        await desk.open_task(session, warning_id=warning.id, reason="high_risk", priority=1.0)
        log.warning(
            "no case service: defrauded answer queued for the desk", extra=log_fields(warning=str(warning.id))
        )
        return None
