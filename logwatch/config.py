"""Load, validate and freeze the TOML configuration.

``load_config(path)`` reads the main file and its ``include`` drop-ins, checks
everything once and returns a frozen :class:`Config`, or raises
:class:`~logwatch.errors.ConfigError` listing every problem, one line each, in the
form ``logwatch.toml:31: rules[2] "ssh-bruteforce": to: unknown destination "oncal"``.
"""

from __future__ import annotations

import glob
import os
import socket
import stat
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import regex

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

DEFAULT_CONFIG = "/etc/logwatch/logwatch.toml"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"
StartAt = Literal["end", "beginning"]
T = TypeVar("T")
D = TypeVar("D")


# ---------------------------------------------------------------------------
# The frozen result


@dataclass(frozen=True, slots=True)
class Storm:
    """Per-destination storm handling: above ``rate`` alerts per ``per`` seconds, send digests."""

    rate: int = 20
    per: float = 60.0
    digest_every: float = 300.0
    top: int = 10


@dataclass(frozen=True, slots=True)
class Settings:
    """The ``[logwatch]`` table."""

    state_dir: Path
    hostname: str
    start_at: StartAt = "end"
    ignore: tuple[regex.Pattern[str], ...] = ()
    max_line_length: int = 65536
    poll_interval: float = 1.0
    use_inotify: bool = True
    drain_timeout: float = 10.0
    failing_after: float = 600.0
    match_timeout: float = DEFAULT_MATCH_TIMEOUT
    storm: Storm = field(default_factory=Storm)


@dataclass(frozen=True, slots=True)
class ConsoleDestination:
    """Print alerts to standard output (the default when none is configured)."""

    name: str
    type: Literal["console"] = "console"
    min_severity: str = "info"
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True, slots=True)
class DiscordDestination:
    """A Discord webhook."""

    name: str
    url: Secret
    type: Literal["discord"] = "discord"
    min_severity: str = "info"
    thread_id: int | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class TelegramDestination:
    """A Telegram bot posting to one chat."""

    name: str
    token: Secret
    chat_id: int | str
    type: Literal["telegram"] = "telegram"
    min_severity: str = "info"
    thread_id: int | None = None
    api_url: str = DEFAULT_TELEGRAM_API


Destination = ConsoleDestination | DiscordDestination | TelegramDestination


@dataclass(frozen=True, slots=True)
class JournalSource:
    """Follow the systemd journal, filtered by ``journalctl`` matches and units."""

    match: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A ``[sources.NAME]`` table: file globs and/or a journal filter."""

    name: str
    files: tuple[str, ...] = ()
    journal: JournalSource | None = None
    silent_after: float | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, validated."""

    path: Path
    settings: Settings
    destinations: Mapping[str, Destination]
    sources: Mapping[str, SourceConfig]
    rules: tuple[Rule, ...]
    #: things that work but deserve a word (an inline secret, a rule with no literal)
    warnings: tuple[str, ...] = ()
    #: ``[fleet]``: coordinate with other hosts through Redis (None: this host alone)
    fleet: FleetSettings | None = None

    def rules_for(self, source: str) -> tuple[Rule, ...]:
        """The rules that read ``source``."""
        return tuple(r for r in self.rules if r.source in (None, source))


# ---------------------------------------------------------------------------
# Where things are in the TOML text, for error messages

_ARRAY_HEADER = regex.compile(r"\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE_HEADER = regex.compile(r"\s*\[\s*([^\]]+?)\s*\]")
_KEY = regex.compile(r"\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*(?:\.|=)")

Loc = tuple[str | int, ...]


def _dotted(name: str) -> list[str]:
    return [p.strip().strip("\"'") for p in name.split(".")]


def locate_lines(text: str) -> dict[Loc, int]:
    """Map table paths and keys to their line numbers: ``("rules", 2, "to") -> 31``."""
    lines: dict[Loc, int] = {}
    counters: dict[Loc, int] = {}
    current: Loc = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _ARRAY_HEADER.match(line):
            current = _resolve(_dotted(m[1]), counters)
            prefix, index = current[:-1], current[-1]
            counters[prefix] = int(index) + 1
            lines.setdefault(current, number)
        elif m := _TABLE_HEADER.match(line):
            current = _resolve(_dotted(m[1]), counters, array=False)
            lines.setdefault(current, number)
        elif m := _KEY.match(line):
            lines.setdefault((*current, m[1].strip("\"'")), number)
    return lines


def _resolve(names: list[str], counters: dict[Loc, int], *, array: bool = True) -> Loc:
    path: Loc = ()
    for i, name in enumerate(names):
        path = (*path, name)
        last = i == len(names) - 1
        if last and array:
            path = (*path, counters.get(path, 0))
        elif path in counters:  # a parent that is an array of tables: its latest element
            path = (*path, counters[path] - 1)
    return path


# ---------------------------------------------------------------------------
# Loading


@dataclass
class _Doc:
    """One TOML file being read, and the problems found so far (shared by all files)."""

    path: Path
    lines: dict[Loc, int]
    problems: list[str]
    warnings: list[str]

    def where(self, loc: Loc) -> str:
        for end in range(len(loc), 0, -1):
            if (line := self.lines.get(loc[:end])) is not None:
                return f"{self.path.name}:{line}"
        return self.path.name

    def problem(self, loc: Loc, subject: str, message: str) -> None:
        self.problems.append(f"{self.where(loc)}: {subject}{message}")

    def get(
        self,
        table: Mapping[str, Any],
        loc: Loc,
        subject: str,
        key: str,
        convert: Callable[[Any], T],
        default: D,
    ) -> T | D:
        """``table[key]`` passed through ``convert``; a problem (and ``default``) if it fails."""
        if key not in table:
            return default
        try:
            return convert(table[key])
        except (ValueError, TypeError) as exc:
            self.problem((*loc, key), subject, f"{key}: {exc}")
            return default


def _read_toml(path: Path, problems: list[str]) -> tuple[dict[str, Any], str] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{path}: no such config file")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        return None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path.name}:{_toml_error(exc)}")
        return None


def _toml_error(exc: tomllib.TOMLDecodeError) -> str:
    # tomllib says "Invalid value (at line 3, column 7)": put the line first, as editors do
    msg = str(exc)
    if m := regex.search(r"^(.*) \(at line (\d+), column (\d+)\)$", msg):
        return f"{m[2]}: invalid TOML: {m[1]} (column {m[3]})"
    return f" invalid TOML: {msg}"


_TOP_KEYS = {"logwatch", "destinations", "sources", "rules", "fleet"}


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the config at ``path`` and its includes; raise ``ConfigError``."""
    env = os.environ if environ is None else environ
    main = Path(path)
    problems: list[str] = []
    warnings: list[str] = []
    loaded = _read_toml(main, problems)
    if loaded is None:
        raise ConfigError(problems)
    data, text = loaded
    doc = _Doc(main, locate_lines(text), problems, warnings)
    settings = _settings(doc, data.get("logwatch", {}))
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
                  tuple(warnings), fleet)


def _read_includes(doc: _Doc, table: Any) -> list[tuple[_Doc, dict[str, Any]]]:
    out = []
    for inc in _includes(doc, table if isinstance(table, dict) else {}):
        if (more := _read_toml(inc, doc.problems)) is not None:
            inc_doc = _Doc(inc, locate_lines(more[1]), doc.problems, doc.warnings)
            for top in ("logwatch", "fleet"):
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
    raw_rules: list[tuple[_Doc, int, dict[str, Any]]] = field(default_factory=list)

    def add(self, doc: _Doc, content: dict[str, Any], env: Mapping[str, str]) -> None:
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
            if name in self.sources:
                doc.problem(("sources", name), "", f'source "{name}" is defined twice')
            else:
                self.sources[name] = _source(doc, name, table)
        rules = content.get("rules", [])
        if isinstance(rules, list):
            self.raw_rules.extend((doc, i, r) for i, r in enumerate(rules))
        else:
            doc.problem(("rules",), "", "rules: use [[rules]] tables")


def _tables(doc: _Doc, content: Mapping[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
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


def _includes(doc: _Doc, table: Mapping[str, Any]) -> list[Path]:
    patterns = doc.get(table, ("logwatch",), "", "include", _str_list, ())
    found: list[Path] = []
    for pattern in patterns:
        full = os.path.join(doc.path.parent, os.path.expanduser(pattern))
        found.extend(Path(p) for p in sorted(glob.glob(full)) if Path(p) != doc.path)
    return found


def _settings(doc: _Doc, table: Any) -> Settings:
    loc: Loc = ("logwatch",)
    if not isinstance(table, dict):
        doc.problem(loc, "", "[logwatch] must be a table")
        table = {}
    known = {"state_dir", "hostname", "start_at", "include", "ignore", "max_line_length",
             "poll_interval", "inotify", "drain_timeout", "failing_after", "match_timeout", "storm"}
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
    )


def _storm(doc: _Doc, table: Mapping[str, Any]) -> Storm:
    loc: Loc = ("logwatch", "storm")
    _unknown_keys(doc, loc, "storm: ", table, {"rate", "per", "digest_every", "top"})
    return Storm(
        rate=doc.get(table, loc, "storm: ", "rate", _positive_int, 20),
        per=doc.get(table, loc, "storm: ", "per", _positive_duration, 60.0),
        digest_every=doc.get(table, loc, "storm: ", "digest_every", _positive_duration, 300.0),
        top=doc.get(table, loc, "storm: ", "top", _positive_int, 10),
    )


def _fleet(doc: _Doc, table: Any, env: Mapping[str, str]) -> FleetSettings | None:
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
        password = _secret(doc, loc, subject, {"password_file": table["password_file"]},
                           "password", env)
    namespace = doc.get(table, loc, subject, "namespace", check_namespace, "logwatch")
    timeout = doc.get(table, loc, subject, "timeout", _positive_duration, DEFAULT_TIMEOUT)
    if url is None:
        return None
    return FleetSettings(url, password, namespace, min(timeout, 10.0))


def _fleet_url(doc: _Doc, loc: Loc, subject: str, table: Mapping[str, Any],
               env: Mapping[str, str]) -> Secret | None:
    raw = table.get("url")
    if isinstance(raw, str) and "${" not in raw and "@" not in raw:
        return Secret(raw, "inline")  # no credentials in it: nothing to warn about
    return _secret(doc, loc, subject, {k: table[k] for k in ("url", "url_file") if k in table},
                   "url", env)


def _destination(
    doc: _Doc, name: str, table: dict[str, Any], env: Mapping[str, str]
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
        url = _secret(doc, loc, subject, table, "url", env)
        if url is not None and not url.reveal().startswith(("https://", "http://")):
            doc.problem((*loc, "url"), subject, f"url: expected an http(s) URL ({url.origin})")
        thread = doc.get(table, loc, subject, "thread_id", _int, None)
        user = doc.get(table, loc, subject, "username", _nonempty_str, None)
        if url is None:
            return None
        return DiscordDestination(name, url, min_severity=min_sev, thread_id=thread, username=user)
    if kind == "telegram":
        _unknown_keys(doc, loc, subject, table, common | {"token", "token_file", "chat_id",
                                                          "thread_id", "api_url"})
        token = _secret(doc, loc, subject, table, "token", env)
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


_ENV_REF = regex.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _secret(
    doc: _Doc, loc: Loc, subject: str, table: Mapping[str, Any], key: str,
    env: Mapping[str, str],
) -> Secret | None:
    """A secret from ``key`` (``${ENV}`` or inline) or ``key_file``; problems for the rest."""
    file_key = f"{key}_file"
    if key in table and file_key in table:
        doc.problem((*loc, key), subject, f"{key} and {file_key}: give one, not both")
        return None
    if file_key in table:
        raw = table[file_key]
        if not isinstance(raw, str) or not raw:
            doc.problem((*loc, file_key), subject, f"{file_key}: expected a path, got {raw!r}")
            return None
        # a relative path is relative to the config file, not to the working directory
        path = doc.path.parent / os.path.expanduser(_expand_env(raw, env))
        return _secret_from_file(doc, (*loc, file_key), subject, file_key, path)
    if key not in table:
        doc.problem(loc, subject, f"{key}: missing (give {key} = \"${{ENV_VAR}}\" or {file_key})")
        return None
    raw = table[key]
    if not isinstance(raw, str) or not raw:
        doc.problem((*loc, key), subject, f"{key}: expected a string")  # the value may be secret
        return None
    refs = _ENV_REF.findall(raw)
    missing = [name for name in refs if not env.get(name)]
    if missing:
        doc.problem((*loc, key), subject,
                    f"{key}: environment variable {missing[0]} is not set or empty")
        return None
    if not refs:
        doc.warnings.append(f"{doc.where((*loc, key))}: {subject}{key} is written inline; "
                            f"prefer {key} = \"${{ENV_VAR}}\" or {file_key} "
                            "(kept out of the config)")
        return Secret(raw, "inline")
    return Secret(_expand_env(raw, env), "env " + ", ".join(refs))


def _secret_from_file(doc: _Doc, loc: Loc, subject: str, key: str, path: Path) -> Secret | None:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            doc.problem(loc, subject, f"{key}: {path} is readable by group or others "
                        f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 {path}")
            return None
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        doc.problem(loc, subject, f"{key}: {path}: no such file")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        doc.problem(loc, subject, f"{key}: {path}: cannot read: "
                    f"{getattr(exc, 'strerror', None) or type(exc).__name__}")
        return None
    if not value:
        doc.problem(loc, subject, f"{key}: {path} is empty")
        return None
    return Secret(value, f"file {path}")


def _expand_env(text: str, env: Mapping[str, str]) -> str:
    return _ENV_REF.sub(lambda m: env.get(m[1], ""), text)


def _source(doc: _Doc, name: str, table: dict[str, Any]) -> SourceConfig:
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
    raw: list[tuple[_Doc, int, dict[str, Any]]],
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
    doc: _Doc, index: int, table: dict[str, Any],
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
    doc: _Doc, loc: Loc, subject: str, table: Mapping[str, Any], key: str, default: str,
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
    doc: _Doc, loc: Loc, subject: str, raw: Any, groups: frozenset[str] | None
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
    doc: _Doc, loc: Loc, subject: str, raw: Any, groups: frozenset[str] | None
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
    doc: _Doc, loc: Loc, subject: str, raw: Any, groups: frozenset[str] | None
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


def _tests(doc: _Doc, loc: Loc, subject: str, raw: Any) -> tuple[RuleTest, ...]:
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
    doc: _Doc, loc: Loc, subject: str, table: Mapping[str, Any], known: set[str]
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
    if not _str(value).startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return str(value)


def _pattern(value: Any) -> regex.Pattern[str]:
    return compile_pattern(_str(value))


def _pattern_list(value: Any) -> tuple[regex.Pattern[str], ...]:
    return tuple(compile_pattern(p) for p in _str_list(value))
