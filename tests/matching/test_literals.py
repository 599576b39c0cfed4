"""Literal extraction and the literal scanners."""

from __future__ import annotations

import random
import tomllib

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwatch.matching import Matcher
from logwatch.matching.literals import (
    COMPILED,
    FindScanner,
    Literal,
    make_scanner,
    required_literals,
    required_sets,
)
from logwatch.rules import compile_pattern
from tests.helpers import CORPUS, REPO, corpus_missing, shipped_rule_tables
from tests.matching.test_matcher import rule
from tests.reference import naive


def lits(pattern: str) -> set[str] | None:
    found = required_literals(compile_pattern(pattern))
    return None if found is None else {lit.text for lit in found}


# -- extraction ---------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"sshd\[\d+\]: Failed password for (?P<user>\S+)", {"]: Failed password for "}),
    (r"(?:Failed|Invalid) user", {"Failed", "Invalid"}),         # an alternation is a set
    (r"(?:Failed|\d+) password from", {" password from"}),     # one branch has none
    (r"(?:foo)?", None),                                          # optional: nothing required
    (r"ab{0,}cd", {"cd"}),                                      # b* is a gap
    (r"x(?:abcd){2,}y", {"abcd"}),                              # a repeat at least once counts
    (r"[abc]xyzw", {"xyzw"}),                                   # classes are gaps
    (r"(?>abc)defg", {"abcdefg"}),                              # atomic groups splice in
    (r"(?P<a>foo)bar|(?P<a>baz)qux", {"foobar", "bazqux"}),     # regex allows reused names
    (r"\p{L}+ failed", None),                                   # regex-only syntax: no literal
    (r"[[:alpha:]]+ failed", None),                             # read differently by re: none
    (r"éléphant", {"phant"}),                                   # only ASCII
    (r"a.b", None),                                              # single letters are too common
])
def test_required_literals(pattern: str, expected: set[str] | None) -> None:
    """What each shape of pattern contributes."""
    assert lits(pattern) == expected


def test_case_insensitive_literals_lowered_and_cut_at_i_k_s() -> None:
    """(?i): lower-cased, caseless, cut where a non-ASCII letter could match (i, k, s)."""
    found = required_literals(compile_pattern(r"(?i)Broken PIPE"))
    assert found == {Literal("en p", True)}
    assert required_literals(compile_pattern(r"(?i:kiss)")) is None
    nonascii = "".join(chr(c) for c in range(0x80, 0x3000))
    assert set(regex.findall(r"(?i)[a-z]", nonascii + "\u212a")) == {"\u0130", "\u017f", "\u212a"}


def test_every_set_is_necessary() -> None:
    """required_sets lists each set every match contains, best guess first."""
    sets = required_sets(compile_pattern(r"CRON\[\d+\]: \((?P<u>\S+)\) (?:ERROR|error) \("))
    assert {frozenset(lit.text for lit in s) for s in sets} >= {
        frozenset({"CRON["}), frozenset({"ERROR", "error"})}


def test_calibration_picks_the_rarest_set() -> None:
    """After reading logs, the literal path filters by the set that occurs least there."""
    r = rule(r"CRON\[\d+\]: \((?P<u>\S+)\) (?:ERROR|error) \(")
    m = Matcher([r], scanner="python")
    data = b"".join(b"Nov 1 host CRON[%d]: (root) CMD (run)\n" % i for i in range(30000))
    assert list(m.scan(data)) == []
    assert {lit.text for lit in m._chosen[0] or ()} == {"ERROR", "error"}


# -- scanners -----------------------------------------------------------------


def _sample() -> tuple[list[Literal], bytes]:
    data = b"".join(p.read_bytes() for p in sorted((CORPUS / "loghub").glob("*.log")))
    words = sorted({w for w in data.decode("utf-8", "replace").split() if w.isascii()})
    chosen = random.Random(1).sample(words, 60)
    literals = [Literal(w) for w in chosen] + [Literal(w.lower(), True) for w in chosen[:10]]
    literals += [Literal("sshd"), Literal("hd["), Literal("ss")]  # overlapping ones
    return literals, data


@pytest.mark.corpus
@pytest.mark.parametrize("name", list(COMPILED))
def test_compiled_scanner_same_lines_as_python(name: str) -> None:
    """A compiled scanner selects exactly the lines, with the same literals, as Python's."""
    literals, data = _sample()
    compiled = make_scanner(literals, prefer=name)
    if compiled.name != name:
        pytest.skip(f"{name} is not installed here")

    def per_line(hits: list[tuple[int, int]]) -> set[tuple[int, int]]:
        return {(data.rfind(b"\n", 0, pos), index) for pos, index in hits}

    assert per_line(compiled.hits(data)) == per_line(FindScanner(literals).hits(data))


def test_python_scanner_forced_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """LOGWATCH_SCANNER=python rules out the compiled scanners."""
    monkeypatch.setenv("LOGWATCH_SCANNER", "python")
    assert make_scanner([Literal("abc")]).name == "python"


# -- the property: fast path == naive loop ------------------------------------


def _fragments() -> tuple[list[str], list[str]]:
    extra = REPO / "bench" / "extra_rules.toml"
    shipped = shipped_rule_tables()
    patterns = [r["match"] for r in shipped]
    patterns += [r["match"] for r in tomllib.loads(extra.read_text("utf-8"))["rules"]]
    # the rules' own test lines (kept in the repository), and real logs when the corpus is here
    lines = [t["line"] for r in shipped for t in r.get("tests", [])]
    if corpus_missing() is None:
        lines += (CORPUS / "loghub" / "OpenSSH_2k.log").read_text("utf-8").splitlines()[:300]
        lines += (CORPUS / "fail2ban" / "sshd").read_text("utf-8").splitlines()[:300]
    return patterns, lines


PATTERNS, LINES = _fragments()
ATOMS = [r"\d+", r"\S+", r"(?P<x>\w+)", "(?:Failed|Invalid)", "(?i)", " from ", "user ",
         r"[a-z]", "(?:port )?", r"\[", ".*", "^", "$", "ss", "sshd"]


@st.composite
def random_rule_pattern(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(PATTERNS))
    line = draw(st.sampled_from(LINES))
    i = draw(st.integers(0, max(len(line) - 1, 0)))
    piece = regex.escape(line[i: i + draw(st.integers(1, 12))])
    parts = draw(st.lists(st.sampled_from([*ATOMS, piece]), min_size=1, max_size=4))
    text = "".join(p for p in parts if p != "(?i)")
    return ("(?i)" if "(?i)" in parts else "") + text


@st.composite
def random_line(draw: st.DrawFn) -> bytes:
    line = draw(st.sampled_from(LINES)).encode()
    cut = draw(st.integers(0, len(line)))
    noise = draw(st.binary(max_size=6).filter(lambda b: b"\n" not in b))
    return line[:cut] + noise + line[cut:] if draw(st.booleans()) else line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns=st.lists(random_rule_pattern(), min_size=1, max_size=5),
       lines=st.lists(random_line(), min_size=1, max_size=30),
       scanner=st.sampled_from(["python", *COMPILED]))
def test_fast_path_equals_naive_loop(patterns: list[str], lines: list[bytes], scanner: str) -> None:
    """On random rules and lines, the chunk path returns the naive loop's hits and fields."""
    rules = []
    for i, p in enumerate(patterns):
        try:
            rules.append(rule(p, f"r{i}"))
        except ValueError:
            continue
    data = b"\n".join(lines) + b"\n"
    got = [(m.start, m.rule.id, m.kind, m.fields) for m in Matcher(rules, scanner=scanner).scan(data)]
    assert got == naive(tuple(rules), (), data)
