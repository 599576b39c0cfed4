"""The packs' own ``[[rules.tests]]`` lines are ours: none is copied from the corpus
(fail2ban's test logs are GPL-2.0, loghub's are real machines' logs), and every
address in them is one nobody owns (loopback, private, link-local, documentation).

Each line keeps its program's exact format and the quirk its test is about; only
the variable parts (time, host, pid, user, ids, addresses) are made up.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator

import pytest

from tests.helpers import CORPUS, shipped_rule_tables

#: the ranges a shipped test line may name: nobody's machine on the Internet
ALLOWED = [ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "::1/128",                                   # loopback
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",  # private
    "169.254.0.0/16", "fe80::/10",                              # link-local
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32",  # documentation
)]
#: a dotted quad anywhere, also inside a host name ("192.0.2.7.dsl.example.net")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
#: hex digits, dots and at least two colons: an IPv6 address, perhaps with ":port"
_IPV6 = re.compile(r"(?<![\w.])[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*")


def pack_test_lines() -> Iterator[tuple[str, str]]:
    """(rule id, line) for every ``[[rules.tests]]`` line of every shipped pack."""
    for rule in shipped_rule_tables():
        for case in rule.get("tests", []):
            yield rule["id"], case["line"]


def addresses(line: str) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every IPv4 and IPv6 address written in ``line`` (an IPv4-mapped one as IPv4)."""
    for match in _IPV4.finditer(line):
        octets = [int(part) for part in match.groups()]  # int(): "198.051.100.6" too
        if all(o <= 255 for o in octets):
            yield ipaddress.IPv4Address(".".join(map(str, octets)))
    for match in _IPV6.finditer(line):
        text = match.group().rstrip(":.")
        # "2001:db8::4a2:51208" (haproxy's address:port), "::ffff:192.0.2.5:21"
        for candidate in (text, text.rpartition(":")[0]):
            try:
                address = ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            yield address.ipv4_mapped or address
            break


def allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, private, link-local, documentation; or 0.0.0.0, a listening address."""
    return address.is_unspecified or any(address in net for net in ALLOWED
                                         if net.version == address.version)


def test_the_address_finder_finds_them() -> None:
    """The finder sees the forms the packs' lines write addresses in."""
    found = [str(a) for a in addresses(
        "from 1.2.3.4 port 1 x=[::ffff:5.6.7.8] 9.8.7.6.dsl.example.net [IPv6:2001:DB8::1] "
        "2606:2800:220:1:248:1893:25c8:1946 2001:db8::4a2:51208 192.030.0.6 at 22:45:11.608 "
        "phpMyAdmin-2.8.2 s0-s0:c0.c1023 36:48:xx:xx")]
    assert found == ["1.2.3.4", "5.6.7.8", "9.8.7.6", "192.30.0.6", "5.6.7.8", "2001:db8::1",
                     "2606:2800:220:1:248:1893:25c8:1946", "2001:db8::4a2"]
    assert not allowed(ipaddress.ip_address("1.2.3.4"))
    assert allowed(ipaddress.ip_address("203.0.113.9"))
    assert allowed(ipaddress.ip_address("2001:db8::1"))


def test_test_lines_name_nobodys_address() -> None:
    """Every address in a shipped test line is loopback, private, link-local or for
    documentation (RFC 5737, RFC 3849): no real host's, no real person's."""
    public = [f"{rule_id}: {address} in {line!r}" for rule_id, line in pack_test_lines()
              for address in addresses(line) if not allowed(address)]
    assert public == []


@pytest.mark.corpus
def test_no_test_line_is_copied_from_the_corpus() -> None:
    """No shipped ``[[rules.tests]]`` line appears as a whole line in any corpus file:
    the packs ship under MIT, fail2ban's logs are GPL-2.0 (the corpus stays outside
    the package; the recall tests read it at test time)."""
    corpus: set[str] = set()
    for root, _dirs, files in os.walk(CORPUS):
        for name in files:
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                corpus.update(line.rstrip("\r\n") for line in f)
    copied = [f"{rule_id}: {line!r}" for rule_id, line in pack_test_lines() if line in corpus]
    assert copied == []
