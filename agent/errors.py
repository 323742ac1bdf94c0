"""The project's own exceptions; storage errors are turned into these."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pg_errors


class AppError(Exception):
    """Base class: carries a message safe to show the user."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AppError):
    """The thing does not exist, or belongs to someone else."""

    status_code = 404


class Conflict(AppError):
    """The request clashes with what is already stored."""

    status_code = 409


class InvalidInput(AppError):
    """The request is well-formed but not acceptable."""

    status_code = 422


class StorageError(AppError):
    """The database failed in a way the caller cannot fix."""

    status_code = 503


@contextmanager
def translate_db_errors(conflict_message: str = "That already exists.") -> Iterator[None]:
    """Turn psycopg integrity errors into Conflict/InvalidInput and the rest into StorageError."""
    try:
        yield
    except pg_errors.UniqueViolation as exc:
        raise Conflict(conflict_message) from exc
    except (pg_errors.ForeignKeyViolation, pg_errors.CheckViolation, pg_errors.NotNullViolation) as exc:
        raise InvalidInput(f"Invalid data: {exc.diag.message_primary}") from exc
    except psycopg.OperationalError as exc:
        raise StorageError("The database is not reachable right now.") from exc
