"""The shipped rules measured on real logs nobody on this project wrote.

* fail2ban's annotated test logs: every ``"match": true`` line of a kind the
  rules cover is caught with the annotated host as ``ip``; no ``"match": false``
  line raises a warning-or-worse hit.
* loghub's samples against their event templates are checked by
  ``tests/packs/test_packs.py`` through ``bench/coverage.py``, which holds the map.

The numbers printed by ``python -m tests.test_rules_corpus`` are the ones in
docs/rules.md.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from logwatch.commands.replay import replay
from logwatch.config import Config, load_config
from logwatch.matching import Matcher
from tests.helpers import CORPUS, REPO

pytestmark = pytest.mark.corpus
FAIL2BAN = CORPUS / "fail2ban"
FAIL2BAN_FILES = ["sshd", "sshd-journal", "pam-generic", "nginx-http-auth", "dovecot"]

#: failure kinds no rule catches *with the address on their own line*: the address is
#: on an earlier line of the same sshd pid. The ssh pack's -noaddr rules take it from
#: there (a rule's ``context``: tests/matching/test_context.py, and bench/coverage.py,
#: which replays whole files, counts these lines as caught with the right address).
UNCOVERED = {
    r"Disconnecting: Too many authentication failures": "no address in the line",
    r"Read from socket failed: Connection reset by peer": "no address in the line",
    r"kex_exchange_identification: ": "no address in the line",
    r"fatal: Unable to negotiate a key exchange method": "no address in the line",
    r"fatal: no matching mac found": "no address in the line",
}

#: "match": false lines that a warning rule hits on purpose, each with why
EXPECTED_WARNINGS = {
    # fail2ban's "false" means "do not ban the client for this": the backend is
    # down. web-upstream-failure reports exactly that (and one line is below its
    # threshold of 5 in 5 minutes, so it alone never alerts).
    r"connect\(\) failed \(111: Connection refused\) while connecting to upstream":
        "web-upstream-failure: a backend failure, not an auth failure",
    # the pre-0.99.2.0 Linux-PAM format (2005) fail2ban dropped; loghub's Linux
    # sample is such a system, so pam-auth-failure keeps catching it
    r"pop\(pam_unix\)\[\d+\]: authentication failure": "pam-auth-failure: old Linux-PAM format",
}

@dataclass(frozen=True, slots=True)
class Annotated:
    """One fail2ban test line and what fail2ban says about it."""

    file: str
    line_no: int
    text: str
    expect: dict[str, Any]

    @property
    def host(self) -> str | None:
        """The address fail2ban must extract (``ip4``/``ip6`` in a few cases)."""
        value = self.expect.get("host") or self.expect.get("ip4") or self.expect.get("ip6")
        return str(value) if value is not None else None

    def uncovered_kind(self) -> str | None:
        """The UNCOVERED pattern this line is an instance of, if any."""
        return next((kind for kind in UNCOVERED if re.search(kind, self.text)), None)


_FAIL_JSON = re.compile(r"#\s*failJSON:\s*(\{.*\})\s*$")


def annotated_lines(path: Path) -> Iterator[Annotated]:
    """Each ``# failJSON: {...}`` annotation with the next non-comment, non-blank line."""
    pending: dict[str, Any] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if m := _FAIL_JSON.match(stripped):
            pending = json.loads(m[1])
        elif stripped and not stripped.startswith("#") and pending is not None:
            yield Annotated(path.name, number, line, pending)
            pending = None


def journal_form(text: str) -> str:
    """sshd-journal lines are "HOST sshd[PID]: MSG"; the journal source gives "sshd[PID]: MSG"."""
    return text.split(" ", 1)[-1] if text.strip() and not text.lstrip().startswith("#") else text


Hits = dict[int, list[tuple[str, dict[str, str]]]]


def replay_hits(config: Config, path: Path) -> Hits:
    """``logwatch test --json`` on ``path``: line number -> [(rule, fields)]."""
    out = io.StringIO()
    result = replay(config, [path], out, as_json=True)
    assert result.errors == []
    hits: Hits = {}
    for line in out.getvalue().splitlines():
        hit = json.loads(line)
        hits.setdefault(hit["line_no"], []).append((hit["rule"], hit["fields"]))
    return hits


def replay_forms(config: Config, name: str) -> list[Hits]:
    """The file replayed as it is and, for sshd-journal, in the journal source's form."""
    path = FAIL2BAN / name
    forms = [replay_hits(config, path)]
    if name == "sshd-journal":
        with tempfile.TemporaryDirectory() as tmp:
            stripped = Path(tmp) / name
            text = path.read_text(encoding="utf-8")
            stripped.write_text("\n".join(map(journal_form, text.splitlines())) + "\n",
                                encoding="utf-8")
            forms.append(replay_hits(config, stripped))
    return forms


@dataclass
class Score:
    """Recall and false positives on one fail2ban file."""

    positives: int = 0
    caught: int = 0
    uncovered: int = 0
    negatives: int = 0
    false_positives: int = 0
    expected_warnings: int = 0

    @property
    def recall(self) -> float:
        """Caught / covered positives."""
        covered = self.positives - self.uncovered
        return self.caught / covered if covered else 1.0


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(REPO / "rules.example.toml", environ={})


def _severities(config: Config) -> dict[str, str]:
    return {r.id: r.severity for r in config.rules}


def score_file(config: Config, name: str) -> tuple[Score, list[str]]:
    """Replay one fail2ban file and judge every annotated line; the score and the problems."""
    forms = replay_forms(config, name)
    severity = _severities(config)
    score, problems = Score(), []
    for item in annotated_lines(FAIL2BAN / name):
        if item.expect.get("match"):
            score.positives += 1
            if item.uncovered_kind() is not None:
                score.uncovered += 1
                continue
            for hits in forms:
                ips = [fields.get("ip") for _, fields in hits.get(item.line_no, [])]
                if item.host is None or item.host not in ips:
                    problems.append(f"{name}:{item.line_no}: missed (want ip {item.host}, "
                                    f"got {ips}): {item.text}")
                    break
            else:
                score.caught += 1
        else:
            score.negatives += 1
            loud = {rule for hits in forms for rule, _ in hits.get(item.line_no, [])
                    if severity[rule] != "info"}
            if not loud:
                continue
            if any(re.search(pat, item.text) for pat in EXPECTED_WARNINGS):
                score.expected_warnings += 1
                continue
            score.false_positives += 1
            problems.append(f"{name}:{item.line_no}: \"match\": false, but {sorted(loud)} hit: "
                            f"{item.text}")
    return score, problems


def test_annotations_are_parsed() -> None:
    """The parser finds the annotated lines (a guard against silently testing nothing)."""
    counts = {name: sum(1 for _ in annotated_lines(FAIL2BAN / name)) for name in FAIL2BAN_FILES}
    assert counts["sshd"] > 150
    assert counts["sshd-journal"] > 120
    assert min(counts.values()) >= 9
    first = next(annotated_lines(FAIL2BAN / "sshd"))
    assert first.host == "192.030.0.6"
    assert "PAM: Authentication failure for myhlj1374" in first.text


@pytest.mark.parametrize("name", FAIL2BAN_FILES)
def test_fail2ban_recall_and_false_positives(config: Config, name: str) -> None:
    """100% of the covered "match": true lines with the right ip; no unexpected loud hit."""
    score, problems = score_file(config, name)
    assert problems == []
    assert score.recall == 1.0
    assert score.caught > 0


def test_uncovered_kinds_really_are_missed(config: Config) -> None:
    """Each entry of UNCOVERED is still needed: its lines give no hit with the annotated ip.

    If a rule learns to catch one, this fails: move the kind out of the list.
    """
    matcher = Matcher(config.rules)
    seen: Counter[str] = Counter()
    for name in FAIL2BAN_FILES:
        for item in annotated_lines(FAIL2BAN / name):
            if item.expect.get("match") and (kind := item.uncovered_kind()) is not None:
                seen[kind] += 1
                ips = [f.get("ip") for _, f in matcher.match_text(item.text)]
                assert item.host is None or item.host not in ips, item.text
    assert set(seen) == set(UNCOVERED)


def main() -> None:
    """Print the figures for docs/rules.md."""
    config = load_config(REPO / "rules.example.toml", environ={})
    print("| file | positives | uncovered | caught | recall | negatives | loud by design "
          "| false positives |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in FAIL2BAN_FILES:
        s, problems = score_file(config, name)
        print(f"| {name} | {s.positives} | {s.uncovered} | {s.caught} | {s.recall:.0%} "
              f"| {s.negatives} | {s.expected_warnings} | {s.false_positives} |")
        for problem in problems:
            print("   ", problem)


if __name__ == "__main__":
    main()
