"""Which addresses qa may fetch from: public ones, and those QA_FETCH_ALLOW lists; the check needs no connection."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from socket import getaddrinfo  # a module attribute, so tests can keep every lookup on this machine

from qa.errors import FetchFailed, FetchRefused, InvalidURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Special-purpose ranges named in refusals; `is_global` below catches every other non-public range as well.
_NAMED: list[tuple[str, str]] = [
    ("0.0.0.0/8", "a 'this network' address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("2001:db8::/32", "a documentation address"),
    ("2001::/32", "a Teredo tunnel address"),
]
_RANGES = [(ipaddress.ip_network(cidr), what) for cidr, what in _NAMED]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_networks(entries: Sequence[str]) -> list[Network]:
    """QA_FETCH_ALLOW's entries as networks (a bare address is a network of one)."""
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped (::ffff:a.b.c.d), 6to4 (2002::/16) or NAT64."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, allow: Sequence[Network] = ()) -> str | None:
    """Why qa must not connect to this address (None: it may), unless an allowed network holds it."""
    inner = embedded_ipv4(address)
    if any(address in network or (inner is not None and inner in network) for network in allow):
        return None
    if inner is not None:
        reason = refusal(inner)
        return f"{reason} (inside {address})" if reason else None
    for network, what in _RANGES:
        if address.version == network.version and address in network:
            return what
    checks = [
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "a site-local address"),
        (not address.is_global, "not a public address"),
    ]
    return next((what for hit, what in checks if hit), None)


def resolve(host: str, port: int, allow: Sequence[Network] = ()) -> list[IPAddress]:
    """Every address `host` resolves to, each checked; FetchRefused when any one is refused.

    All of them are checked, not just the first: a name that resolves to a public and a private address could
    otherwise lead a retry or a later connection inside.
    """
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise InvalidURL(f"the host {host!r} does not exist") from e
        raise FetchFailed(f"cannot look up the host {host!r}: {e.strerror or e}") from e
    except UnicodeError as e:
        raise InvalidURL(f"the host {host!r} is not a valid name") from e
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])  # drop an IPv6 zone ("fe80::1%eth0")
        if address not in addresses:
            addresses.append(address)
    for address in addresses:
        if reason := refusal(address, allow):
            where = host if host == str(address) else f"{host} ({address})"
            raise FetchRefused(
                f"{where} is {reason}; qa fetches only from public addresses unless QA_FETCH_ALLOW lists it"
            )
    if not addresses:
        raise InvalidURL(f"the host {host!r} has no address")
    return addresses
