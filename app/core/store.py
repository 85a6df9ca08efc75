"""The corrections store: what people said a digit really was, kept durably and exactly once.

One schema through SQLAlchemy on two databases: an embedded SQLite file for one server (WAL,
fsync on every commit) or PostgreSQL for a fleet of servers sharing one store. A correction is
committed before its id is handed out, so a worker killed after answering loses nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import (CheckConstraint, DateTime, Engine, LargeBinary, SmallInteger, String, UniqueConstraint,
                        create_engine, delete, event, func, select, text)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, deferred, mapped_column

from model.corrections import Corrections

SCHEMA_VERSION = 1
# PostgreSQL advisory lock taken by every write, so that the cap and "stored once" hold across servers.
_WRITE_LOCK = 0x64696769  # "digi"


class StoreError(RuntimeError):
    """The database cannot be used: unreachable, or made by a newer digitpad."""


class StoreFullError(StoreError):
    """The cap on stored corrections is reached."""


class Base(DeclarativeBase):
    pass


class Correction(Base):
    __tablename__ = "corrections"
    __table_args__ = (
        UniqueConstraint("digest", "label", name="uq_corrections_field_label"),
        CheckConstraint("label BETWEEN 0 AND 9", name="ck_corrections_label"),
        CheckConstraint("predicted BETWEEN 0 AND 9", name="ck_corrections_predicted"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))  # SHA-256 of the field: "the same field"
    field: Mapped[bytes] = mapped_column(LargeBinary(784))  # 28x28 uint8, white ink on black
    label: Mapped[int] = mapped_column(SmallInteger)
    predicted: Mapped[int | None] = mapped_column(SmallInteger)
    model_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    original: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))  # the image as sent, when small enough

    def image(self) -> np.ndarray:
        return np.frombuffer(self.field, np.uint8).reshape(28, 28)


class SchemaVersion(Base):
    __tablename__ = "digitpad_schema"

    version: Mapped[int] = mapped_column(primary_key=True)


@dataclass(frozen=True)
class Saved:
    id: int
    created: bool  # False: this field with this label was already stored, under `id`


def _sqlite_durable(engine: Engine) -> None:
    """WAL so readers never wait for the writer; fsync at every commit; writers queue, not fail."""

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # transactions begin below, not in the driver
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def begin(connection) -> None:
        # Take the write lock up front: a read that later upgrades to a write can fail in WAL mode.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Store:
    """Corrections in the database at `url`; with `create`, the schema is made or checked first."""

    def __init__(self, url: str, *, create: bool = True, max_corrections: int | None = None) -> None:
        # postgresql:// means psycopg 2 to SQLAlchemy; digitpad ships psycopg 3.
        url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)
        try:
            self.engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot use the database URL {_safe(url)}: {exc}") from None
        self.postgres = self.engine.dialect.name == "postgresql"
        if self.engine.dialect.name == "sqlite":
            _sqlite_durable(self.engine)
        self.max_corrections = max_corrections
        if create:
            self._migrate()
        # No connection outlives start-up: gunicorn forks its workers after this, and a pooled
        # connection shared by two processes corrupts both.
        self.engine.dispose()

    def _migrate(self) -> None:
        try:
            with self.engine.begin() as connection:
                if self.postgres:  # two servers starting at once must not both create the tables
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})
                Base.metadata.create_all(connection)
                version = connection.scalar(select(func.max(SchemaVersion.version)))
                if version is None:
                    connection.execute(SchemaVersion.__table__.insert().values(version=SCHEMA_VERSION))
                elif version > SCHEMA_VERSION:
                    raise StoreError(f"the corrections database has schema version {version}, newer than this "
                                     f"digitpad's {SCHEMA_VERSION}: upgrade digitpad")
        except SQLAlchemyError as exc:
            reason = " ".join(str(getattr(exc, "orig", None) or exc).split())  # one line
            raise StoreError(f"cannot open the corrections database {self.engine.url.render_as_string()}: "
                             f"{exc.__class__.__name__}: {reason}") from None

    def add(self, field: np.ndarray, label: int, predicted: int | None, model_version: str,
            original: bytes | None = None) -> Saved:
        """Store one correction, committed before returning; the same field and label twice is stored once."""
        field = np.ascontiguousarray(field, np.uint8)
        digest = hashlib.sha256(field.tobytes()).digest()
        with Session(self.engine) as session, session.begin():
            if self.postgres:
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})
            existing = session.scalar(select(Correction.id).where(Correction.digest == digest,
                                                                  Correction.label == label))
            if existing is not None:
                return Saved(existing, created=False)
            if self.max_corrections is not None and self._count(session) >= self.max_corrections:
                raise StoreFullError(f"the corrections store is full ({self.max_corrections:,} corrections); "
                                     "the operator must export and clear it before more can be taken")
            row = Correction(digest=digest, field=field.tobytes(), label=label, predicted=predicted,
                             model_version=model_version[:64], created_at=datetime.now(timezone.utc),
                             original=original)
            session.add(row)
            session.flush()
            return Saved(row.id, created=True)

    @staticmethod
    def _count(session: Session) -> int:
        return session.scalar(select(func.count()).select_from(Correction))

    def page(self, limit: int, offset: int) -> tuple[int, list[Correction]]:
        """The total, and `limit` corrections from `offset`, newest first (for review)."""
        with Session(self.engine) as session:
            rows = session.scalars(select(Correction).order_by(Correction.id.desc()).limit(limit).offset(offset))
            return self._count(session), list(rows)

    def delete(self, correction_id: int) -> bool:
        with Session(self.engine) as session, session.begin():
            return session.execute(delete(Correction).where(Correction.id == correction_id)).rowcount > 0

    def dataset(self) -> Corrections:
        """Every correction, oldest first, as training and the export files take them."""
        with Session(self.engine) as session:
            rows = session.execute(select(Correction.field, Correction.label).order_by(Correction.id)).all()
        images = np.frombuffer(b"".join(r.field for r in rows), np.uint8).reshape(-1, 28, 28)
        return Corrections(images.copy(), np.array([r.label for r in rows], np.uint8))

    def close(self) -> None:
        self.engine.dispose()


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparseable URL)"
