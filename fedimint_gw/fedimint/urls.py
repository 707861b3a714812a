"""Guardian URLs as Fedimint's `SafeUrl` writes them.

Fedimint parses URLs with the `url` crate (WHATWG rules) and encodes `url.to_string()`, so
what is hashed into a federation id is the normalized form. This module applies the part of
that normalization guardian URLs need: lower-case scheme and host, the default port dropped,
an empty path written as "/". It does not reimplement the rest of WHATWG parsing
(percent-encoding, IDNA, dot segments, numeric IPv4 forms); URLs needing those are passed
through unchanged, which is only right if they are already normalized.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from fedimint_gw.fedimint.errors import DecodeError

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
MAX_URL_LEN = 2048


def normalize_url(raw: str) -> str:
    """The URL as `SafeUrl` would print it; DecodeError if it is not an absolute URL."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL_LEN:
        raise DecodeError(f"not a usable URL: {raw!r}")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in raw):
        raise DecodeError(f"URL contains spaces or control characters: {raw!r}")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise DecodeError(f"not a valid URL: {raw!r}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise DecodeError(f"URL has no scheme: {raw!r}")
    if scheme not in _DEFAULT_PORTS:
        return raw
    host = parts.hostname
    if not host:
        raise DecodeError(f"URL has no host: {raw!r}")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))
