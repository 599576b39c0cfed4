"""``logwatch check``: everything that can be verified before the daemon runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from logwatch.config import Config
from logwatch.matching import Matcher
from logwatch.rules import Rule, RuleTest


@dataclass
class CheckReport:
    """Failures (exit 1) and notes (worth reading, not fatal)."""

    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tests_run: int = 0


def check_config(config: Config) -> CheckReport:
    """Run every rule's tests and collect what deserves a word."""
    report = CheckReport(notes=list(config.warnings))
    if not config.rules and not config.sources:
        report.notes.append(f"{config.path}: no rules and no sources: this config watches "
                            "nothing (add [sources.NAME] and [[rules]], or include rule packs)")
    for rule in config.rules:
        matcher = Matcher([rule], ignore=config.settings.ignore,
                          timeout=config.settings.match_timeout)
        if not rule.tests:
            report.notes.append(f"{rule.describe()}: has no [[rules.tests]]; add a real line")
        for index, case in enumerate(rule.tests):
            report.tests_run += 1
            if (problem := run_rule_test(matcher, rule, case)) is not None:
                where = f"{case.where}: " if case.where else ""
                report.failures.append(f'{where}rule "{rule.id}": tests[{index}]: {problem}')
        report.notes.extend(f"{rule.describe()}: {note}" for note in matcher.notes())
    return report


def run_rule_test(matcher: Matcher, rule: Rule, case: RuleTest) -> str | None:
    """Why ``case`` fails for ``rule``, or ``None`` when it passes."""
    found = [fields for r, fields in matcher.match_text(case.line) if r.id == rule.id]
    if not case.match:
        return f"expected no match, but it matched: {case.line!r}" if found else None
    if not found:
        return f"expected a match, got none: {case.line!r}"
    unknown = sorted(set(case.fields or {}) - rule.groups)
    if unknown:  # a mistyped field name: say so, not "got None"
        return (f"fields: no field {', '.join(map(repr, unknown))} in the pattern "
                f"(its fields: {', '.join(sorted(rule.groups)) or 'none'})")
    wrong = {k: (v, found[0].get(k)) for k, v in (case.fields or {}).items()
             if found[0].get(k) != v}
    if wrong:
        detail = ", ".join(f"{k}: expected {want!r}, got {got!r}"
                           for k, (want, got) in wrong.items())
        return f"fields differ ({detail}) on {case.line!r}"
    return None
