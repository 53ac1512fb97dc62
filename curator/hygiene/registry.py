"""The registry of issue kinds: ``label`` (the audit's own kind) and the hygiene checks, in the order every surface
lists them (``issue_kinds`` of audit.parquet, the counts, the explorer's filters, ``export --drop``, the report).

Adding a check = one module under `curator.hygiene.kinds` and one line in `CHECKS` (ARCHITECTURE.md). Importing
this module declares the checks' columns in the column contract (`curator.columns.declare`).
"""
from __future__ import annotations

from curator import columns
from curator.config import ConfigError
from curator.hygiene.config import HygieneConfig
from curator.hygiene.kinds.duplicate import DuplicateCheck
from curator.hygiene.kinds.leak import LeakCheck
from curator.hygiene.kinds.outlier import OutlierCheck
from curator.hygiene.kinds.quality import QualityCheck
from curator.hygiene.plugin import HygieneCheck, IssueKind

#: the audit's own kind: the given label is probably wrong (curator.audit.aggregate)
LABEL = IssueKind("label", "label issue (likely wrong label)")

#: the hygiene checks, run in this order (the leak check reads the duplicate check's threshold)
CHECKS: list[HygieneCheck] = [
    DuplicateCheck(),
    LeakCheck(),
    QualityCheck(),
    OutlierCheck(),
]


def checks() -> tuple[HygieneCheck, ...]:
    return tuple(CHECKS)


def kinds() -> tuple[str, ...]:
    """Every issue kind, "label" first."""
    return (LABEL.kind, *(c.kind for c in CHECKS))


def words(kind: str) -> str:
    return LABEL.words if kind == LABEL.kind else check(kind).words


def check(kind: str) -> HygieneCheck:
    for c in CHECKS:
        if c.kind == kind:
            return c
    raise KeyError(f"no hygiene check of kind {kind!r}; known: {', '.join(c.kind for c in CHECKS)}")


def droppable() -> tuple[str, ...]:
    """The kinds ``curator export --drop`` accepts."""
    return tuple(c.kind for c in CHECKS if c.droppable)


def enabled(cfg: HygieneConfig) -> list[HygieneCheck]:
    """The checks the recipe leaves on (``hygiene.off`` lists the others); an unknown name is an error."""
    bad = [k for k in cfg.off if k not in {c.kind for c in CHECKS}]
    if bad:
        raise ConfigError(f"hygiene.off: unknown check(s) {bad}; known: {', '.join(c.kind for c in CHECKS)}")
    return [c for c in CHECKS if c.kind not in cfg.off]


def versions() -> dict[str, int]:
    """{kind: version} of the registered checks: part of the hygiene stage's fingerprint."""
    return {c.kind: c.version for c in CHECKS}


def table_columns() -> list[str]:
    """The checks' columns of RUN/hygiene.parquet in table order: every measurement first, then every flag."""
    own = [c for chk in CHECKS for c in chk.columns() if "hygiene" in c.tables]
    return [c.name for c in own if "audit" not in c.tables] + [c.name for c in own if "audit" in c.tables]


def fused_columns() -> list[str]:
    """The checks' columns copied from hygiene.parquet into audit.parquet (flags and their texts), in kind order."""
    return [c.name for chk in CHECKS for c in chk.columns() if "hygiene" in c.tables and "audit" in c.tables]


def audit_columns() -> list[str]:
    """Every audit.parquet column the checks contribute: the fused flags and the group keepers (``duplicate_of``)."""
    return fused_columns() + [chk.keeper.name for chk in CHECKS if chk.keeper]


def declare() -> None:
    """Declare every registered check's columns in the column contract."""
    columns.declare([c for chk in CHECKS for c in chk.columns()])


declare()

