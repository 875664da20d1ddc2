"""Which voice URLs a worker may fetch, and exactly where it connects (SSRF defence).

The policy, applied to the request URL and again to every redirect hop:

- Only ``http`` and ``https``. ``file:``, ``ftp:``, ``data:``, ``gopher:`` and the rest are
  refused with ``voice_url_forbidden``, whatever else is allowed.
- URLs with userinfo (``http://user:pass@host/``) are refused, not stripped: a voice URL never
  needs credentials (signed URLs carry their token in the query) and ``@`` is the classic way
  to make one parser see a different host than another. Whitespace and control characters are
  refused for the same reason.
- The host is resolved once (``socket.getaddrinfo``, which also turns ``2130706433``,
  ``0x7f000001`` and ``127.1`` into ``127.0.0.1``) and refused if ANY address is loopback,
  private (RFC 1918, ``fc00::/7``), link-local, multicast, reserved, unspecified, shared
  (``100.64.0.0/10``) or otherwise not global. IPv4 addresses embedded in IPv6 (``::ffff:a.b.c.d``,
  6to4) are judged as the IPv4 address they carry.
- Cloud metadata endpoints (``169.254.169.254``, ``fd00:ec2::254``, ``metadata.google.internal``
  and friends) are refused even when private addresses are allowed.
- A host that does not resolve is ``voice_fetch_failed`` (there is nothing to connect to), not a
  policy refusal.
- The vetted addresses travel with the URL: the downloader dials exactly those (DNS pinning, so a
  second lookup cannot be rebound to an internal address) while sending the original ``Host``
  header and checking TLS (SNI and certificate) against the original host name.

``allow_private`` (``HONORA_ALLOW_PRIVATE_URLS=1``; localpod and tests) permits private and
loopback addresses but keeps every other rule. ``trusted_hosts`` names hosts whose addresses are
not checked at all (an internal object store, or a test host standing in for a public one);
a redirect away from a trusted host is checked like any other URL.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from honora_tts.protocol import ErrorCode, WorkerError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) -> addresses``; raises ``OSError`` when the name does not resolve.
Resolver = Callable[[str, int], Sequence[str]]

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
    "instance-data.ec2.internal",
})  # fmt: skip
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
    ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
})  # fmt: skip
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"

FIELD = "voice_url"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the order the system prefers them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def describe_url(url: str) -> str:
    """``host[:port]/path`` of a URL, for messages and logs: no scheme, userinfo, query or
    fragment (signed URLs keep their tokens in the query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return f"{host}{parts.path or '/'}"


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a worker must not connect to ``address``, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is not None:
            reason = address_problem(embedded, allow_private=allow_private)
            return f"{reason} (as {address})" if reason else None
        if address.sixtofour is not None:
            reason = address_problem(address.sixtofour, allow_private=allow_private)
            if reason:
                return f"{reason} (inside 6to4 address {address})"
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    if address in METADATA_ADDRESSES:
        return f"cloud metadata address {address}"
    if allow_private:
        return None
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "unspecified address"),
        (address.is_loopback, "loopback address"),
        (address.is_link_local, "link-local address"),
        (address.is_multicast, "multicast address"),
        (address in _SHARED_ADDRESS_SPACE, "shared (CGNAT) address"),
        (address.is_reserved, "reserved address"),
        (address.is_private, "private address"),
        (not address.is_global, "non-public address"),
    )
    for failed, reason in checks:
        if failed:
            return f"{reason} {address}"
    return None


@dataclass(frozen=True)
class VettedUrl:
    """A URL that passed the policy, with the addresses to dial (in order of preference)."""

    url: str
    scheme: str
    host: str  # lower-case ASCII (IDNA), IPv6 without brackets
    port: int
    target: str  # path and query, percent-encoded, as sent on the request line
    addresses: tuple[str, ...]
    explicit_port: bool = field(default=False, compare=False)

    @property
    def display(self) -> str:
        """``host/path`` for messages: never the query."""
        return describe_url(self.url)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host


@dataclass(frozen=True)
class UrlPolicy:
    """The SSRF policy for voice URLs (see the module docstring)."""

    allow_private: bool = False
    trusted_hosts: frozenset[str] = frozenset()
    resolver: Resolver = system_resolver

    @classmethod
    def create(
        cls,
        *,
        allow_private: bool = False,
        trusted_hosts: Collection[str] = (),
        resolver: Resolver | None = None,
    ) -> UrlPolicy:
        hosts = frozenset(h.strip().lower().rstrip(".") for h in trusted_hosts if h.strip())
        return cls(allow_private, hosts, resolver or system_resolver)

    def vet(self, url: str) -> VettedUrl:
        """Check ``url`` and resolve its host; raise :class:`WorkerError` when refused.

        ``voice_url_forbidden`` for policy refusals, ``voice_fetch_failed`` when the host does
        not resolve.
        """
        scheme, host, port, explicit_port, target = parse_voice_url(url)
        if host in METADATA_HOSTS:
            raise _forbidden(f"{describe_url(url)}: {host} is a cloud metadata endpoint")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses: Sequence[str] = [str(literal)]
        else:
            try:
                addresses = self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise WorkerError(
                    ErrorCode.VOICE_FETCH_FAILED,
                    f"cannot resolve host {host!r} of voice URL {describe_url(url)}: {exc}",
                    field=FIELD,
                ) from None
            if not addresses:
                raise WorkerError(
                    ErrorCode.VOICE_FETCH_FAILED,
                    f"host {host!r} of voice URL {describe_url(url)} has no addresses",
                    field=FIELD,
                )
        if host not in self.trusted_hosts:
            for address in addresses:
                reason = address_problem(
                    ipaddress.ip_address(address), allow_private=self.allow_private
                )
                if reason:
                    via = "" if literal is not None else f" ({host} resolves to it)"
                    raise _forbidden(
                        f"{describe_url(url)}: refusing to connect to {reason}{via}; "
                        "voice URLs must point to public hosts"
                    )
        return VettedUrl(url, scheme, host, port, target, tuple(addresses), explicit_port)


def parse_voice_url(url: str) -> tuple[str, str, int, bool, str]:
    """``(scheme, host, port, explicit_port, target)`` of an acceptable http(s) URL.

    Raises ``voice_url_forbidden`` for anything else; no network access.
    """
    if not isinstance(url, str) or not url:
        raise _forbidden("voice_url is empty")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _forbidden("voice_url contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _forbidden(f"voice_url is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise _forbidden(f"voice_url scheme {shown} is not allowed; use http or https")
    if "@" in parts.netloc:
        raise _forbidden(
            f"{describe_url(url)}: credentials in voice URLs (user:password@host) are refused"
        )
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise _forbidden("voice_url has no host")
    try:
        ipaddress.ip_address(raw_host)
        host = raw_host.lower()
    except ValueError:
        try:
            host = raw_host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise _forbidden(f"voice_url host {raw_host!r} is not a valid host name") from None
    try:
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        target = f"{path}?{quote(parts.query, safe=_QUERY_SAFE)}" if parts.query else path
    except UnicodeError:  # lone surrogates cannot be percent-encoded
        raise _forbidden("voice_url holds invalid Unicode") from None
    return scheme, host, port or DEFAULT_PORTS[scheme], port is not None, target


def _forbidden(message: str) -> WorkerError:
    return WorkerError(ErrorCode.VOICE_URL_FORBIDDEN, message, field=FIELD)
