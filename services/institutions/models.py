"""Tables of institutions and their hashed API credentials."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.kit.db import Base

KINDS = ("telecom", "bank", "payment")


class Institution(Base):
    __tablename__ = "institutions"
    __table_args__ = (CheckConstraint("kind in ('telecom', 'bank', 'payment')", name="kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Delivery of instructions: the Kafka topic `instructions.<id>` and/or a signed webhook. Stopline
    # signs with the webhook secret (HMAC is symmetric), so it is kept, sealed with STOPLINE_SECRETS_KEY;
    # after a rotation the previous secret signs too until `webhook_previous_until`.
    kafka_delivery: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    webhook_previous_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    webhook_previous_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiCredential(Base):
    __tablename__ = "api_credentials"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InstitutionUser(Base):
    """A person at an institution who answers instructions in the console (not the machine's API key).
    Only a scrypt hash of the password is stored."""

    __tablename__ = "institution_users"
    __table_args__ = (UniqueConstraint("institution_id", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    username: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InstitutionSession(Base):
    """A signed-in institution user: `sls_<token id>.<secret>`, the secret stored as SHA-256 only."""

    __tablename__ = "institution_sessions"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("institution_users.id"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
