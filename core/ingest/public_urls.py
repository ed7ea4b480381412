"""Which URLs DocRag fetches on behalf of an API key holder: public addresses only.

Without this, anyone allowed to add documents could make the server fetch intranet pages or a
cloud provider's metadata endpoint and read them back as answers. The check resolves the host
and refuses it when any address is loopback, private, link-local or reserved. It runs on every
request (see ``url_guard`` in :mod:`core.ingest.sources`), so a public page that redirects
inward, or a sitemap listing an internal page, is refused too. A DNS answer that changes between
this check and the connection is not covered; deployments that need that guarantee put an
egress proxy in front.
"""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from core.errors import DocumentError


def check_public_url(url: str) -> None:
    """Raise DocumentError unless every address ``url``'s host resolves to is public."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError:
        raise DocumentError(f"invalid port in {url}") from None
    except (OSError, UnicodeError) as exc:
        raise DocumentError(f"cannot resolve {host}: {exc}") from None
    for *_, sockaddr in infos:
        if not ipaddress.ip_address(sockaddr[0].split("%", 1)[0]).is_global:
            raise DocumentError(f"{host} is a private or local address; DocRag only fetches public URLs")
