"""Line-bound patterns: one search over joined lines finds each line's own match."""

from __future__ import annotations

import pytest
import regex
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logwatch.matching import Matcher
from logwatch.matching.line_bound import line_bound, without_newline
from logwatch.matching.literals import COMPILED
from logwatch.rules import compile_pattern
from tests.matching.test_matcher import rule
from tests.reference import naive


def twin(pattern: str) -> str | None:
    found = line_bound(compile_pattern(pattern))
    return None if found is None else found.pattern


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"Failed (?P<u>\S+) from \d+$", r"Failed (?P<u>\S+) from \d+$"),
    (r"x\s*$", r"x[^\S\n]*$"),
    (r"\W+x\D", r"[^\w\n]+x[^\d\n]"),
    (r"[^)]+\)", r"[^)\n]+\)"),
    (r"[^]a]x", r"[^]a\n]x"),
    (r"(?=a\s)b(?<!c)\b", r"(?=a[^\S\n])b(?<!c)\b"),
    (r"(a)\1", r"(a)\1"),
    (r"\\s", r"\\s"),
    (r"[\s,]x", None),        # \s inside a positive class still has "\n"
    (r"(?s)x.y", None),       # DOTALL: "." matches "\n"
    (r"(?s:x.)", None),
    (r"\Ax", None),           # string edges are not line edges
    (r"x\Z", None),
    (r"x?", None),            # can match the empty string
    (r"a|", None),
    (r"^", None),
    (r"x\n", None),
    (r"x[\x00-\x20]", None),
    (r"\p{L}x", None),        # regex-module-only syntax
])
def test_line_bound(pattern: str, expected: str | None) -> None:
    """Which patterns get a twin, and what it is (MULTILINE, classes without "\\n")."""
    assert twin(pattern) == expected
    if expected is not None:
        assert line_bound(compile_pattern(pattern)).flags & regex.MULTILINE  # type: ignore[union-attr]


def test_rewrite_must_parse_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rewrite the parser reads as another pattern is refused, not trusted."""
    import logwatch.matching.line_bound

    assert twin(r"a[^b]c") == r"a[^b\n]c"
    for wrong in (r"a[^x\n]c", r"a[^b\n]c?", r"a[^b\n](c)", r"(?i)a[^b\n]c", r"a[b]c"):
        monkeypatch.setattr(logwatch.matching.line_bound, "without_newline", lambda text, w=wrong: w)
        assert twin(r"a[^b]c") is None, wrong


def test_text_scan_fooled_by_a_comment_is_still_safe() -> None:
    """A "[^" in a verbose comment makes the scan add "\\n" to a real class: refused."""
    pattern = "(?x) a # [^\n [b]"
    assert without_newline(pattern) != pattern
    assert twin(pattern) is None


# -- the property: joined search == per-line search --------------------------

ATOMS = [r"\b", r"\B", "^", "$", "(?<=a)", "(?<!a)", "(?=b)", "(?!b)", r"(?<=\s)", r"(?<![^x])",
         r"(?=\W)", r"(?!\S)", r"\s*", r"\s", r"\S+", r"\w+", r"\W", r"\D", "[^a]", r"[^\s]", ".",
         ".*?", ".+", "a", "b", "ab", "(a|b)", "(?:x|)", "(?P<g>a+)?", r"\1", "é", "\x00", r"\d",
         "[ab]", "x*", "(?:ab)+", "(?i:B)", "\u2028", "[^\u2028]", r"(?:\s|x)", r"\A", r"\Z"]
ALPHABET = "ab x1\t\x00\r\x0b\x0c\x85\u2028é\ufffdB"


@st.composite
def random_pattern(draw: st.DrawFn) -> str:
    text = "".join(draw(st.lists(st.sampled_from(ATOMS), min_size=1, max_size=6)))
    return ("(?i)" if draw(st.booleans()) else "") + text


def compiled(text: str) -> regex.Pattern[str]:
    try:
        return compile_pattern(text)
    except ValueError:
        assume(False)
        raise


def shifted(m: regex.Match[str] | None, offset: int) -> object:
    """A match's spans (all groups) relative to ``offset``, comparable across strings."""
    if m is None:
        return None
    return [(s - offset, e - offset) if s >= 0 else (s, e) for s, e in m.regs]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=random_pattern(), lines=st.lists(st.text(ALPHABET, max_size=8), min_size=1,
                                                max_size=8))
def test_joined_search_equals_per_line(pattern: str, lines: list[str]) -> None:
    """For a line-bound pattern, each line's match in the joined text is its own match."""
    p = compiled(pattern)
    bound = line_bound(p)
    assume(bound is not None)
    assert bound is not None
    found: dict[int, regex.Match[str] | None] = {}
    rows = list(range(len(lines)))
    done = Matcher([])._joined(bound, rows, lines, found, 1, 0)  # keys: line * 1 + 0
    assert done == len(lines)
    offsets = [sum(len(x) + 1 for x in lines[:i]) for i in rows]
    got = {i: shifted(m, offsets[i]) for i, m in found.items()}
    expected = {i: shifted(p.search(line), 0) for i, line in enumerate(lines)}
    assert got == {i: s for i, s in expected.items() if s is not None}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns=st.lists(random_pattern(), min_size=1, max_size=4),
       lines=st.lists(st.binary(max_size=10).filter(lambda b: b"\n" not in b)
                      | st.text(ALPHABET, max_size=10).map(str.encode), min_size=1, max_size=20),
       scanner=st.sampled_from(["python", *COMPILED]))
def test_matcher_equals_naive_on_edge_patterns(patterns: list[str], lines: list[bytes],
                                               scanner: str) -> None:
    """Anchors, lookarounds, \\b, optional groups, invalid UTF-8, NUL: the naive loop's hits."""
    rules = []
    for i, text in enumerate(patterns):
        try:
            rules.append(rule(text, f"r{i}"))
        except ValueError:
            continue
    data = b"\n".join(lines) + b"\n"
    got = [(m.start, m.rule.id, m.kind, m.fields) for m in Matcher(rules, scanner=scanner).scan(data)]
    assert got == naive(tuple(rules), (), data)


def test_many_patterns_are_line_bound() -> None:
    """The property above is not vacuous: most random patterns get a twin."""
    bound = sum(line_bound(compile_pattern("(a)" + a + "x")) is not None for a in ATOMS)
    assert bound > len(ATOMS) // 2


def test_timeout_in_joined_search_falls_back_per_line() -> None:
    """A joined search stopped by the timeout: the lines are searched one by one, as before."""
    r = rule(r"x(a|aa)+$")
    assert line_bound(r.pattern) is not None
    m = Matcher([r], timeout=0.05)
    # each slow line ends in a match: no prefilter spares the regex engine the search
    data = b"xaaa\n" + ("x" + "a" * 40 + "b xa\n").encode() * 2 + b"xaaaa\n"
    assert [h.text for h in m.scan(data)] == ["xaaa", "xaaaa"]
    assert m.timeouts["r"] == 2
