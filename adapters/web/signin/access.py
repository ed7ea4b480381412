"""Whether the playground is open to anyone, decided once at start-up.

An operator decides with DOCRAG_PLAYGROUND_PUBLIC (true/false). Unset, the playground is public
only when nobody but this machine can reach it and nobody was meant to sign in: every listening
address is loopback, no reverse proxy is declared in front (DOCRAG_TRUSTED_PROXIES: a proxy on the
same machine makes loopback reachable from anywhere) and no sign-in provider is configured. That
keeps `make run` on a fresh machine one command away from a working page, and turns the page
private as soon as the process listens on a network (`PORT` set, `--host 0.0.0.0`) or sits behind
a proxy. An unknown listening address (an app served by something other than `docrag serve` or
bots/gunicorn_conf.py) counts as not loopback: closed.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Sequence

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class PlaygroundAccess:
    public: bool
    reason: str  # for the start-up log line and the serve warning
    loopback: bool  # every listening address is loopback (cookies may then go without Secure)


def is_loopback(address: str) -> bool:
    """``127.0.0.1:8000``, ``[::1]:8000``, ``localhost:8000`` -> True; ``0.0.0.0:8000``, ``unix:/run/x`` -> False."""
    if address.startswith("unix:") or not address:
        return False
    host = address
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_addresses(setting: str | None) -> tuple[str, ...]:
    return tuple(a.strip() for a in (setting or "").split(",") if a.strip())


def decide_playground_access(
    public_setting: bool | None, *, listen: Sequence[str], providers: Sequence[str], trusted_proxies: int
) -> PlaygroundAccess:
    loopback = bool(listen) and all(is_loopback(a) for a in listen)
    if public_setting is not None:
        return PlaygroundAccess(public_setting, "DOCRAG_PLAYGROUND_PUBLIC=" + str(public_setting).lower(), loopback)
    if not loopback:
        where = ",".join(listen) or "an unknown address"
        return PlaygroundAccess(False, f"listening on {where}, beyond loopback", loopback)
    if trusted_proxies:
        return PlaygroundAccess(False, "behind a reverse proxy (DOCRAG_TRUSTED_PROXIES)", loopback)
    if providers:
        return PlaygroundAccess(False, "sign-in configured (" + ",".join(providers) + ")", loopback)
    return PlaygroundAccess(True, "loopback only and no sign-in configured", loopback)
