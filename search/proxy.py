"""Optuna's gRPC storage proxy in front of the study database: ``python -m search.proxy``.

    python -m search.proxy --storage postgresql+psycopg://user:pw@db/optuna --host 0.0.0.0 --port 13000

Workers then use ``--storage grpc://HOST:13000``. However many workers connect, the database sees only
the proxy's connections (at most ``--threads``): the way past one database's connection limit.

Optuna's heartbeats do not pass through the proxy, so trials run through it have none: a trial whose
worker dies is failed and re-queued by that worker's launcher (it sees the worker exit), or by the next
worker started on the same machine; one whose whole machine is lost stays RUNNING (see README).
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from search._cli import LOOPBACK_HOSTS, CliParser, check_listen_address, port_number, run_main
from search.errors import StorageError

__all__ = ["main", "build_parser", "DEFAULT_PORT", "DEFAULT_THREADS"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 13000
DEFAULT_THREADS = 16  # concurrent requests served = database connections held (at most)


def build_parser() -> CliParser:
    parser = CliParser(prog="python -m search.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", metavar="URL", default=None,
                        help="the study database: postgresql+psycopg://USER:PASSWORD@HOST/DB (or sqlite:///PATH.db, "
                             "mysql+pymysql://...); default: $OPTUNA_STORAGE, else sqlite:///studies.db")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 in a container). The proxy has "
                             "no authentication: expose it only to the workers' network")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"requests served at once, and database connections held at most "
                             f"(default {DEFAULT_THREADS})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import optuna
    from optuna.exceptions import ExperimentalWarning

    from storage import mask_url, open_existing_storage, require_existing_store, resolve_storage_url, storage_source

    if args.threads < 1:
        raise StorageError(f"got {args.threads}; expected at least 1", source="--threads")
    url = resolve_storage_url(args.storage)
    if url.startswith("grpc://"):
        raise StorageError(f"got {url}; expected the database behind the proxy, not another proxy",
                           source="--storage")
    source = storage_source(args.storage)
    require_existing_store(url, source=source)  # the proxy serves a store; it never creates one
    # grpc would share a port in use (SO_REUSEPORT) or fail obscurely: bound once first, before anything opens
    check_listen_address(args.host, args.port)
    # No heartbeats here: clients of the proxy cannot send them (see the module docstring).
    database = open_existing_storage(url, source=source, pool_size=args.threads, max_overflow=0)
    storage = optuna.storages.get_storage(database)  # Optuna's in-process cache, as its documentation advises
    if args.host not in LOOPBACK_HOSTS:
        print(f"note: listening on {args.host}; the proxy has no authentication: anyone who can reach this port "
              "can read, change and delete every study of the store", file=sys.stderr, flush=True)
    print(f"gRPC storage proxy for {mask_url(url)} on {args.host}:{args.port} ({args.threads} threads); "
          f"workers: --storage grpc://{'HOST' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}",
          flush=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        try:
            optuna.storages.run_grpc_proxy_server(storage, host=args.host, port=args.port,
                                                  thread_pool=ThreadPoolExecutor(max_workers=args.threads))
        except RuntimeError as exc:  # grpc cannot bind (e.g. the address is not local)
            raise StorageError(f"cannot listen on {args.host}:{args.port}: {exc}", source="--host/--port") from exc
        except KeyboardInterrupt:
            print("proxy stopped", flush=True)
            return 0
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # docker stop: a clean exit
    raise SystemExit(run_main(main))
