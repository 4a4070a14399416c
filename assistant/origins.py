"""Web origins a widget may appear on: one rule for the admin, the model and each request.

An origin is what a browser sends in its ``Origin`` header: a scheme (http or https),
a host and a port, nothing else (``https://shop.example``, ``http://127.0.0.1:8099``).
Browsers send it normalised (lowercase host in ASCII, no default port, no trailing
slash), so the owner's list is kept in that form too and a plain comparison agrees.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_normalise(raw: str) -> str:
    """`raw` as a browser would send it in ``Origin``; ValidationError says what is wrong."""
    text = raw.strip()
    if "://" not in text:
        guess = _guess(text)
        hint = f": did you mean {guess}?" if guess else "."
        raise ValidationError(f"{text} needs a scheme{hint}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValidationError(f"{text}: only http:// and https:// pages can show the widget.")
    if " " in text or "\t" in text:
        raise ValidationError(f"{text} has a space in it.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number from 0 to 65535
        raise ValidationError(f"{text} has a port that is not a number from 1 to 65535.") from exc
    if not host:
        raise ValidationError(f"{text} needs a host, like https://www.example.com.")
    if "*" in host:
        raise ValidationError(f"{text}: wildcards are not supported; list each site.")
    bare = f"{scheme}://{parts.netloc.rpartition('@')[2]}"
    if parts.username is not None or parts.password is not None:
        raise ValidationError(f"{text} has a user name in it: did you mean {bare}?")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValidationError(
            f"{text} is a page, not a site: did you mean {bare}? "
            "The widget works on every page of the site."
        )
    if port == 0:
        raise ValidationError(f"{text} has a port that is not a number from 1 to 65535.")
    shown = _ascii_host(host, text)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        shown += f":{port}"
    return f"{scheme}://{shown}"


def origins_normalise(text: str) -> list[str]:
    """Every line of `text` normalised, duplicates and blank lines dropped; a
    ValidationError lists each bad line's problem."""
    origins: list[str] = []
    problems: list[ValidationError] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            origin = origin_normalise(line)
        except ValidationError as exc:
            problems.append(exc)
            continue
        if origin not in origins:
            origins.append(origin)
    if problems:
        raise ValidationError(problems)
    return origins


def origin_of_request(header: str | None) -> str | None:
    """A request's ``Origin`` header in the same form, or None when it is not an origin."""
    if not header or header == "null":
        return None
    try:
        return origin_normalise(header)
    except ValidationError:
        return None


def _ascii_host(host: str, text: str) -> str:
    """The host as browsers send it: IPv6 in brackets, names in lowercase ASCII (IDNA)."""
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]"
        return host
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValidationError(f"{text} does not have a valid host name.") from exc


def _guess(text: str) -> str:
    """What a line without a scheme probably meant: http for this machine, else https."""
    host = text.split("/", 1)[0].strip()
    if not host or " " in host:
        return ""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    local = name == "localhost" or name.startswith("127.") or name == "[::1]"
    return f"{'http' if local else 'https'}://{host}"
