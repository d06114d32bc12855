"""The fault suite's figures, printed as a table at the end of the pytest run.

Tests in ``test_outages.py`` (and the file backend's killed writers) add one
row per backend and fault with :func:`record`; the table is what a reader
compares with the pass criteria documented on each backend's page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figures:
    backend: str
    fault: str
    #: Requests sent while the fault lasted, and after it.
    cases: int = 0
    #: Requests that ended in a 500 under ``on_backend_error = "degrade"``.
    errors_500: int = 0
    #: Errors of any type other than the contract's typed ones.
    untyped: int = 0
    #: Set-Cookie headers sent by requests that failed or degraded.
    cookies: int = 0
    orphans: int = 0
    #: Slowest failing request, against its limit, in seconds.
    worst: float = 0.0
    limit: float = 0.0
    #: First requests after recovery that failed.
    recovery_failures: int = 0
    #: Open file descriptors after recovery, less those at the start.
    fd_delta: int = 0
    notes: list[str] = field(default_factory=list)

    def failed_in(self, seconds: float) -> None:
        self.worst = max(self.worst, seconds)


_rows: list[Figures] = []


def record(figures: Figures) -> Figures:
    """Add ``figures`` to the table; the test fills it in as it goes."""
    _rows.append(figures)
    return figures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _rows:
        return
    header = (
        "backend",
        "fault",
        "cases",
        "500s",
        "untyped",
        "cookies",
        "orphans",
        "worst ms",
        "limit ms",
        "recovery fails",
        "fds +/-",
    )
    lines = [header]
    for row in _rows:
        lines.append(
            (
                row.backend,
                row.fault,
                str(row.cases),
                str(row.errors_500),
                str(row.untyped),
                str(row.cookies),
                str(row.orphans),
                f"{row.worst * 1000:.0f}",
                f"{row.limit * 1000:.0f}",
                str(row.recovery_failures),
                f"{row.fd_delta:+d}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    terminalreporter.section("fault figures")
    for line in lines:
        terminalreporter.write_line(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
        )
    for row in _rows:
        for note in row.notes:
            terminalreporter.write_line(f"{row.backend}, {row.fault}: {note}")
