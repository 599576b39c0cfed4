"""Load, validate and freeze the TOML configuration.

``load_config(path)`` reads the main file and its ``include`` drop-ins, checks
everything once and returns a frozen :class:`Config`, or raises
:class:`~logwatch.errors.ConfigError` listing every problem, one line each, in the
form ``logwatch.toml:31: rules[2] "ssh-bruteforce": to: unknown destination "oncal"``.
"""

from __future__ import annotations

import glob
import math
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import regex

from logwatch.config.document import Document, Loc, locate_lines, read_toml
from logwatch.config.model import (
    DEFAULT_BATCH_WAIT,
    DEFAULT_RESCAN_INTERVAL,
    DEFAULT_TELEGRAM_API,
    MAX_BATCH_WAIT,
    MAX_RETRY_WAIT_LIMIT,
    Config,
    ConsoleDestination,
    Destination,
    DiscordDestination,
    JournalSource,
    Settings,
    SourceConfig,
    StartAt,
    Storm,
    TelegramDestination,
)
from logwatch.config.secrets import read_secret, secret_value_problem
from logwatch.durations import parse_duration
from logwatch.errors import ConfigError
from logwatch.fleet.settings import DEFAULT_TIMEOUT, FleetSettings, check_namespace, check_url
from logwatch.rules import (
    DEFAULT_MATCH_TIMEOUT,
    RULE_ID,
    Dedup,
    FleetThreshold,
    Rule,
    RuleTest,
    Threshold,
    check_severity,
    compile_pattern,
)
from logwatch.secret import Secret
from logwatch.template import BUILTIN_FIELDS, Template, parse_template, unknown_fields

T = TypeVar("T")
D = TypeVar("D")


# ---------------------------------------------------------------------------
# Loading


#: "pack" is a rule pack's own description (logwatch/packs/): read by logwatch.packs, not here
_TOP_KEYS = {"logwatch", "destinations", "sources", "rules", "pack", "metrics", "fleet"}


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the config at ``path`` and its includes; raise ``ConfigError``."""
    env = os.environ if environ is None else environ
    main = Path(path)
    problems: list[str] = []
    warnings: list[str] = []
    loaded = read_toml(main, problems)
    if loaded is None:
        raise ConfigError(problems)
    data, text = loaded
    doc = Document(main, locate_lines(text), problems, warnings)
    settings = _settings(doc, data.get("logwatch", {}))
    metrics_listen = _metrics_listen(doc, data.get("metrics", {}))
    parts = _Parts()
    for d, content in [(doc, data), *_read_includes(doc, data.get("logwatch", {}))]:
        parts.add(d, content, env)
    if not parts.declared:
        parts.destinations["console"] = ConsoleDestination("console")
        parts.declared.add("console")
    fleet = _fleet(doc, data["fleet"], env) if "fleet" in data else None
    rules = _rules(parts.raw_rules, parts.declared, parts.sources)
    for rule in rules:
        if rule.fleet is not None and "fleet" not in data:
            problems.append(f"{rule.describe()}: fleet: needs a [fleet] table (the Redis the "
                            "hosts share)")
    if problems:
        raise ConfigError(problems)
    return Config(main, settings, parts.destinations, parts.sources, tuple(rules),
                  tuple(warnings), metrics_listen, fleet)


def _read_includes(doc: Document, table: Any) -> list[tuple[Document, dict[str, Any]]]:
    out = []
    for inc in _includes(doc, table if isinstance(table, dict) else {}):
        if (more := read_toml(inc, doc.problems)) is not None:
            inc_doc = Document(inc, locate_lines(more[1]), doc.problems, doc.warnings)
            for top in ("logwatch", "metrics", "fleet"):
                if top in more[0]:
                    inc_doc.problem((top,), "", f"[{top}] belongs in the main config only")
            out.append((inc_doc, more[0]))
    return out


@dataclass
class _Parts:
    """Destinations, sources and raw rules gathered from the main file and its includes."""

    destinations: dict[str, Destination] = field(default_factory=dict)
    #: destinations defined, even with errors: a broken one causes no cascade of "unknown"
    declared: set[str] = field(default_factory=set)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    raw_rules: list[tuple[Document, int, dict[str, Any]]] = field(default_factory=list)

    def add(self, doc: Document, content: dict[str, Any], env: Mapping[str, str]) -> None:
        for key in content.keys() - _TOP_KEYS:
            doc.problem((key,), "", f"unknown top-level key {key!r} (expected one of: "
                        f"{', '.join(sorted(_TOP_KEYS))})")
        for name, table in _tables(doc, content, "destinations"):
            if name in self.declared:
                doc.problem(("destinations", name), "", f'destination "{name}" is defined twice')
            elif (dest := _destination(doc, name, table, env)) is not None:
                self.destinations[name] = dest
            self.declared.add(name)
        for name, table in _tables(doc, content, "sources"):
            source = _source(doc, name, table)
            # packs that read the same log each define it: the same definition is no conflict
            if name in self.sources and self.sources[name] != source:
                doc.problem(("sources", name), "", f'source "{name}" is defined twice')
            elif name not in self.sources:
                self.sources[name] = source
        rules = content.get("rules", [])
        if isinstance(rules, list):
            self.raw_rules.extend((doc, i, r) for i, r in enumerate(rules))
        else:
            doc.problem(("rules",), "", "rules: use [[rules]] tables")


def _tables(
    doc: Document, content: Mapping[str, Any], key: str,
) -> list[tuple[str, dict[str, Any]]]:
    section = content.get(key, {})
    if not isinstance(section, dict):
        doc.problem((key,), "", f"{key}: expected [{key}.NAME] tables")
        return []
    out = []
    for name, table in section.items():
        if isinstance(table, dict):
            out.append((name, table))
        else:
            doc.problem((key, name), "", f"{key}.{name}: expected a table, got {table!r}")
    return out


def _includes(doc: Document, table: Mapping[str, Any]) -> list[Path]:
    patterns = doc.get(table, ("logwatch",), "", "include", _str_list, ())
    found: list[Path] = []
    for pattern in patterns:
        full = os.path.join(doc.path.parent, os.path.expanduser(pattern))
        found.extend(Path(p) for p in sorted(glob.glob(full)) if Path(p) != doc.path)
    return found


def _settings(doc: Document, table: Any) -> Settings:
    loc: Loc = ("logwatch",)
    if not isinstance(table, dict):
        doc.problem(loc, "", "[logwatch] must be a table")
        table = {}
    known = {"state_dir", "hostname", "start_at", "include", "ignore", "max_line_length",
             "poll_interval", "inotify", "drain_timeout", "failing_after", "match_timeout", "storm",
             "max_retry_wait", "rescan_interval", "batch_wait"}
    _unknown_keys(doc, loc, "", table, known)
    default_state = os.environ.get("STATE_DIRECTORY", "/var/lib/logwatch").split(":")[0]
    storm_table = doc.get(table, loc, "", "storm", _table, {})
    return Settings(
        state_dir=doc.get(table, loc, "", "state_dir", _path, Path(default_state)),
        hostname=doc.get(table, loc, "", "hostname", _nonempty_str, socket.gethostname()),
        start_at=doc.get(table, loc, "", "start_at", _start_at, "end"),
        ignore=doc.get(table, loc, "", "ignore", _pattern_list, ()),
        max_line_length=doc.get(table, loc, "", "max_line_length", _positive_int, 65536),
        poll_interval=doc.get(table, loc, "", "poll_interval", _positive_duration, 1.0),
        use_inotify=doc.get(table, loc, "", "inotify", _bool, True),
        drain_timeout=doc.get(table, loc, "", "drain_timeout", parse_duration, 10.0),
        failing_after=doc.get(table, loc, "", "failing_after", parse_duration, 600.0),
        match_timeout=doc.get(table, loc, "", "match_timeout", _positive_duration,
                              DEFAULT_MATCH_TIMEOUT),
        storm=_storm(doc, storm_table),
        max_retry_wait=doc.get(table, loc, "", "max_retry_wait", _retry_wait, 3600.0),
        rescan_interval=doc.get(table, loc, "", "rescan_interval", _positive_duration,
                                DEFAULT_RESCAN_INTERVAL),
        batch_wait=doc.get(table, loc, "", "batch_wait", _batch_wait, DEFAULT_BATCH_WAIT),
    )


def _metrics_listen(doc: Document, table: Any) -> tuple[str, int] | None:
    if not isinstance(table, dict):
        doc.problem(("metrics",), "", "[metrics] must be a table")
        return None
    _unknown_keys(doc, ("metrics",), "metrics: ", table, {"listen"})
    return doc.get(table, ("metrics",), "metrics: ", "listen", parse_listen, None)


def _storm(doc: Document, table: Mapping[str, Any]) -> Storm:
    loc: Loc = ("logwatch", "storm")
    _unknown_keys(doc, loc, "storm: ", table, {"rate", "per", "digest_every", "top"})
    return Storm(
        rate=doc.get(table, loc, "storm: ", "rate", _positive_int, 20),
        per=doc.get(table, loc, "storm: ", "per", _positive_duration, 60.0),
        digest_every=doc.get(table, loc, "storm: ", "digest_every", _positive_duration, 300.0),
        top=doc.get(table, loc, "storm: ", "top", _positive_int, 10),
    )


def _fleet(doc: Document, table: Any, env: Mapping[str, str]) -> FleetSettings | None:
    """The ``[fleet]`` table (main config only); the URL and password stay secrets."""
    loc: Loc = ("fleet",)
    subject = "fleet: "
    if not isinstance(table, dict):
        doc.problem(loc, "", "[fleet] must be a table")
        return None
    _unknown_keys(doc, loc, subject, table, {"url", "url_file", "password_file", "namespace",
                                              "timeout"})
    url = _fleet_url(doc, loc, subject, table, env)
    if url is not None:
        try:
            check_url(url.reveal())
        except ValueError as exc:
            doc.problem((*loc, "url"), subject, f"url: {exc} ({url.origin})")
            url = None
    password = None
    if "password_file" in table:
        password = read_secret(doc, loc, subject, {"password_file": table["password_file"]},
                               "password", env)
    namespace = doc.get(table, loc, subject, "namespace", check_namespace, "logwatch")
    timeout = doc.get(table, loc, subject, "timeout", _positive_duration, DEFAULT_TIMEOUT)
    if url is None:
        return None
    return FleetSettings(url, password, namespace, min(timeout, 10.0))


def _fleet_url(doc: Document, loc: Loc, subject: str, table: Mapping[str, Any],
               env: Mapping[str, str]) -> Secret | None:
    raw = table.get("url")
    if isinstance(raw, str) and "${" not in raw and "@" not in raw:
        return Secret(raw, "inline")  # no credentials in it: nothing to warn about
    return read_secret(doc, loc, subject,
                       {k: table[k] for k in ("url", "url_file") if k in table}, "url", env)


def _destination(
    doc: Document, name: str, table: dict[str, Any], env: Mapping[str, str]
) -> Destination | None:
    loc: Loc = ("destinations", name)
    subject = f'destination "{name}": '
    kind = table.get("type")
    common = {"type", "min_severity"}
    min_sev = doc.get(table, loc, subject, "min_severity", check_severity, "info")
    if kind == "console":
        _unknown_keys(doc, loc, subject, table, common | {"format"})
        fmt = doc.get(table, loc, subject, "format", _choice("text", "json"), "text")
        return ConsoleDestination(name, min_severity=min_sev, format=fmt)  # type: ignore[arg-type]
    if kind == "discord":
        _unknown_keys(doc, loc, subject, table, common | {"url", "url_file", "thread_id",
                                                          "username"})
        url = read_secret(doc, loc, subject, table, "url", env)
        if url is not None and not _is_http_url(url.reveal()):
            doc.problem((*loc, "url"), subject, f"url: expected an http(s) URL ({url.origin})")
        thread = doc.get(table, loc, subject, "thread_id", _int, None)
        user = doc.get(table, loc, subject, "username", _nonempty_str, None)
        if url is None:
            return None
        return DiscordDestination(name, url, min_severity=min_sev, thread_id=thread, username=user)
    if kind == "telegram":
        _unknown_keys(doc, loc, subject, table, common | {"token", "token_file", "chat_id",
                                                          "thread_id", "api_url"})
        token = read_secret(doc, loc, subject, table, "token", env)
        if "chat_id" not in table:
            doc.problem(loc, subject, "chat_id: missing (find it with `logwatch telegram-chats "
                        f"{name}`)")
        chat = doc.get(table, loc, subject, "chat_id", _chat_id, 0)
        thread = doc.get(table, loc, subject, "thread_id", _int, None)
        api = doc.get(table, loc, subject, "api_url", _http_url, DEFAULT_TELEGRAM_API)
        if token is None:
            return None
        return TelegramDestination(name, token, chat, min_severity=min_sev, thread_id=thread,
                                   api_url=api.rstrip("/"))
    doc.problem((*loc, "type"), subject,
                f"type: expected \"console\", \"discord\" or \"telegram\", got {kind!r}")
    return None


def _source(doc: Document, name: str, table: dict[str, Any]) -> SourceConfig:
    loc: Loc = ("sources", name)
    subject = f'source "{name}": '
    _unknown_keys(doc, loc, subject, table, {"files", "journal", "silent_after"})
    files = doc.get(table, loc, subject, "files", _str_list, ())
    journal = None
    if "journal" in table:
        jt = table["journal"]
        if jt is True or jt == {}:
            journal = JournalSource()
        elif isinstance(jt, dict):
            _unknown_keys(doc, (*loc, "journal"), subject + "journal: ", jt, {"match", "units"})
            journal = JournalSource(
                match=doc.get(jt, (*loc, "journal"), subject, "match", _str_list, ()),
                units=doc.get(jt, (*loc, "journal"), subject, "units", _str_list, ()),
            )
        elif jt is not False:
            doc.problem((*loc, "journal"), subject,
                        f"journal: expected a table or true, got {jt!r}")
    if not files and journal is None:
        doc.problem(loc, subject, "give files = [...] and/or journal = { ... }")
    silent = doc.get(table, loc, subject, "silent_after", _positive_duration, None)
    return SourceConfig(name, files, journal, silent)


_RULE_KEYS = {"id", "source", "match", "ignore", "severity", "to", "title", "message", "threshold",
              "dedup", "resolve", "quiet", "tests", "enabled", "fleet"}


def _rules(
    raw: list[tuple[Document, int, dict[str, Any]]],
    destinations: set[str],
    sources: Mapping[str, SourceConfig],
) -> list[Rule]:
    seen: dict[str, str] = {}
    out: list[Rule] = []
    for doc, index, table in raw:
        rid = table.get("id")
        if isinstance(rid, str) and rid in seen:
            doc.problem(("rules", index, "id"), f'rules[{index}] "{rid}": ',
                        f"id: duplicate of the rule at {seen[rid]}")
            continue
        if isinstance(rid, str) and rid:
            seen[rid] = doc.where(("rules", index))
        rule = _rule(doc, index, table, destinations, sources)
        if rule is not None and table.get("enabled", True):
            out.append(rule)
    return out


def _rule(
    doc: Document, index: int, table: dict[str, Any],
    destinations: set[str], sources: Mapping[str, SourceConfig],
) -> Rule | None:
    loc: Loc = ("rules", index)
    rid = table.get("id")
    subject = f'rules[{index}] "{rid}": ' if isinstance(rid, str) and rid else f"rules[{index}]: "
    before = len(doc.problems)
    _unknown_keys(doc, loc, subject, table, _RULE_KEYS)
    if not isinstance(rid, str) or not RULE_ID.fullmatch(rid):
        doc.problem((*loc, "id"), subject, "id: missing or empty" if not rid else
                    f"id: use letters, digits, '.', '_' and '-', got {rid!r}")
    if "match" not in table:
        doc.problem(loc, subject, "match: missing (the rule's regex)")
    pattern = doc.get(table, loc, subject, "match", _pattern, None)
    # with a broken pattern the groups are unknown: don't pile "unknown field" on top
    groups = frozenset(pattern.groupindex) if pattern is not None else None
    source = doc.get(table, loc, subject, "source", _nonempty_str, None)
    if source is not None and source not in sources:
        doc.problem((*loc, "source"), subject, f'source: unknown source "{source}"'
                    + _known(sources))
    to = doc.get(table, loc, subject, "to", _str_list, tuple(sorted(destinations)))
    for name in to:
        if name not in destinations:
            doc.problem((*loc, "to"), subject, f'to: unknown destination "{name}"'
                        + _known(destinations))
    title = _template(doc, loc, subject, table, "title", "{rule} on {host}", groups)
    message = _template(doc, loc, subject, table, "message", "{line}", groups)
    threshold = _threshold(doc, loc, subject, table.get("threshold"), groups)
    dedup = _dedup(doc, loc, subject, table.get("dedup"), groups)
    fleet = _fleet_threshold(doc, loc, subject, table.get("fleet"), groups)
    if pattern is None or len(doc.problems) > before:
        return None
    return Rule(
        id=rid,  # type: ignore[arg-type]  # checked above
        pattern=pattern,
        severity=doc.get(table, loc, subject, "severity", check_severity, "warning"),
        title=title,
        message=message,
        to=to,
        source=source,
        ignore=doc.get(table, loc, subject, "ignore", _pattern_list, ()),
        threshold=threshold,
        dedup=dedup,
        resolve=doc.get(table, loc, subject, "resolve", _pattern, None),
        quiet=doc.get(table, loc, subject, "quiet", _positive_duration, None),
        tests=_tests(doc, loc, subject, table.get("tests", [])),
        fleet=fleet,
        where=doc.where(loc),
    )


def _known(names: Iterable[str]) -> str:
    names = sorted(names)
    return f" (known: {', '.join(names)})" if names else " (none is defined)"


def _template(
    doc: Document, loc: Loc, subject: str, table: Mapping[str, Any], key: str, default: str,
    groups: frozenset[str] | None,
) -> Template:
    tpl = doc.get(table, loc, subject, key, lambda v: parse_template(_str(v)),
                  parse_template(default))
    for name in unknown_fields(tpl, groups) if groups is not None else ():
        doc.problem((*loc, key), subject, f"{key}: unknown field {{{name}}} (the pattern's groups: "
                    f"{', '.join(sorted(groups or ())) or 'none'}; built in: "
                    f"{', '.join(sorted(BUILTIN_FIELDS))})")
    return tpl


def _threshold(
    doc: Document, loc: Loc, subject: str, raw: Any, groups: frozenset[str] | None
) -> Threshold | None:
    if raw is None:
        return None
    sub = subject + "threshold: "
    if not isinstance(raw, dict):
        doc.problem((*loc, "threshold"), sub, "expected { count = N, within = \"10m\", by = ... }")
        return None
    _unknown_keys(doc, (*loc, "threshold"), sub, raw, {"count", "within", "by"})
    tloc = (*loc, "threshold")
    count = doc.get(raw, tloc, sub, "count", _positive_int, 1)
    within = doc.get(raw, tloc, sub, "within", _positive_duration, 0.0)
    if "within" not in raw:
        doc.problem(tloc, sub, "within: missing (a duration such as \"10m\")")
    by = _template(doc, tloc, sub, raw, "by", "", groups)
    return Threshold(count, within, by)


def _dedup(
    doc: Document, loc: Loc, subject: str, raw: Any, groups: frozenset[str] | None
) -> Dedup | None:
    if raw is None:
        return None
    sub = subject + "dedup: "
    if not isinstance(raw, dict):
        doc.problem((*loc, "dedup"), sub, "expected { by = \"{ip}\", for = \"1h\" }")
        return None
    dloc = (*loc, "dedup")
    _unknown_keys(doc, dloc, sub, raw, {"by", "for"})
    if "for" not in raw:
        doc.problem(dloc, sub, "for: missing (a duration such as \"1h\")")
    window = doc.get(raw, dloc, sub, "for", _positive_duration, 0.0)
    return Dedup(_template(doc, dloc, sub, raw, "by", "", groups), window)


def _fleet_threshold(
    doc: Document, loc: Loc, subject: str, raw: Any, groups: frozenset[str] | None
) -> FleetThreshold | None:
    if raw is None:
        return None
    sub = subject + "fleet: "
    floc = (*loc, "fleet")
    if not isinstance(raw, dict):
        doc.problem(floc, sub, "expected { hosts = 10, within = \"10m\", by = \"{ip}\" }")
        return None
    _unknown_keys(doc, floc, sub, raw, {"hosts", "within", "by"})
    for key, example in (("hosts", "a number of hosts such as 10"),
                         ("within", "a duration such as \"10m\"")):
        if key not in raw:
            doc.problem(floc, sub, f"{key}: missing ({example})")
    hosts = doc.get(raw, floc, sub, "hosts", _positive_int, 1)
    within = doc.get(raw, floc, sub, "within", _positive_duration, 0.0)
    by = _template(doc, floc, sub, raw, "by", "", groups)
    if "host" in by.fields:
        doc.problem((*floc, "by"), sub, "by: {host} would make every host's key different")
    return FleetThreshold(hosts, within, by)


def _tests(doc: Document, loc: Loc, subject: str, raw: Any) -> tuple[RuleTest, ...]:
    if not isinstance(raw, list):
        doc.problem((*loc, "tests"), subject, "tests: use [[rules.tests]] tables")
        return ()
    out = []
    for i, case in enumerate(raw):
        tloc = (*loc, "tests", i)
        sub = f"{subject}tests[{i}]: "
        if not isinstance(case, dict) or not isinstance(case.get("line"), str):
            doc.problem(tloc, sub, "line: missing (the log line to try)")
            continue
        _unknown_keys(doc, tloc, sub, case, {"line", "match", "fields"})
        fields = doc.get(case, tloc, sub, "fields", _str_map, None)
        out.append(RuleTest(case["line"], doc.get(case, tloc, sub, "match", _bool, True), fields))
    return tuple(out)


def _unknown_keys(
    doc: Document, loc: Loc, subject: str, table: Mapping[str, Any], known: set[str]
) -> None:
    for key in sorted(table.keys() - known):
        doc.problem((*loc, key), subject,
                    f"unknown key {key!r} (known: {', '.join(sorted(known))})")


# ---------------------------------------------------------------------------
# Converters: each returns the value or raises ValueError saying what was expected


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _nonempty_str(value: Any) -> str:
    if not _str(value).strip():
        raise ValueError("must not be empty")
    return str(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table of strings, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _positive_int(value: Any) -> int:
    if _int(value) <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return int(value)


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return seconds


def _path(value: Any) -> Path:
    return Path(os.path.expanduser(_nonempty_str(value)))


def _start_at(value: Any) -> StartAt:
    if value == "end":
        return "end"
    if value == "beginning":
        return "beginning"
    raise ValueError(f'expected "end" or "beginning", got {value!r}')


def _choice(*options: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(map(repr, options))}, got {value!r}")
        return str(value)

    return convert


def _chat_id(value: Any) -> int | str:
    if isinstance(value, str) and value.startswith("@") and len(value) > 1:
        return value
    if isinstance(value, str) and regex.fullmatch(r"-?\d+", value):
        return int(value)
    return _int(value)


def _http_url(value: Any) -> str:
    if not _is_http_url(_str(value)):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return str(value)


def _is_http_url(text: str) -> bool:
    """``http(s)://host...`` that the HTTP client will accept (no space or control character)."""
    if not text.startswith(("http://", "https://")) or secret_value_problem(text):
        return False
    host = text.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    return bool(host.split(":", 1)[0] or host.startswith("["))


def _retry_wait(value: Any) -> float:
    seconds = _positive_duration(value)
    if not math.isfinite(seconds) or not 1.0 <= seconds <= MAX_RETRY_WAIT_LIMIT:
        raise ValueError(f'expected a duration from "1s" to "1d", got {value!r}')
    return seconds


def _batch_wait(value: Any) -> float:
    seconds = parse_duration(value)
    if not 0.0 <= seconds <= MAX_BATCH_WAIT:
        raise ValueError(f'expected a duration from "0s" to "{MAX_BATCH_WAIT:g}s", got {value!r}')
    return seconds


def parse_listen(value: Any) -> tuple[str, int]:
    """``"127.0.0.1:9101"``, ``"[::1]:9101"`` or ``":9101"`` (all addresses) -> (host, port)."""
    if not isinstance(value, str):
        raise ValueError(f'expected "HOST:PORT", got {value!r}')
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'expected "HOST:PORT" with a port from 1 to 65535, got {value!r}')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f'write an IPv6 address in brackets ("[::1]:9101"), got {value!r}')
    return host or "0.0.0.0", int(port)  # noqa: S104 - ":9101" asks for every address


def _pattern(value: Any) -> regex.Pattern[str]:
    return compile_pattern(_str(value))


def _pattern_list(value: Any) -> tuple[regex.Pattern[str], ...]:
    return tuple(compile_pattern(p) for p in _str_list(value))
