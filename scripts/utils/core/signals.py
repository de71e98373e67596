"""Stopping on a signal, the same way in every script. Standard library only.

A stop signal raises Stopped where the program is, so that it unwinds like Ctrl-C does:
`finally` blocks remove temporaries and stop workers. Inside a deferred section (the
collector publishing a pair of files) the signal is only noted, and raised when the
section ends, so files are never left half-written. A second signal while the first is
being handled is ignored, so that the clean-up finishes. A signal that was ignored when
the program started (SIGINT for a background job of a non-interactive shell, SIGHUP
under nohup) stays ignored: whoever started it asked for that.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any


class Stopped(BaseException):
    """A stop signal arrived; args[0] is its number."""

    @property
    def signum(self) -> int:
        number: int = self.args[0]
        return number

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class StopSignals:
    """Stop signals raise Stopped (see the module docstring); install() to start, restore()
    puts the previous handlers back."""

    def __init__(self, signals: Sequence[signal.Signals] = (signal.SIGTERM,)) -> None:
        self.signals = tuple(signals)
        self.stopping = False
        self._deferring = False
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        for signum in self.signals:
            previous = signal.getsignal(signum)
            if previous is not signal.SIG_IGN:
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        return self

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self._pending = signum
        elif not self.stopping:
            self.stopping = True
            raise Stopped(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A section a signal does not interrupt: it is raised when the section ends (also
        when the section failed: stopping beats reporting a full disk)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            if self._pending is not None and not self.stopping:
                self.stopping = True
                raise Stopped(self._pending)
