"""Coverage of the shipped rule packs on real logs nobody on this project wrote.

    python bench/coverage.py                 # markdown tables
    python bench/coverage.py --json          # the figures, for tests/packs/test_packs.py
    python bench/coverage.py --no-fail2ban   # skip fail2ban-regex even where it is installed

For every annotated file of ../shared/corpus/fail2ban/ that a pack claims
(``fail2ban = [...]`` in its ``[pack]`` table), per fail2ban mode: the lines
annotated ``"match": true``, those logwatch hits, those hit with the annotated
address (``ip``), of which those whose address came from an earlier line (a rule
with ``context``: events that span lines, done by logwatch itself), and false
alarms (a warning or critical hit on a ``"match": false`` line); beside
it fail2ban's own count (``fail2ban-regex FILE FILTER[mode=...]``). Then loghub's
template check: each rule hits exactly the lines of the event templates meant.

logwatch is driven through ``logwatch test --json`` on a temporary config that
enables every pack (``packs = [...]``), as a user would run it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from logwatch import packs

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LOGWATCH_CORPUS") or REPO.parent / "shared" / "corpus")
FAIL2BAN = CORPUS / "fail2ban"
LOGHUB = CORPUS / "loghub"
LOUD = {"warning", "critical"}

#: loghub: which event templates each rule is meant to catch (every other rule: none)
LOGHUB_EVENTS: dict[str, dict[str, set[str]]] = {
    "OpenSSH_2k.log": {
        # Failed password/none, Invalid user, "message repeated", disconnect 3 (Auth fail)
        # and 14 (no more authentication methods)
        "ssh-auth-failure": {"E6", "E7", "E8", "E9", "E10", "E13", "E14"},
        # Connection closed [preauth], no identification string, Bye Bye / Closed due to user
        # request [preauth]
        "ssh-aggressive": {"E2", "E3", "E24", "E25"},
        "ssh-login": {"E1"},
        # pam_unix(sshd:auth): authentication failure ... rhost=HOST [user=USER]
        "ssh-pam-failure": {"E19", "E20"},
        # Disconnecting: Too many authentication failures (address on an earlier line)
        "ssh-auth-failure-noaddr": {"E4", "E5"},
    },
    "Linux_2k.log": {
        # sshd(pam_unix)[PID]: authentication failure; ... rhost=HOST (E15 has an empty rhost)
        "pam-auth-failure": {"E16", "E17", "E18", "E19"},
        # gdm(pam_unix)[PID]: authentication failure; ... tty=:0 ruser= rhost= (a local login)
        "pam-local-failure": {"E15"},
        # logrotate: ALERT exited abnormally with [1]
        "logrotate-failed": {"E8"},
    },
    # an Apache 2.0 error log (mod_jk, directory index forbidden, no auth): no rule hits it
    "Apache_2k.log": {},
}

#: "match": false lines that a warning rule hits on purpose, each with why (shown apart)
BY_DESIGN = {
    # the pre-0.99.2.0 Linux-PAM format (2005) that fail2ban dropped; loghub's Linux
    # sample is such a system, so pam-auth-failure keeps catching it
    r"\w\(pam_unix\)\[\d+\]: authentication failure; .* rhost=\S": "old Linux-PAM format",
    # fail2ban's "false": do not ban the client, the backend is down; that is what
    # nginx-upstream-failure reports (fail2ban's "fallback" mode only)
    r"connect\(\) failed \(111: Connection refused\) while connecting to upstream":
        "a backend failure, not the client's",
}

CONFIG = """\
[logwatch]
state_dir = "{state}"
packs = {packs}

[destinations.oncall]
type = "console"
min_severity = "warning"

[destinations.audit]
type = "console"
"""


# ---------------------------------------------------------------------------
# fail2ban's annotations


@dataclass(frozen=True, slots=True)
class Annotated:
    """One annotated line: what fail2ban expects, and in which of its modes it is judged."""

    line_no: int
    text: str
    expect: Mapping[str, Any]
    modes: tuple[str, ...]

    @property
    def host(self) -> str | None:
        """The address fail2ban must extract."""
        value = self.expect.get("host") or self.expect.get("ip4") or self.expect.get("ip6")
        return str(value) if value is not None else None


_DIRECTIVE = re.compile(r"^#+ ?(failJSON|filterOptions|fileOptions|addFILE):(.+)$")
_CONDITION = re.compile(r"""^\s*(name|opts\.get\('(\w+)'\))\s*(==|!=)\s*'([^']*)'\s*$""")


def condition(expr: str, name: str, opts: Mapping[str, Any]) -> bool:
    """fail2ban's ``constraint``/``test.condition`` (the few forms its test logs use)."""
    m = _CONDITION.match(expr.replace('"', "'"))
    if m is None:
        raise ValueError(f"unsupported fail2ban condition: {expr}")
    value = name if m[1] == "name" else opts.get(m[2])
    return (value == m[4]) if m[3] == "==" else (value != m[4])


def annotated(path: Path) -> Iterator[Annotated]:
    """The annotated lines of a fail2ban test log, as its samplestestcase reads them.

    ``# failJSON: {...}`` applies to the very next line; ``# filterOptions:``
    starts a block judged with each of its option sets (mode "normal" by default).
    """
    name = path.name
    options: list[dict[str, Any]] = [{}]
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not (m := _DIRECTIVE.match(line)):
            continue
        data = json.loads(m[2])
        if m[1] == "filterOptions":
            sets = data if isinstance(data, list) else [data]
            options = [o for o in sets
                       if not o.get("test.condition") or condition(o["test.condition"], name, o)]
            continue
        if m[1] != "failJSON" or number >= len(lines):
            continue
        text = lines[number]
        number += 1
        constraint = data.get("constraint")
        modes = tuple(dict.fromkeys(
            o.get("mode") or "normal" for o in options
            if not constraint or condition(constraint, name, o)))
        if modes:
            yield Annotated(number, text, data, modes)


# ---------------------------------------------------------------------------
# Running logwatch


Hits = dict[int, list[tuple[str, dict[str, str]]]]


def make_config(tmp: Path) -> Path:
    """A config in ``tmp`` that enables every shipped pack."""
    (tmp / "state").mkdir(exist_ok=True)
    config = tmp / "logwatch.toml"
    config.write_text(CONFIG.format(state=tmp / "state", packs=json.dumps(packs.names())),
                      encoding="utf-8")
    return config


def logwatch_test(config: Path, path: Path) -> tuple[Hits, float]:
    """``logwatch test --json``: line number -> [(rule, fields)], and the seconds it took."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "logwatch", "test", "-c", str(config), "--json",
                           str(path)], capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"logwatch test failed on {path}: {done.stderr.strip()}")
    hits: Hits = {}
    for line in done.stdout.splitlines():
        hit = json.loads(line)
        hits.setdefault(hit["line_no"], []).append((hit["rule"], hit["fields"]))
    return hits, time.perf_counter() - started


def journal_form(text: str) -> str:
    """sshd-journal lines are "HOST sshd[PID]: MSG"; the journal source gives "sshd[PID]: MSG"."""
    return text.split(" ", 1)[-1] if text.strip() and not text.startswith("#") else text


# ---------------------------------------------------------------------------
# Scoring


@dataclass
class Score:
    """One fail2ban file in one mode."""

    file: str
    mode: str
    positives: int = 0
    hits: int = 0
    right_ip: int = 0
    #: of right_ip: the address came from an earlier line (a rule's context)
    from_context: int = 0
    negatives: int = 0
    false_alarms: int = 0
    by_design: int = 0
    fail2ban: int | None = None
    misses: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """Hits with the right address on their own line, over the positives."""
        return self.right_ip / self.positives if self.positives else 1.0



def score(name: str, forms: list[Hits], severity: Mapping[str, str],
          linked: set[str]) -> list[Score]:
    """Judge every annotated line of ``name`` in each of its modes, on every form replayed."""
    scores: dict[str, Score] = {}
    for item in annotated(FAIL2BAN / name):
        for mode in item.modes:
            s = scores.setdefault(mode, Score(name, mode))
            if item.expect.get("match"):
                _positive(s, item, forms, linked)
            else:
                _negative(s, item, forms, severity)
    return [scores[m] for m in sorted(scores, key=lambda m: (m != "normal", m))]


def _positive(s: Score, item: Annotated, forms: list[Hits], linked: set[str]) -> None:
    s.positives += 1
    verdicts = []
    for hits in forms:
        own = hits.get(item.line_no, [])
        right = {rule for rule, f in own if f.get("ip") == item.host}
        if own and (item.host is None or (right and not right <= linked)):
            verdicts.append("ip")
        elif right:
            verdicts.append("context")
        elif own:
            verdicts.append("hit")
        else:
            verdicts.append("miss")
    worst = max(verdicts, key=["ip", "context", "hit", "miss"].index)
    s.hits += worst != "miss"
    s.right_ip += worst in ("ip", "context")
    s.from_context += worst == "context"
    if worst in ("hit", "miss"):
        s.misses.append(f"{item.line_no}: {worst} (want {item.host}): {item.text[:160]}")


def _negative(s: Score, item: Annotated, forms: list[Hits],
              severity: Mapping[str, str]) -> None:
    s.negatives += 1
    loud = sorted({rule for hits in forms for rule, _ in hits.get(item.line_no, [])
                   if severity.get(rule) in LOUD})
    if loud and any(re.search(p, item.text) for p in BY_DESIGN):
        s.by_design += 1
    elif loud:
        s.false_alarms += 1
        s.alarms.append(f"{item.line_no}: {loud}: {item.text[:160]}")


def severities() -> dict[str, str]:
    """Rule id -> severity, as the packs ship them."""
    return {rule: severity for pack in packs.all_packs()
            for rule, severity in pack.severities.items()}


def context_rules() -> set[str]:
    """The rules that take fields from an earlier line (``context``)."""
    return {rule["id"] for name in packs.names()
            for rule in tomllib.loads(packs.read_text(name)).get("rules", []) if "context" in rule}


def fail2ban_count(name: str, mode: str) -> int | None:
    """Lines fail2ban-regex matches on ``name`` with filter ``name[mode=MODE]``; None if absent."""
    tool = shutil.which("fail2ban-regex")
    filt = Path("/etc/fail2ban/filter.d") / f"{name.removesuffix('-journal')}.conf"
    if tool is None or not filt.exists():
        return None
    spec = f"{filt.with_suffix('')}[mode={mode}]" if mode != "normal" else str(filt)
    done = subprocess.run([tool, "-r", str(FAIL2BAN / name), spec], capture_output=True,
                          text=True, check=False, timeout=120)
    m = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched", done.stdout, re.M)
    return int(m[1]) if m else None


# ---------------------------------------------------------------------------
# loghub


def loghub_events(sample: str) -> dict[int, str]:
    """Line number -> event template id, from loghub's ``*_structured.csv``."""
    with (LOGHUB / f"{sample}_structured.csv").open(encoding="utf-8", newline="") as f:
        return {int(r["LineId"]): r["EventId"] for r in csv.DictReader(f)}


def loghub_rows(config: Path) -> list[dict[str, Any]]:
    """Per sample and rule: lines hit, lines of its templates, hits outside them, misses."""
    rows = []
    for sample, wanted in sorted(LOGHUB_EVENTS.items()):
        hits, _ = logwatch_test(config, LOGHUB / sample)
        events = loghub_events(sample) if wanted else {}
        by_rule: dict[str, set[int]] = {}
        for number, found in hits.items():
            for rule, _ in found:
                by_rule.setdefault(rule, set()).add(number)
        if not by_rule and not wanted:
            rows.append({"sample": sample, "rule": "(none)", "hits": 0, "template_lines": 0,
                         "extra": 0, "missing": 0})
        for rule in sorted(set(by_rule) | set(wanted)):
            templates = {n for n, e in events.items() if e in wanted.get(rule, set())}
            got = by_rule.get(rule, set())
            rows.append({"sample": sample, "rule": rule, "hits": len(got),
                         "template_lines": len(templates), "extra": len(got - templates),
                         "missing": len(templates - got)})
    return rows


# ---------------------------------------------------------------------------


def run(use_fail2ban: bool) -> dict[str, Any]:
    """Every figure of the report."""
    severity = severities()
    linked = context_rules()
    covered = sorted({f for p in packs.all_packs() for f in p.fail2ban
                      if (FAIL2BAN / f).exists()})
    results: list[Score] = []
    speed = {"lines": 0, "seconds": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(Path(tmp))
        for name in covered:
            forms = []
            texts = [(FAIL2BAN / name).read_text(encoding="utf-8", errors="replace")]
            if name.endswith("-journal"):
                journal = Path(tmp) / name
                journal.write_text("\n".join(map(journal_form, texts[0].splitlines())) + "\n",
                                   encoding="utf-8")
                texts.append(journal.read_text(encoding="utf-8"))
            for index, text in enumerate(texts):
                path = FAIL2BAN / name if index == 0 else Path(tmp) / name
                hits, seconds = logwatch_test(config, path)
                speed["lines"] += text.count("\n")
                speed["seconds"] += seconds
                forms.append(hits)
            for s in score(name, forms, severity, linked):
                if use_fail2ban:
                    s.fail2ban = fail2ban_count(name, s.mode)
                results.append(s)
        loghub = loghub_rows(config) if LOGHUB.exists() else []
    return {"files": [{**asdict(s), "recall": s.recall} for s in results],
            "loghub": loghub}


def print_markdown(report: Mapping[str, Any]) -> None:
    """The tables for docs/rules.md."""
    print("| fail2ban file | mode | annotated | hits | right address "
          "| of which from an earlier line | recall | false alarms (warning+) | loud by design "
          "| fail2ban-regex matched (whole file) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    total = {"normal": [0, 0]}
    for s in report["files"]:
        f2b = "-" if s["fail2ban"] is None else str(s["fail2ban"])
        print(f"| {s['file']} | {s['mode']} | {s['positives']} | {s['hits']} | {s['right_ip']} "
              f"| {s['from_context']} | {s['recall']:.0%} "
              f"| {s['false_alarms']} / {s['negatives']} | {s['by_design']} | {f2b} |")
        if s["mode"] == "normal":
            t = total["normal"]
            t[0] += s["positives"]
            t[1] += s["right_ip"]
    pos, ok = total["normal"]
    if pos:
        print(f"\nNormal mode, all files: {ok} of {pos} with the right address "
              f"({ok / pos:.1%}).")
    print("\n| loghub sample | rule | lines hit | template lines | outside templates | missed |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in report["loghub"]:
        print(f"| {r['sample']} | {r['rule']} | {r['hits']} | {r['template_lines']} "
              f"| {r['extra']} | {r['missing']} |")
    problems = [(s["file"], s["mode"], p) for s in report["files"]
                for p in s["misses"] + s["alarms"]]
    if problems:
        print("\nMissed lines and false alarms:\n")
        for name, mode, problem in problems:
            print(f"- {name} [{mode}] {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-fail2ban", action="store_true", help="do not run fail2ban-regex")
    args = parser.parse_args()
    if not FAIL2BAN.exists():
        print(f"coverage: {FAIL2BAN} is missing (the shared corpus)", file=sys.stderr)
        return 2
    report = run(use_fail2ban=not args.no_fail2ban)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_markdown(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
