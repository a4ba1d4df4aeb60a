"""The web page's tables: students, their saved answers, practice attempts, settings and sign-in attempts."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Column sizes. A roster id is at most 32 characters (classes/roster.py MAX_ID), a name at most 1,000; a blank's label
# is what the key's JSON calls it ("1a C[0,1]", "2b choice"), well under 100; an answer is what a student types into
# one box, refused above 200 characters (store.py), so no row is large.
ID_LENGTH = 64
NAME_LENGTH = 1000
LABEL_LENGTH = 100
TEXT_LENGTH = 200
KEY_LENGTH = 64
SOURCE_LENGTH = 200

# Constraint names fixed by convention, so the migration, the models and any later migration agree on them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A moment in UTC: timestamptz on PostgreSQL, naive UTC text on SQLite; always read back as an aware datetime."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime ({value.isoformat()}) for a UTC column; give one with a timezone")
        value = value.astimezone(timezone.utc)
        # SQLite keeps text: naive UTC text compares in time order, which a mix of offsets would not.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """The declarative base: every table of the web page, with fixed constraint names."""

    metadata = MetaData(naming_convention=NAMING)


class Student(Base):
    """A student of the roster and what they did on the page, by the moment (UTC) it first happened or last did."""

    __tablename__ = "students"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reopened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Answer(Base):
    """What a student typed into one blank (labelled as the key's JSON and the marker label it), and its revision."""

    __tablename__ = "answers"

    student_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("students.id", ondelete="CASCADE"),
                                            primary_key=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH), primary_key=True)
    text: Mapped[str] = mapped_column(String(TEXT_LENGTH))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer)


class Attempt(Base):
    """One practice "Check": the answers checked and what the marker said, both as JSON text."""

    __tablename__ = "attempts"
    __table_args__ = (Index(None, "student_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("students.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answers: Mapped[str] = mapped_column(Text)
    marks: Mapped[str] = mapped_column(Text)


class Setting(Base):
    """One setting of the assignment's web state (mode, deadline, released_at) as text."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SignInAttempt(Base):
    """A sign-in tried, from a client address or a code's prefix, kept a day for rate limiting."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (Index(None, "source", "created_at"), Index(None, "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(SOURCE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    succeeded: Mapped[bool] = mapped_column(Boolean)
