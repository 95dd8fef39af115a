"""One vocabulary for what the gate decided and what a round ended with, for every writer and reader.

``Verdict`` is the gate's decision on a candidate (``meta.json``'s ``gate.decision``): ``retrain``'s gate and
the bootstrap's promote stage write it, ``adapters list`` and the Training tab show it. ``Outcome`` is what a
``retrain`` round or a ``bootstrap`` ended with (their reports, the bootstrap's state, the scheduler's state,
the command lines' last line). Records written before both took these (the bootstrap wrote "rejected" or
"promoted" as its gate decision) still read: ``read_verdict`` / ``read_outcome`` accept the other spelling.

A module of its own, with no imports of the project, so the registry and the command lines that only read a
decision do not load the gate's evaluation stack.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The gate's decision on a candidate: ``meta.json``'s ``gate.decision``, written the same by ``retrain``
    and ``bootstrap`` and shown as is by ``adapters list`` and the Training tab."""

    PROMOTE = "promote"
    """It beats the live model: it goes live unless promotion was turned off."""
    REJECT = "reject"
    """It does not: it stays in the registry for ``cypherloop adapters promote``."""
    MANUAL = "manual"
    """Not gated: ``cypherloop train --promote`` made it live."""
    NOT_EVALUATED = "not evaluated"
    """Not gated: ``cypherloop train --register`` added it."""


class Outcome(StrEnum):
    """What a retrain round or a bootstrap ended with (``RetrainReport.status``, the bootstrap's report and
    state, the scheduler's ``last_status``)."""

    RUNNING = "running"
    PROMOTED = "promoted"
    """The gate said promote and the new version is live."""
    REJECTED = "rejected"
    """The gate said reject; the version stays in the registry."""
    TRAINED = "trained"
    """The gate said promote; not promoted on request (``--no-promote``)."""
    SKIPPED = "skipped"
    """retrain: a version was already trained on the same data with the same recipe, or the data holds no
    held-out questions to gate a candidate on (nothing trained)."""
    PAUSED = "paused"
    """bootstrap: stopped after a stage on request (``--stop-after``)."""
    FAILED = "failed"


_OLD_VERDICTS = {"promoted": Verdict.PROMOTE, "rejected": Verdict.REJECT, "trained": Verdict.PROMOTE}
"""The bootstrap wrote its outcome as the gate decision until both took ``Verdict`` ("trained": it beat the
live model, promotion was off)."""
_OLD_OUTCOMES = {"promote": Outcome.PROMOTED, "reject": Outcome.REJECTED}


def read_verdict(value: object) -> Verdict | None:
    """A recorded gate decision in this vocabulary, the other spellings accepted (None: none or unknown)."""
    return _read(Verdict, _OLD_VERDICTS, value)


def read_outcome(value: object) -> Outcome | None:
    """A recorded round or bootstrap outcome in this vocabulary, the other spellings accepted (None:
    unknown)."""
    return _read(Outcome, _OLD_OUTCOMES, value)


def _read(kind: type[Any], old: dict[str, Any], value: object) -> Any:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    try:
        return kind(text)
    except ValueError:
        return old.get(text)
