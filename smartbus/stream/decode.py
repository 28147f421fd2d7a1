"""Split a batch of bus records into typed messages, skipping (and counting) any that do not decode."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from smartbus import messages, metrics
from smartbus.bus.base import Record
from smartbus.errors import ValidationError
from smartbus.messages import EncodedState, PredictionSet, RejectedPing, StopEvent, VehicleState

log = logging.getLogger(__name__)


@dataclass
class DecodedBatch:
    states: list[VehicleState] = field(default_factory=list)
    encoded_states: list[EncodedState] = field(default_factory=list)  # instead of states: see decode_batch
    events: list[StopEvent] = field(default_factory=list)
    predictions: list[PredictionSet] = field(default_factory=list)
    rejected: list[RejectedPing] = field(default_factory=list)
    undecodable: list[tuple[Record, str]] = field(default_factory=list)  # each with why it did not decode


def decode_batch(records: Sequence[Record], *, keep_states_encoded: bool = False) -> DecodedBatch:
    """`keep_states_encoded`: vehicle states stay as the bytes they came in (messages.EncodedState), checked but not
    built, for a writer that only passes them on."""
    batch = DecodedBatch()
    decode = messages.decode_keeping_states if keep_states_encoded else messages.decode
    for record in records:
        try:
            message = decode(record.value)
        except ValidationError as exc:
            batch.undecodable.append((record, str(exc)))  # told and counted once written: see skipped_undecodable
            continue
        if isinstance(message, VehicleState):
            batch.states.append(message)
        elif isinstance(message, EncodedState):
            batch.encoded_states.append(message)
        elif isinstance(message, StopEvent):
            batch.events.append(message)
        elif isinstance(message, PredictionSet):
            batch.predictions.append(message)
        elif isinstance(message, RejectedPing):
            batch.rejected.append(message)
    return batch


def skipped_undecodable(batch: DecodedBatch) -> None:
    """Log and count the batch's records that did not decode. A sink calls it once the rest of the batch is written:
    a batch that fails is decoded again when it is retried, and would count them again."""
    for record, why in batch.undecodable:
        log.warning("skipping undecodable record %s: %s", where(record), why)
    if batch.undecodable:
        metrics.PINGS_REJECTED.labels("undecodable_output").inc(len(batch.undecodable))


def where(record: Record) -> str:
    """Where a record is on the bus, as the logs and kept rejects name it: topic/partition@offset."""
    return f"{record.topic}/{record.partition}@{record.offset}"
