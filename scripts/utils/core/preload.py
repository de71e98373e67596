"""Modules imported in a background thread while this process mostly waits on others.

The process analysis reads a first run's days in forked workers, and its own process then
mostly waits for their answers: importing matplotlib there (the plots' libraries take about
0.4 s to import) costs no wall time, where importing it once the reading is done would add it
to the run. Never before a fork: a fork copies only the calling thread, and an import lock
the thread held would stay held in the child. So the thread is started after the forks of
the reading, and joined before any later one (the plot worker's).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence


class Preload:
    """Import `names`, in order, in a thread of their own once started; join() waits for it.
    A module that fails to import is left alone: importing it again where it is needed
    fails there, with its own error."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the imports (once; later calls do nothing)."""
        if self._thread is None and self.names:
            self._thread = threading.Thread(target=self._run, name="preload", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        for name in self.names:
            try:
                importlib.import_module(name)
            except Exception:  # not hidden: the import is made again where it is needed
                return

    def join(self) -> None:
        """Wait until the imports are done (at once if never started)."""
        if self._thread is not None:
            self._thread.join()
