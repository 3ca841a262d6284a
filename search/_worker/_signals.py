"""Ctrl-C and SIGTERM in a worker process: a stop request that the optimisation loop reads."""
from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["StopRequest", "REINTERRUPT_SECONDS", "interrupts_held"]

REINTERRUPT_SECONDS = 5.0  # still running this long after SIGINT/SIGTERM: interrupt again

# Signal handlers run in the main thread, between its bytecodes: plain module state is enough.
_held = 0
_deferred = False


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """A stop request that arrives inside the block takes effect (KeyboardInterrupt) when it ends.

    For recording why a trial stopped: the watchdog's next interrupt would otherwise cut that write
    off on a slow store, and the trial would end failed with no reason."""
    global _held, _deferred
    _held += 1
    try:
        yield
    finally:
        _held -= 1
    if _held == 0 and _deferred:
        _deferred = False
        raise KeyboardInterrupt


class StopRequest:
    """Whether this process was asked to stop, and the signal handlers that ask it.

    SIGINT/SIGTERM raise KeyboardInterrupt in the main thread (Optuna fails the running trial with it)
    and remember the request, so the loop stops instead of starting another trial. A KeyboardInterrupt
    raised while Python runs a ``__del__`` or weakref callback is printed and swallowed ("Exception
    ignored in ..."), and the trial would go on: so a watchdog interrupts again every few seconds until
    the process has ended, and such a swallowed interrupt is not printed (its traceback, often deep in
    TensorFlow, would read as a crash where the user asked to stop); other unraisable errors are printed
    as before.
    """

    def __init__(self, reinterrupt_seconds: float = REINTERRUPT_SECONDS) -> None:
        self._requested = threading.Event()
        self._reinterrupt_seconds = reinterrupt_seconds

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def install(self) -> StopRequest:
        """Make Ctrl-C and SIGTERM (``docker stop``, the launcher) stop this process; returns itself."""
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._interrupt)
        previous = sys.unraisablehook

        def unraisable(info: Any) -> None:
            if not issubclass(info.exc_type, KeyboardInterrupt):
                previous(info)

        sys.unraisablehook = unraisable
        return self

    def _interrupt(self, signum: int, frame: Any) -> None:
        global _deferred
        if not self._requested.is_set():
            self._requested.set()
            threading.Thread(target=self._reinterrupt, name="stop-watchdog", daemon=True).start()
        if _held:
            _deferred = True
            return
        raise KeyboardInterrupt

    def _reinterrupt(self) -> None:
        while True:
            time.sleep(self._reinterrupt_seconds)
            _thread.interrupt_main(signal.SIGINT)
