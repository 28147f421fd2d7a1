"""One root error for the whole project, with a `retriable` flag (as aiokafka's errors.py does)."""

from __future__ import annotations


class SmartbusError(Exception):
    """Root of every error this project raises on purpose."""

    retriable: bool = False


class ValidationError(SmartbusError):
    """Input that breaks a rule. Names the field and the offending value."""

    def __init__(self, reason: str, field: str | None = None, value: object = None) -> None:
        self.reason = reason
        self.field = field
        self.value = value
        where = f" ({field}={value!r})" if field is not None else ""
        super().__init__(f"{reason}{where}")


class FeedError(SmartbusError):
    """A GTFS feed that cannot be used. Names the file, the row and the problem."""

    def __init__(self, file: str, problem: str, row: int | None = None) -> None:
        self.file = file
        self.row = row
        self.problem = problem
        at = f" row {row}" if row is not None else ""
        super().__init__(f"{file}{at}: {problem}")


class ServiceUnavailable(SmartbusError):
    """A backing service (Kafka, PostgreSQL, Redis) did not answer. Trying again may work."""

    retriable = True
