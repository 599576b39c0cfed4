"""The line filter: Hyperscan on loosened patterns never misses a line the rule matches, and on
exact ones, over ASCII lines, reports just the lines the rule matches."""

from __future__ import annotations

from collections import Counter

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logwatch.matching import Matcher
from logwatch.matching.hyperscan_filter import (
    LineFilter,
    exact,
    make_line_filter,
    plain_literal,
    superset,
    tight,
    vetoes,
)
from logwatch.matching.literals import CASELESS_UNSAFE
from logwatch.rules import compile_pattern
from tests.matching.test_matcher import rule
from tests.reference import naive

pytest.importorskip("hyperscan")


def reported(pattern: str, lines: list[bytes], precise: bool | None = False) -> list[int]:
    """Indexes of the lines the filter reports for ``pattern`` alone (``precise``: the exact
    expression, which must then be the one run; ``None``: the ASCII database, whatever it
    runs)."""
    compiled = regex.compile(pattern, regex.VERSION0)
    line_filter = make_line_filter([compiled])
    assert line_filter is not None, f"{pattern!r} is not covered"
    data = b"\n".join(lines) + b"\n"
    keys, exact_ids = line_filter.lines(data, exact=precise is not False)
    if precise is not None:
        assert (0 in exact_ids) == precise, f"{pattern!r}: the exact expression was not run"
    ends = sorted({key // line_filter.count for key in keys})
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    return [i for i, line in enumerate(lines) if starts[i] + len(line) in ends]


def matching(pattern: str, lines: list[bytes]) -> list[int]:
    """Indexes of the lines the rule matches, as the naive loop decodes them."""
    compiled = regex.compile(pattern, regex.VERSION0)
    return [i for i, line in enumerate(lines)
            if compiled.search(line.decode("utf-8", "replace"))]


@pytest.mark.parametrize(("pattern", "hit", "miss"), [
    ("Failed password for", b"sshd[1]: Failed password for root", b"sshd[1]: Accepted password"),
    (r"(?i)kelvin", "\u212aelvin".encode(), b"celvin"),           # K (U+212A) is k under (?i)
    (r"(?i)\u212a", b"k", b"x"),                                # and k is K
    (r"(?i)\u017f", b"S", b"t"),                                      # long s
    (r"a.b", "a\u00e9b".encode(), b"ab"),                       # one character, two bytes
    (r"a.b", "a\U0001f600b".encode(), b"a\n"),                  # four bytes
    (r"a.b", b"a\xffb", b"axxb"),                               # invalid UTF-8: one U+FFFD
    (r"a\ufffdb", b"a\xe2\x82b", b"a?b"),                       # a cut sequence is one U+FFFD
    (r"^\d+$", "\u0663\u0664".encode(), b"12a"),                # Arabic-Indic digits are \d
    (r"x\s+y", "x\u00a0y".encode(), b"xy"),                      # no-break space is \s
    (r"[^a]z", b"bz", b"az"),
    (r"(?i)[^a]z", "\u00e9z".encode(), b"Az"),
    (r"(?<=user )root\b", b"user root", b"rooted"),             # lookarounds and \b only add lines
    (r"(\w+) again \1", b"hello again hello", b"hello once"),   # a backreference: any text
    (r"(a)?(?(1)b|c)", b"c", b"d"),                              # a conditional: either branch
    (r"(?>ab|a)c", b"ac", b"bc"),                               # atomic: as a plain group
    (r"x{2,3}", b"xx", b"x"),
    (r"[é-ü]{2}", "\u00e9\u00fc".encode(), b"ee"),
])
def test_reports_what_the_rule_matches(pattern: str, hit: bytes, miss: bytes) -> None:
    """Each case's matching line is reported; where the loosened pattern is still exact, the other not."""
    lines = [hit, miss]
    assert matching(pattern, lines) == [0]
    assert 0 in reported(pattern, lines)


@pytest.mark.parametrize("pattern", [
    r"a\nb",                     # a line never contains "\n": nothing to report, left to the literal path
    r"\p{Lu}+ failed",           # regex-module syntax
    r"(?V1)a[[:alpha:]--b]",     # other matching rules
])
def test_not_covered(pattern: str) -> None:
    assert superset(regex.compile(pattern)) is None


@pytest.mark.parametrize(("pattern", "lines"), [
    (r"^Failed", [b"Failed x", b"x Failed", b"Failed"]),
    (r"\AFailed", [b"Failed x", b"x Failed"]),
    (r"root$", [b"user root", b"root user", b"root"]),
    (r"root\Z", [b"user root", b"root user"]),
    (r"\broot\b", [b"root", b"x root y", b"xroot", b"root_", b"root-1", b"roots"]),
    (r"\Boot", [b"root", b"oot", b" oot"]),
    (r"x\s+y", [b"x y", b"x\ty", b"x\x1cy", b"xy", b"x_y"]),    # is \x1c a space? regex says
    (r"(?i)failed (?-i:for) (?P<user>\w+)", [b"FAILED for root", b"failed FOR root", b"failed for"]),
    (r"Failed.*?from", [b"Failed x from", b"from Failed", b"Failed\rfrom"]),
    (r"port \d{2,3}$", [b"port 22", b"port 2", b"port 2222", b"port 222"]),
    (r"^a$|^b\s*$|c d", [b"a", b"b  ", b"bb", b"xc d", b"ab"]),
    (r"(?:x|y)+z", [b"xyxz", b"z", b"xy"]),
    (r"[^\s:]+\[\d+\]: x", [b"sshd[1]: x", b"sshd[]: x", b": [1]: x"]),
])
def test_exact_on_ascii_lines(pattern: str, lines: list[bytes]) -> None:
    """The exact expression reports just the lines the rule matches (anchors, \\b, classes)."""
    assert 0 < len(matching(pattern, lines)) < len(lines)
    assert reported(pattern, lines, precise=True) == matching(pattern, lines)


@pytest.mark.parametrize("pattern", [
    r"Failed (?!publickey)\S+",       # lookarounds
    r"(\w+) again \1",                # backreferences
    r"(?>ab|a)c",                      # atomic groups
    r"a++b",                           # possessive repeats
    r"(?:a|aa)+$",                     # backtracking: the regex engine's timeout must see it
    r"(?:a$|b)c",                      # "$" inside: Hyperscan refuses it
    r"^(?P<p>[\w.-]+): .*?No space",   # text of any length before the rare literal: slow
])
def test_not_exact(pattern: str) -> None:
    assert exact(regex.compile(pattern, regex.VERSION0)) is None
    assert superset(regex.compile(pattern, regex.VERSION0)) is not None


@pytest.mark.parametrize(("pattern", "lines"), [
    (r"Failed (?!publickey)\S+ for", [b"Failed password for", b"Failed publickey for", b"x"]),
    (r"(\w+) again \1", [b"a again a", b"a again b", b"again"]),
    (r"(?>ab|a)c", [b"ac", b"abc", b"bc"]),
    (r"a++b", [b"aab", b"b"]),
    (r"(?:a|aa)+$", [b"aaa", b"aab"]),
    (r"(?:a$|b)c", [b"a", b"bc", b"ac", b"c"]),
    (r"(?<=\bsu)\(pam_unix\)", [b"su(pam_unix)", b"sudo(pam_unix)", b"(pam_unix"]),
])
def test_tight_where_not_exact(pattern: str, lines: list[bytes]) -> None:
    """What the exact translation refuses, the tight one loosens: the ASCII database runs it,
    as a filter (the regex engine confirms), and it never misses a line."""
    compiled = regex.compile(pattern, regex.VERSION0)
    assert exact(compiled) is None
    assert tight(compiled) is not None
    assert set(matching(pattern, lines)) <= set(reported(pattern, lines, precise=None))


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"Failed (?!publickey )\S+ for", 1),                 # the body, looked for anywhere
    (r"(?<!user )root x(?!yes|zulu)", 2),                  # lookbehinds too
    (r"Failed (?!publickey for (?!invalid user ))\S+", 1),  # a nested one: within the body
    (r"a(?=b)c", None),                                    # a positive one: no
    (r"a(?!b)$c", None),                                   # an anchor dropped: no
    (r"(?:a|aa)+(?!b)", None),                             # a nested repeat: no
    (r"from \S+ port \d+:(?!3:|14:)", None),                # a common body: no
])
def test_vetoes(pattern: str, expected: int | None) -> None:
    """Only a tight expression that dropped nothing but negative lookarounds has vetoes."""
    found = vetoes(regex.compile(pattern, regex.VERSION0))
    assert (found if found is None else len(found)) == expected


def test_vetoed_lines_are_searched_the_others_not() -> None:
    """``b(?!c)``: a line with no ``c`` at all needs no search; a line with one does."""
    r = rule(r"Failed (?!publickey for (?!invalid user ))\S+ for (?P<u>\S+)")
    matcher = Matcher([r])
    lines = [b"Failed password for root", b"Failed publickey for root",
             b"Failed publickey for invalid user x", b"noise",
             b"Failed password for publickey for root"]
    data = b"\n".join(lines) + b"\n"
    spans, rows, marks = matcher._plan.rows(data, exact=True)
    assert marks is not None
    assert matcher._plan.conditional == 1
    assert [data[s:e] for s, e in spans] == [lines[0], lines[1], lines[2], lines[4]]
    assert matcher._plan.sure(0, rows[0], marks) == ([0], [1, 2, 3])
    found = matcher.find(data)
    assert found.counts() == {"r": 3}
    assert [m.fields for m in found] == [{"u": "root"}, {"u": "invalid"}, {"u": "publickey"}]
    assert [m.fields for m in found] == [f for _, _, _, f in naive((r,), (), data)]


def test_no_tight_expression_where_it_would_be_slow() -> None:
    """Text of any length before the first rare literal: the loosened expression, cut there."""
    assert tight(regex.compile(r"^(?P<p>[\w.-]+): .*?No space", regex.VERSION0)) is None

def test_leading_common_parts_are_cut() -> None:
    """The expression starts at the first rare literal: ``: .*?`` before it is not run."""
    expression = superset(regex.compile(r"^(?P<p>[\w.-]+)(?:\[\d+\])?: .*?No space left", regex.V0))
    assert expression is not None
    assert expression.startswith(b"(?:\\x4e\\x6f")  # "No"


def test_one_report_per_line_and_pattern() -> None:
    line_filter = make_line_filter([regex.compile(r"a+"), regex.compile(r"b")])
    assert isinstance(line_filter, LineFilter)
    keys, _ = line_filter.lines(b"aaa b aaa\nccc\naab\n")
    assert sorted(keys) == sorted({*keys})
    assert sorted((key // 2, key % 2) for key in keys) == [(9, 0), (9, 1), (17, 0), (17, 1)]


def test_python_scanner_means_no_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGWATCH_SCANNER", "python")
    assert make_line_filter([regex.compile("abc")]) is None
    assert Matcher([rule("abc")]).line_filter is None


def test_case_partners_are_only_i_k_s() -> None:
    """The translation assumes only i, k, s meet non-ASCII characters under (?i): check the engine."""
    every = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    partners = {c for c in "abcdefghijklmnopqrstuvwxyz" if regex.search(f"(?i){c}", every)}
    assert partners == set(CASELESS_UNSAFE)


# -- the property: the filter never loses a line -------------------------------

ATOMS = ["a", "b", "k", "s", "K", "é", "\u212a", "\u017f", " ", ":", "1", r"\d", r"\w", r"\s", r"\S",
         r"\W", r"\D", ".", "[a-c]", "[^a]", "[é-ü]", "[^\\s:]", r"\b", "^", "$", "(?=a)",
         "(?<!b)", "(?i:k)", r"\x00"]
#: atoms after which a pattern may match no text at all (not given to from_regex)
ANCHORED = (r"\b", "^", "$", "(?=", "(?<!")
CHARS = ["a", "b", "k", "K", "s", "S", "é", "\u212a", "\u017f", "\u0130", " ", ":", "1", "\u0663", "\u00a0",
         "\t", "\x1f", "\x00", "\U0001f600"]


@st.composite
def patterns(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 5 if depth < 2 else 1))
        if kind <= 1:
            part = draw(st.sampled_from(ATOMS))
        elif kind == 2:
            part = "(" + draw(patterns(depth + 1)) + ")"
        elif kind == 3:
            part = "(?:" + draw(patterns(depth + 1)) + "|" + draw(patterns(depth + 1)) + ")"
        elif kind == 4:
            part = "(?:" + draw(patterns(depth + 1)) + ")" + draw(
                st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?", "++", "{0,2}"]))
        else:
            part = "(?>" + draw(patterns(depth + 1)) + ")"
        parts.append(part)
    flags = "(?i)" if depth == 0 and draw(st.booleans()) else ""
    return flags + "".join(parts)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    text = "".join(draw(st.lists(st.sampled_from(CHARS), max_size=12))).encode()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        junk = draw(st.binary(max_size=4).filter(lambda b: b"\n" not in b))
        text = text[:cut] + junk + text[cut:]
    return text


@st.composite
def pattern_and_lines(draw: st.DrawFn) -> tuple[str, list[bytes]]:
    """A random pattern, and lines of which many match it (drawn from the pattern itself)."""
    pattern = draw(patterns())
    matching_text: st.SearchStrategy[str] = st.nothing()
    # from_regex draws text and keeps what matches: on a pattern no text matches (an
    # anchor or a lookaround inside it: "$\\D^") it would draw for ever
    if not any(a in pattern for a in ANCHORED):
        try:
            matching_text = st.from_regex(pattern.replace("(?>", "(?:").replace("++", "+"))
            draw(matching_text)
        except Exception:  # from_regex does not take every construct
            matching_text = st.nothing()
    sample = draw(st.lists(st.one_of(lines(), matching_text.map(str.encode)), min_size=1,
                           max_size=12))
    return pattern, [line.replace(b"\n", b"") for line in sample]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pattern_and_lines())
def test_never_misses_a_line(case: tuple[str, list[bytes]]) -> None:
    """On random patterns and lines (non-ASCII, invalid UTF-8), every matching line is reported."""
    pattern, sample = case
    compiled = regex.compile(pattern, regex.VERSION0)
    if superset(compiled) is None:
        return
    assert set(matching(pattern, sample)) <= set(reported(pattern, sample))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pattern_and_lines())
def test_ascii_database_never_misses_a_line(case: tuple[str, list[bytes]]) -> None:
    """On random patterns and random ASCII lines, what the ASCII database runs (exact, tight
    or loosened) reports every matching line."""
    pattern, sample = case
    sample = [line for line in sample if line.isascii()]
    if not sample or superset(regex.compile(pattern, regex.VERSION0)) is None:
        return
    assert set(matching(pattern, sample)) <= set(reported(pattern, sample, precise=None))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pattern_and_lines())
def test_exact_reports_just_the_matching_lines(case: tuple[str, list[bytes]]) -> None:
    """On random patterns and random ASCII lines, the exact expression is the rule."""
    pattern, sample = case
    sample = [line for line in sample if line.isascii()]
    line_filter = make_line_filter([regex.compile(pattern, regex.VERSION0)])
    if not sample or line_filter is None or 0 not in line_filter.exact:
        return
    assert reported(pattern, sample, precise=True) == matching(pattern, sample)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pattern_and_lines(), ascii_only=st.booleans(),
       ignore=st.sampled_from(["", "b", "k", "a:", r"\d", "^a", "a$", "(?=a)b", r"(\w)\1"]),
       alternative=st.sampled_from(["", "|b(?=a)", r"|a\b", "|k$", "|k(?!a:)", "|(?<!b)a1",
                                    "(?!a)", "|s(?!(?!a)b)"]))
def test_matcher_with_filter_equals_naive_loop(case: tuple[str, list[bytes]], ascii_only: bool,
                                               ignore: str, alternative: str) -> None:
    """Through the whole matcher, hits, fields and counts are the naive loop's, with an
    ignore pattern or not (exact or not), and alternatives (exact or not)."""
    pattern, sample = case
    pattern += alternative
    if ascii_only:
        sample = [line for line in sample if line.isascii()]
    r = rule(pattern, ignore=(compile_pattern(ignore),) if ignore else ())
    data = b"\n".join(sample) + b"\n"
    matcher = Matcher([r])
    found = matcher.find(data)
    got = [(m.start, m.rule.id, m.kind, m.fields) for m in found]
    want = naive((r,), (), data)
    assert got == want
    assert found.counts() == Counter(rule_id for _, rule_id, _, _ in want)
    # the daemon's way: every line searched at once (the loosened filter), same hits
    assert [(m.start, m.rule.id, m.kind, m.fields) for m in Matcher([r]).scan(data)] == want


def test_covered_and_uncovered_rules_together() -> None:
    """Rules the filter covers and rules left to the literal prefilter, in one matcher."""
    rules = [rule(r"Failed password for (?P<user>\S+)", "covered"),
             rule(r"\p{Lu}\w+ user (?P<user>\S+)", "regex-only-syntax"),
             rule(r"\d+", "no-literal")]
    matcher = Matcher(rules)
    assert matcher.line_filter is not None
    assert 1 not in matcher.line_filter.covered
    data = "\n".join([
        "sshd[1]: Failed password for root from 10.0.0.1",
        "sshd[2]: Invalid user admin from 10.0.0.2",
        "no digits here",
        "\u00c9tienne user \u00e9 and Failed password for x",
    ]).encode() + b"\n"
    got = [(m.start, m.rule.id, m.kind, m.fields) for m in matcher.scan(data)]
    assert got == naive(tuple(rules), (), data)
    assert {rule_id for _, rule_id, _, _ in got} == {"covered", "regex-only-syntax", "no-literal"}


def test_exact_alternatives_spare_the_search() -> None:
    """``a|b(?=c)``: a line the exact alternative matches needs no search; the others do."""
    r = rule(r"Failed (?=pass)\S+ for (?P<u>\S+)|Invalid user (?P<u>\S+) from",
             ignore=(compile_pattern(r"user backup\d"),))
    matcher = Matcher([r])
    lines = [b"Failed password for root", b"Failed publickey for root", b"noise",
             b"Invalid user admin from 1.2.3.4", b"Invalid user backup1 from 1.2.3.4"]
    data = b"\n".join(lines) + b"\n"
    spans, rows, marks = matcher._plan.rows(data, exact=True)
    assert marks is not None
    assert [data[s:e] for s, e in spans] == [lines[0], lines[1], lines[3], lines[4]]
    assert marks.vouched == {2: 1, 3: 1}  # the "Invalid user" lines, for probe 0
    assert matcher._plan.sure(0, rows[0], marks) == ([2, 3], [0, 1])
    found = matcher.find(data)
    assert found.counts() == {"r": 2}
    assert matcher.ignored == {"r": 1}
    assert [(m.rule.id, m.fields) for m in found] == [("r", {"u": "root"}), ("r", {"u": "admin"})]


@pytest.mark.parametrize(("pattern", "flags", "expected"), [
    (r"from 10\.0\.", 0, b"from 10.0."),
    (r"pam_unix\(sshd:auth\)", 0, b"pam_unix(sshd:auth)"),
    ("(?x) a b", 0, b"ab"),
    ("(?i)root", 0, None),          # caseless: not a byte search
    ("root", regex.IGNORECASE, None),
    ("a.b", 0, None),
    ("\u00e9t\u00e9", 0, None),     # non-ASCII: bytes and text differ
    ("", 0, None),
])
def test_plain_literal(pattern: str, flags: int, expected: bytes | None) -> None:
    """An ignore pattern that is plain ASCII text is looked for in the bytes, nothing else."""
    assert plain_literal(regex.compile(pattern, flags)) == expected


def test_rows_name_only_the_probes_with_lines() -> None:
    """A read holding one rule's lines costs that rule, not all of them: the other probes
    have no row at all, whatever the filter's database holds."""
    rules = [rule(rf"event{i} from (?P<ip>\S+)", f"r{i}") for i in range(40)]
    matcher = Matcher(rules)
    data = b"noise\nevent7 from 10.0.0.1\nmore noise\nevent7 from 10.0.0.2\nevent31 from x\n"
    for ascii_db in (False, True):
        spans, rows, _ = matcher._plan.rows(data, exact=ascii_db)
        assert dict(rows) == {7: [0, 1], 31: [2]}
        assert [data[s:e] for s, e in spans] == [*data.splitlines()[1::2], b"event31 from x"]
    assert [(m.rule.id, m.fields) for m in matcher.scan(data)] == [
        ("r7", {"ip": "10.0.0.1"}), ("r7", {"ip": "10.0.0.2"}), ("r31", {"ip": "x"})]
    # a big chunk (more keys than a few per probe) is gathered in lists: the same rows
    _, rows, _ = matcher._plan.rows(data * 100, exact=True)
    assert rows == {7: [i for i in range(300) if i % 3 < 2], 31: list(range(2, 300, 3))}
