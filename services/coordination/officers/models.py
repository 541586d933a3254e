"""A console session of an officer, as coordination knows it: live while it is here, not ended and not
past its end. Removed once past its end (`sessions.SessionPurge`): a session missing is as ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base


class OfficerSession(Base):
    __tablename__ = "officer_sessions"
    __table_args__ = (
        Index("ix_officer_sessions_subject", "subject"),
        Index("ix_officer_sessions_expires_at", "expires_at"),
    )

    # Random, and no secret beside it: the id is of use only with the officer's own token, which every
    # call about the session carries (a session is its officer's alone).
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(120), comment="the officer's `sub`")
    unit: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
