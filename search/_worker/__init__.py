"""The parts of a worker process; :mod:`search.worker` is its command line and public face.

* :mod:`._signals` -- Ctrl-C and SIGTERM as a stop request, handed to the loop.
* :mod:`._storage` -- the worker's storage: opened with retry, and which errors are the store's.
* :mod:`._loop` -- the optimisation loop: when to stop, recovery from storage errors, trials of dead
  workers failed and re-queued. The in-process keras-tuner runner runs the same loop.
* :mod:`._setup` -- who a worker is (its command line) and what it opens (one :class:`WorkerSetup`).
* :mod:`._replay` -- one stored trial trained again and compared.

Nothing here imports keras at import time: the launcher imports :mod:`search.worker` to spawn workers.
"""
