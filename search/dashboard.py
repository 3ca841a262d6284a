"""optuna-dashboard on this project's study store.

    python -m search.dashboard [--storage URL] [--host 127.0.0.1] [--port 8080] [--artifacts DIR]

The storage URL is resolved as everywhere else (``--storage``, else ``$OPTUNA_STORAGE``, else
``sqlite:///studies.db``) and opened with the project's engine options; artifacts (plots, saved models)
come from the same folder the workers upload to. The server binds to loopback unless ``--host`` says
otherwise: optuna-dashboard has no authentication.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from search._cli import CliParser, port_number, run_main
from search.errors import InputError, StorageError
from storage import (
    DEFAULT_STORAGE_URL,
    STORAGE_ENV_VAR,
    artifact_store_for,
    create_storage,
    mask_url,
    resolve_storage_url,
    sqlite_path,
)

__all__ = ["build_parser", "main"]

PROG = "python -m search.dashboard"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog=PROG,
        description="Serve optuna-dashboard on the study store (storage URL and artifact folder as the "
        "workers use them).",
    )
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="study store URL: sqlite:///PATH.db, postgresql+psycopg://USER@HOST/DB, mysql+pymysql://..., "
        f"grpc://HOST:PORT (default: $OPTUNA_STORAGE, else {DEFAULT_STORAGE_URL})",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, loopback only; use 0.0.0.0 to expose the "
        "dashboard, which has no authentication, to the network)",
    )
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--artifacts",
        metavar="DIR",
        help="artifact folder (default: beside a SQLite file, e.g. studies_artifacts/ for studies.db; "
        "for a server database $SEARCH_ARTIFACTS_DIR, else ./artifacts)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    url = resolve_storage_url(args.storage)
    _require_existing_sqlite_file(url, source=_storage_source(args.storage))
    storage = create_storage(url, heartbeat_interval=None)  # the dashboard runs no trials
    artifact_store = artifact_store_for(url, args.artifacts)

    from optuna_dashboard import run_server  # heavy import, after the arguments are known to be good

    print(f"optuna-dashboard for {mask_url(url)}", flush=True)
    print(f"open {_browser_url(args.host, args.port)}", flush=True)
    if args.host not in _LOOPBACK:
        print(
            f"note: listening on {args.host}; anyone who can reach this port can read and edit studies",
            file=sys.stderr,
            flush=True,
        )
    try:
        run_server(storage, host=args.host, port=args.port, artifact_store=artifact_store)
    except OSError as exc:  # bind failures: port in use, address not local, unknown host name
        reason = exc.strerror or str(exc)
        message = f"cannot listen on {args.host}:{args.port}: {reason}"
        raise InputError(message, source="--host/--port") from exc
    return 0


def _storage_source(flag: str | None) -> str:
    if flag is not None:
        return "--storage"
    return f"${STORAGE_ENV_VAR}" if os.environ.get(STORAGE_ENV_VAR, "").strip() else "default storage"


def _require_existing_sqlite_file(url: str, *, source: str) -> None:
    """Refuse to create an empty SQLite store just to show it: that is almost always a wrong path."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StorageError(
            f"SQLite file '{path}' does not exist; run a study first or pass --storage URL", source=source
        )


def _browser_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/dashboard/"


if __name__ == "__main__":
    raise SystemExit(run_main(main))
