"""Users and their login sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import AUTOINCREMENT, isoformat, new_security_stamp, new_uuid, utcnow

ROLES = ("viewer", "user", "admin")


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    display_name: Mapped[str | None] = mapped_column(String(120))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Every token carries the stamp it was issued under; a new stamp (deactivation, role or
    # password change) makes all earlier tokens of this user stop working at once.
    security_stamp: Mapped[str] = mapped_column(String(32), default=new_security_stamp)

    def renew_security_stamp(self) -> None:
        self.security_stamp = new_security_stamp()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "username": self.username,
            "role": self.role,
            "is_active": self.is_active,
            "display_name": self.display_name,
            "settings": self.settings or {},
            "created_at": isoformat(self.created_at),
            "last_login_at": isoformat(self.last_login_at),
        }


class AuthSession(db.Model):
    """One login: the access and refresh tokens it issues carry its id (`sid`); logout revokes it."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
