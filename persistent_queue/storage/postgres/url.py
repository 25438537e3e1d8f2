"""PostgreSQL database URLs: recognising them and showing them without their password.

Kept free of any driver import so that :mod:`persistent_queue.queue` can tell a URL from a
file path without loading psycopg.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

SCHEMES = ("postgresql", "postgres")

_PASSWORD_IN_NETLOC = re.compile(r"^(?P<user>[^:@/]*):(?P<password>[^@/]*)@")
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.IGNORECASE)


def is_postgres_url(text: str) -> bool:
    """Whether ``text`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages, logs and reprs)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest = _PASSWORD_IN_NETLOC.sub(lambda m: f"{m['user']}:***@", rest, count=1)
    rest = _PASSWORD_PARAM.sub(lambda m: f"{m['key']}***", rest)
    return f"{scheme}{sep}{rest}"


def without_password(url: str) -> str:
    """The URL with its password left out (from the user part and any ``password=``
    parameter), for a client given the password another way (``PGPASSWORD``)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{host}"
    query = "&".join(p for p in parts.query.split("&")
                     if p and not p.lower().startswith("password="))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(url: str) -> str | None:
    """The password written in the URL, if any (to scrub it from driver messages)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    match = re.search(r"[?&]password=([^&#]*)", url, re.IGNORECASE)
    return password or (match.group(1) if match else None)


def scrub(message: str, url: str) -> str:
    """``message`` with the URL's password (and the URL itself) masked."""
    password = password_of(url)
    message = message.replace(url, mask_url(url))
    if password:
        for secret in {password, unquote(password)}:
            # Whole words only: a short password must not garble the words around it.
            pattern = rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"
            message = re.sub(pattern, "***", message)
    return message
