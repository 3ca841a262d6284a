"""Helpers shared by the command-line entry points."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from search.errors import InputError

__all__ = ["run_main", "CliParser", "HelpFormatter", "parse_key_values", "int_in", "port_number",
           "check_listen_address", "LOOPBACK_HOSTS"]

#: Hosts that only this machine can reach; a server on any other address is open to the network.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; an :class:`InputError` becomes one line on stderr and exit status 2.

    Native-library logging is quieted first, for this process and every process it starts, so that a
    refusal is the one line the user reads (see :func:`search.runtime.quiet_native_logging`).
    """
    from search.runtime import quiet_native_logging

    quiet_native_logging()
    try:
        code = main(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


class CliParser(argparse.ArgumentParser):
    """argparse whose usage errors become the project's one-line ``error: ...`` (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        raise InputError(f"{message} (see --help)", source=self.prog)


def int_in(low: int, high: int | None, expected: str) -> Callable[[str], int]:
    """argparse ``type=`` for an integer in [low, high] (``high`` None: no upper bound); ``expected`` says
    what it is in the error (e.g. "a port number 1-65535")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


#: argparse ``type=`` for a TCP port.
port_number = int_in(1, 65535, "a port number 1-65535")


def check_listen_address(host: str, port: int, source: str = "--host/--port") -> None:
    """Refuse an address a server cannot listen on (port in use, address not local, unknown host) with one
    line, by binding to it once before the server starts and prints where it listens."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot listen on {host}:{port}: {reason}; expected a local address such as 127.0.0.1",
                         source=source) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        try:
            sock.bind(address)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise InputError(f"cannot listen on {host}:{port}: {reason}; expected a free port on a local address",
                             source=source) from None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default unless its help already says it, or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def parse_key_values(
    items: Sequence[str], flag: str, value: Callable[[str, str], Any] | None = None
) -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` flags -> dict, a later key replacing an earlier one.

    ``value(key, text)`` turns each value's text into the value, and may refuse it with its own error;
    without it a value is JSON where it parses (numbers, booleans, lists), else the text itself.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"got {item!r}; expected KEY=VALUE", source=flag)
        out[key] = value(key, raw) if value is not None else _json_or_text(raw)
    return out


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
