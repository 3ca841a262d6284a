"""optuna-dashboard on this project's study store.

    python -m search.dashboard [--storage URL] [--host 127.0.0.1] [--port 8080] [--artifacts DIR]

The storage URL is resolved as everywhere else (``--storage``, else ``$OPTUNA_STORAGE``, else
``sqlite:///studies.db``) and opened with the project's engine options; artifacts (plots, saved models)
come from the same folder the workers upload to. The server binds to loopback unless ``--host`` says
otherwise: optuna-dashboard has no authentication.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from search._cli import LOOPBACK_HOSTS, CliParser, check_listen_address, port_number, run_main
from search.errors import InputError
from storage import (
    DEFAULT_STORAGE_URL,
    artifact_store_for,
    mask_url,
    open_existing_storage,
    require_existing_store,
    resolve_storage_url,
    storage_source,
)

__all__ = ["build_parser", "main"]

PROG = "python -m search.dashboard"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


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
    source = storage_source(args.storage)
    # The dashboard shows a store; it never creates one (a wrong path would leave an empty database).
    require_existing_store(url, source=source)
    # Bound once here, so that a port in use or an address that is not local is one line, not a line
    # saying where the server listens and then the server's failure.
    check_listen_address(args.host, args.port)
    storage = open_existing_storage(url, source=source)  # the dashboard runs no trials: no heartbeats
    artifact_store = artifact_store_for(url, args.artifacts)

    from optuna_dashboard import run_server  # heavy import, after the arguments are known to be good

    print(f"optuna-dashboard for {mask_url(url)}", flush=True)
    print(f"open {_browser_url(args.host, args.port)}", flush=True)
    if args.host not in LOOPBACK_HOSTS:
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


def _browser_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/dashboard/"


if __name__ == "__main__":
    raise SystemExit(run_main(main))
