"""The matcher: the prefiltered chunk path finds exactly what the naive loop finds."""

from __future__ import annotations

import logging
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

import logwatch.matching.matcher as matcher_module
from logwatch.commands.replay import read_chunks
from logwatch.config import Config, load_config
from logwatch.matching import engine
from logwatch.matching.context import plain
from logwatch.matching.literals import COMPILED
from logwatch.matching.matcher import NO_LITERAL_NOTE, TIMEOUTS_PER_CHUNK, Matcher, _decode
from logwatch.rules import Rule, compile_pattern
from tests.helpers import CORPUS, REPO, shipped_rule_tables
from tests.reference import Hit, naive

sys.path.insert(0, str(REPO / "bench"))
from generate import generate

SCANNERS = ["python", *COMPILED]


def example_config(tmp: Path, extra: str = "") -> Config:
    """The packs' rules plus the bench's extra rules, in a config of their own."""
    tables = shipped_rule_tables()
    bench = REPO / "bench" / "extra_rules.toml"
    tables += tomllib.loads(bench.read_text(encoding="utf-8")).get("rules", [])
    for table in tables:
        for key in ("source", "to", "tests", "enabled"):
            table.pop(key, None)
    doc = {"logwatch": {"state_dir": str(tmp / "state")}, "rules": tables}
    path = tmp / "rules.toml"
    path.write_text(tomli_w.dumps(doc) + extra, encoding="utf-8")
    return load_config(path)


def fast(matcher: Matcher, data: bytes, chunk: int = 1 << 16) -> list[Hit]:
    """The chunk path, in chunks as replay reads them."""
    import io

    out: list[Hit] = []
    offset = 0
    for piece in read_chunks(io.BytesIO(data), chunk):
        out += [(offset + m.start, m.rule.id, m.kind, m.fields) for m in matcher.scan(piece)]
        offset += len(piece)
    return out


def counted(matcher: Matcher, data: bytes, chunk: int = 1 << 16) -> tuple[list[Hit], Counter[str]]:
    """The counting path (``logwatch test``): Matcher.find's matches and counts, per chunk."""
    import io

    out: list[Hit] = []
    counts: Counter[str] = Counter()
    offset = 0
    for piece in read_chunks(io.BytesIO(data), chunk):
        found = matcher.find(piece)
        counts += found.counts()
        out += [(offset + m.start, m.rule.id, m.kind, m.fields) for m in found]
        offset += len(piece)
    return out, counts


def rule(pattern: str, rid: str = "r", **kw: object) -> Rule:
    from logwatch.template import parse_template

    return Rule(id=rid, pattern=compile_pattern(pattern), severity="warning",
                title=parse_template("t"), message=parse_template("m"), to=(), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return example_config(tmp_path_factory.mktemp("cfg"))


def corpus_files() -> list[Path]:
    """Every log of the corpus; without it, one stand-in that the ``corpus`` mark skips."""
    found = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".csv", ".md"))
    return found or [CORPUS]


# -- identical to the naive loop ---------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("scanner", SCANNERS)
@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_identical_to_naive(config: Config, path: Path, scanner: str) -> None:
    """Every real log in the shared corpus: same hits, fields, kinds and order, both ways
    (the daemon's, and the counting one that trusts the exact line filter)."""
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    expected = naive(config.rules, config.settings.ignore, data)
    assert fast(Matcher(config.rules, scanner=scanner), data) == expected
    hits, counts = counted(Matcher(config.rules, scanner=scanner), data)
    assert hits == expected
    assert counts == Counter(rule_id for _, rule_id, kind, _ in expected if kind != "context")


@pytest.mark.parametrize("scanner", SCANNERS)
def test_generated_sample_identical_to_naive(config: Config, tmp_path: Path, scanner: str) -> None:
    """The benchmark's synthetic mix, read in small chunks (so calibration happens mid-way)."""
    data = generate(tmp_path / "sample.log", 6000, seed=3).read_bytes()
    expected = naive(config.rules, config.settings.ignore, data)
    assert len(expected) > 100
    assert fast(Matcher(config.rules, scanner=scanner), data, chunk=50_000) == expected
    hits, counts = counted(Matcher(config.rules, scanner=scanner), data, chunk=50_000)
    assert hits == expected
    assert counts == Counter(rule_id for _, rule_id, kind, _ in expected if kind != "context")


@pytest.mark.parametrize("scanner", SCANNERS)
def test_daemon_sized_reads_identical_to_naive(config: Config, tmp_path: Path,
                                               scanner: str) -> None:
    """Reads of a few dozen lines, as the daemon's at 1,000 lines/s: few probes have lines in
    each, and only the lines that hold a hit are decoded."""
    data = generate(tmp_path / "sample.log", 3000, seed=5).read_bytes()
    data += "caf\u00e9 sshd[1]: Invalid user \u00e9t\u00e9 from 10.0.0.1 port 2\n".encode()
    data += b"\xff\xfe sshd[2]: Invalid user x\xc3 from 10.0.0.2 port 3\n" + data[:3000]
    expected = naive(config.rules, config.settings.ignore, data)
    assert len(expected) > 50
    assert fast(Matcher(config.rules, scanner=scanner), data, chunk=4000) == expected


@pytest.mark.parametrize("scanner", SCANNERS)
def test_the_daemons_hits_are_the_plain_hits(config: Config, tmp_path: Path,
                                             scanner: str) -> None:
    """``Found.hits`` (the daemon's list) is every match but the ``context`` lines, in order,
    with its fields in their order: the naive loop's hits; and a second pass over the same
    matches (after hits() let their regex matches go) finds them again."""
    data = generate(tmp_path / "sample.log", 2000, seed=7).read_bytes()
    matcher = Matcher(config.rules, scanner=scanner)
    found = matcher.find(data, groups=True)
    got = [(start, rule, kind, list(f.items())) for start, _, rule, kind, f in found.hits()]
    assert got == [(start, rule, kind, list(fields.items()))
                   for start, rule, kind, fields in naive(config.rules, config.settings.ignore,
                                                          data) if kind != "context"]
    again = [(m.start, m.rule.id, m.kind, list(f.items())) for m, f in plain(found)]
    assert again == got
    assert [(start, rule, kind, list(f.items()))
            for start, _, rule, kind, f in matcher.find(data, groups=True).hits()] == got
    twice = matcher.find(data, groups=True)
    assert twice.hits() == twice.hits()
    assert any(r.context is not None for r in config.rules) and len(got) > 20


def test_fields_in_the_order_groupdict_gives(config: Config, tmp_path: Path) -> None:
    """Fields read by group number are the named groups in their order, as ``fields_of``
    gives them (alerts carry them in that order): repeated names, unnamed groups, unset."""
    rules = [rule(r"(?P<b>x+)(?P<a>y)?|(?P<b>z)", "dup"), rule(r"(q)(?P<n>\d+)", "unnamed"),
             rule(r"(?P<k>k)(?:-(?P<v>\w+))?", "unset")]
    data = b"xx\nz\nxy\nq12\nk\nk-v\n" + generate(tmp_path / "s.log", 500, seed=3).read_bytes()
    rules += list(config.rules)
    got = [(m.rule.id, list(m.fields.items())) for m in Matcher(rules).scan(data)]
    expected = [(h[1], list(h[3].items())) for h in naive(tuple(rules), (), data)]
    assert got == expected
    assert len({rid for rid, _ in got} & {"dup", "unnamed", "unset"}) == 3


@pytest.mark.corpus
def test_corpus_has_hits(config: Config) -> None:
    """The comparison above is not vacuous."""
    data = (CORPUS / "loghub" / "OpenSSH_2k.log").read_bytes()
    assert len(fast(Matcher(config.rules), data)) > 500


# -- semantics ----------------------------------------------------------------


def test_line_then_rule_order_and_positions() -> None:
    """Matches come in line order, then rule order; start/end delimit the line."""
    a, b = rule(r"beta (?P<n>\d+)", "a"), rule(r"alpha", "b")
    data = b"x alpha beta 1\nnothing\nbeta 2\n"
    got = [(m.start, m.end, m.rule.id, m.fields, m.text) for m in Matcher([a, b]).scan(data)]
    assert got == [(0, 14, "a", {"n": "1"}, "x alpha beta 1"), (0, 14, "b", {}, "x alpha beta 1"),
                   (23, 29, "a", {"n": "2"}, "beta 2")]


def test_ignore_rule_and_global() -> None:
    """A rule's ignore and the global ignore both drop the line, and are counted."""
    r = rule(r"Failed password from (?P<ip>\S+)", ignore=(compile_pattern(r"from 10\."),))
    m = Matcher([r], ignore=[compile_pattern(r"from 192\.168\.")])
    data = b"Failed password from 10.0.0.1\nFailed password from 192.168.1.1\n" \
           b"Failed password from 8.8.8.8\n"
    assert [x.fields["ip"] for x in m.scan(data)] == ["8.8.8.8"]
    assert m.ignored["r"] == 2


def test_catastrophic_pattern_is_stopped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    """``(a|aa)+$`` on 'a'*40+'b' would run for ages: the timeout stops it, counted per line.

    (The regex module defuses the classic ``(a+)+$``; this one it does not.) Each slow
    line ends in a match, so that no prefilter spares the regex engine the search.
    """
    r = rule(r"x(a|aa)+$")
    m = Matcher([r], timeout=0.05)
    data = ("x" + "a" * 40 + "b xa\n").encode() * 2 + b"xaaa\n"
    with caplog.at_level(logging.WARNING, logger="logwatch.matching.matcher"):
        hits = list(m.scan(data))
    assert [h.text for h in hits] == ["xaaa"]
    assert m.timeouts["r"] == 2
    assert sum("was stopped" in rec.getMessage() for rec in caplog.records) == 1


#: found by the exact line filter (no nested repeat), yet slow for the regex engine on a
#: long line, from its start: its search for the groups is stopped by a 0.05 s timeout
SLOW_GROUPS = r"a(?P<g>\w*\w*\w*\w*\w*)!"
SLOW_LINE = "a" + "b" * 6000 + " a!"


def test_lines_the_filter_vouched_for_are_searched_within_the_same_bound() -> None:
    """Iterating matches the exact filter found searches them for their groups, in one
    loop per pattern: once stopped TIMEOUTS_PER_CHUNK times, the other lines are skipped
    (counted), as when every line is searched; the chunk costs a bounded time."""
    m = Matcher([rule(SLOW_GROUPS)], timeout=0.05)
    data = ("a ab!\n" + (SLOW_LINE + "\n") * 8).encode()
    found = m.find(data)
    assert len(found) == 9
    assert [h.fields for h in found] == [{"g": "b"}]
    assert m.timeouts["r"] == TIMEOUTS_PER_CHUNK
    assert m.skipped["r"] == 8 - TIMEOUTS_PER_CHUNK


@pytest.mark.skipif(not engine.hyperscan_loads(), reason="needs the exact line filter")
def test_a_pattern_without_groups_is_not_searched_on_lines_the_filter_vouched_for() -> None:
    """The exact filter's word is the match: nothing to take from the regex engine."""
    r = rule(SLOW_GROUPS.replace("?P<g>", "?:"))
    m = Matcher([r], timeout=0.05)
    assert [(h.text, h.fields) for h in m.scan(f"{SLOW_LINE}\nab!\n".encode())] == [
        (SLOW_LINE, {}), ("ab!", {})]
    assert not m.timeouts


@pytest.mark.skipif(not engine.hyperscan_loads(), reason="needs the exact line filter")
def test_one_bound_per_pattern_however_its_lines_are_split() -> None:
    """Lines the exact filter vouches for and lines it leaves unsure are searched apart:
    together they are stopped TIMEOUTS_PER_CHUNK times, not that many times each."""
    m = Matcher([rule(SLOW_GROUPS + r"|zz(?!q)")], timeout=0.05)
    unsure = "a" + "b" * 6000 + " zzq"  # the lookahead: the filter cannot vouch for it
    data = ((SLOW_LINE + "\n") * 8 + (unsure + "\n") * 8).encode()
    assert list(m.scan(data)) == []
    assert m.timeouts["r"] == TIMEOUTS_PER_CHUNK
    assert m.skipped["r"] == 16 - TIMEOUTS_PER_CHUNK


def test_invalid_utf8_and_nul_bytes() -> None:
    """Bad bytes decode to U+FFFD, NULs stay; neither hides an ASCII literal."""
    r = rule(r"user (?P<u>\S+) failed")
    data = b"\xff\xfeuser b\xe9b failed\n\x00\x00user \x00x failed\n\xe2(user c failed\n"
    got = [(h.fields["u"], h.text) for h in Matcher([r]).scan(data)]
    assert got == [("b\ufffdb", "\ufffd\ufffduser b\ufffdb failed"),
                   ("\x00x", "\x00\x00user \x00x failed"), ("c", "\ufffd(user c failed")]


def test_non_ascii_literal_with_replacement_char() -> None:
    """A pattern whose literal is U+FFFD matches lines with invalid UTF-8: no literal is used."""
    r = rule("bad \ufffd byte")
    assert [h.text for h in Matcher([r]).scan(b"bad \xff byte\n")] == ["bad \ufffd byte"]


def test_resolve_kind() -> None:
    """A line matching the rule's resolve pattern yields a Match of kind "resolve"."""
    r = rule(r"nfs: server (?P<s>\S+) not responding", resolve=compile_pattern(
        r"nfs: server (?P<s>\S+) OK"))
    data = b"nfs: server a not responding\nnfs: server a OK\nnoise\n"
    got = [(h.kind, h.fields) for h in Matcher([r]).scan(data)]
    assert got == [("match", {"s": "a"}), ("resolve", {"s": "a"})]


@pytest.mark.parametrize("scanner", SCANNERS)
def test_counts_and_samples_are_what_the_matches_say(scanner: str) -> None:
    """Found.counts() and .samples() (what `logwatch test` uses) agree with iterating."""
    nfs = rule(r"nfs: server (?P<s>\S+) not responding", "nfs",
               resolve=compile_pattern(r"nfs: server (?P<s>\S+) OK"))
    fail = rule(r"Failed password for (?P<u>\S+)", "fail",
                ignore=(compile_pattern(r"for backup\d"),))
    lines = [f"nfs: server s{i} {'OK' if i % 3 else 'not responding'}" for i in range(7)]
    lines += [f"Failed password for {'backup' if i % 2 else 'root'}{i}" for i in range(6)]
    lines += ["noise", "nfs: server late not responding"]
    matcher = Matcher([nfs, fail], scanner=scanner)
    found = matcher.find(("\n".join(lines) + "\n").encode())
    matches = list(found)
    assert len(found) == len(matches) == 11
    assert found.counts() == {"nfs": 8, "fail": 3}
    expected: dict[str, list[str]] = {}
    for m in matches:
        if len(expected.setdefault(m.rule.id, [])) < 2:
            expected[m.rule.id].append(m.text)
    assert found.samples(2) == expected
    assert matcher.ignored == {"fail": 3}


def test_rule_without_literal_runs_everywhere_and_says_so() -> None:
    """No literal: the rule still runs on every line, and notes() tells ``logwatch check``."""
    r = rule(r"^\d+$")
    m = Matcher([r, rule(r"literal here", "b")])
    assert m.notes() == [NO_LITERAL_NOTE]
    assert [h.text for h in m.scan(b"12\nliteral here\nx\n345\n")] == [
        "12", "literal here", "345"]


def test_last_line_without_newline() -> None:
    """A chunk whose last line lacks its newline still has that line matched."""
    assert [h.end for h in Matcher([rule("tail")]).scan(b"a\nthe tail")] == [10]


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b)
                      | st.text(max_size=40).filter(lambda t: "\n" not in t).map(str.encode),
                      min_size=1, max_size=30),
       picked=st.lists(st.booleans(), min_size=30, max_size=30))
def test_decode_whole_or_line_by_line_is_the_naive_text(lines: list[bytes],
                                                         picked: list[bool]) -> None:
    """Few candidate lines are decoded one by one, many at once: either way each is the
    text the naive loop searches (invalid UTF-8 replaced)."""
    data = b"\n".join(lines) + b"\n"
    starts = [sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))]
    spans = [(s, s + len(x)) for s, x, keep in zip(starts, lines, picked, strict=False) if keep]
    expected = [data[s:e].decode("utf-8", "replace") for s, e in spans]
    default = matcher_module._DECODE_WHOLE
    try:
        for whole in (0, 1 << 30):  # always line by line; at once wherever the chunk allows
            matcher_module._DECODE_WHOLE = whole
            assert _decode(data, spans) == expected
    finally:
        matcher_module._DECODE_WHOLE = default


def test_match_text_is_the_naive_loop() -> None:
    """match_text, used by ``logwatch check``, returns rules and fields."""
    r = rule(r"id=(?P<id>\d+)")
    assert Matcher([r]).match_text("x id=42") == [(r, {"id": "42"})]
