"""Load, validate and freeze the TOML configuration.

``load_config(path)`` reads the main file and its ``include`` drop-ins, checks
everything once and returns a frozen :class:`Config`, or raises
:class:`~logwatch.errors.ConfigError` listing every problem, one line each, in the
form ``logwatch.toml:31: rules[2] "ssh-bruteforce": to: unknown destination "oncal"``.
"""

from __future__ import annotations

import difflib
import glob
import math
import os
import socket
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import regex

from logwatch import packs
from logwatch.config.document import Document, Loc, locate_lines, read_toml, toml_error
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
from logwatch.config.secrets import expand_env_strict, read_secret, secret_value_problem
from logwatch.durations import parse_duration
from logwatch.errors import ConfigError, LogwatchError
from logwatch.fleet.settings import DEFAULT_TIMEOUT, FleetSettings, check_namespace, check_url
from logwatch.models import Severity
from logwatch.rules import (
    DEFAULT_MATCH_TIMEOUT,
    RULE_ID,
    Context,
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
_TOP_KEYS = {"logwatch", "destinations", "sources", "rules", "overrides", "pack", "metrics",
             "fleet"}
#: ``packs = ["default"]``: every pack whose ``[pack]`` table says ``default = true``
DEFAULT_PACKS = "default"
#: bounds of a rule's ``context``: lines back, keys remembered per rule
MAX_CONTEXT_WITHIN = 1_000_000
MAX_CONTEXT_KEEP = 1_000_000


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None,
    read_secrets: bool = True, need_chat_id: bool = True,
) -> Config:
    """Read and validate the config at ``path`` and its includes; raise ``ConfigError``.

    ``read_secrets=False`` (a read-only report such as ``status``) leaves every secret
    unread: the destinations carry an empty :class:`Secret` naming where it would come
    from. ``need_chat_id=False`` (``telegram-chats``, which finds it) lets a Telegram
    destination have no ``chat_id`` yet.
    """
    env = os.environ if environ is None else environ
    main = Path(path)
    problems: list[str] = []
    warnings: list[str] = []
    loaded = read_toml(main, problems)
    if loaded is None:
        raise ConfigError(problems)
    data, text = loaded
    doc = Document(main, locate_lines(text), problems, warnings)
    settings = _settings(doc, data.get("logwatch", {}), env)
    metrics_listen = _metrics_listen(doc, data.get("metrics", {}))
    parts = _Parts(read_secrets=read_secrets, need_chat_id=need_chat_id)
    for d, content in [(doc, data), *_read_includes(doc, data.get("logwatch", {}), env),
                       *_read_packs(doc, settings.packs)]:
        parts.add(d, content, env)
    if not parts.declared:
        parts.destinations["console"] = ConsoleDestination("console")
        parts.declared.add("console")
    fleet = _fleet(doc, data["fleet"], env, read_secrets) if "fleet" in data else None
    routes = _Routes(frozenset(parts.declared), _route(doc, settings.route, parts.declared))
    built = _rules(parts.raw_rules, routes, parts.sources)
    rules = _apply_overrides(parts.overrides, built, routes)
    for rule in rules:
        if rule.fleet is not None and "fleet" not in data:
            problems.append(f"{rule.describe()}: fleet: needs a [fleet] table (the Redis the "
                            "hosts share)")
    if problems:
        raise ConfigError(problems)
    return Config(main, replace(settings, route=routes.route), parts.destinations, parts.sources,
                  tuple(rules), tuple(warnings), metrics_listen, fleet)


def _read_packs(doc: Document, chosen: tuple[str, ...]) -> list[tuple[Document, dict[str, Any]]]:
    """The enabled packs, each read like an include (its ``[pack]`` table aside)."""
    out = []
    for name in chosen:
        text = packs.read_text(name)
        pack_doc = Document(Path(f"{name}.toml"), locate_lines(text), doc.problems, doc.warnings,
                            pack=True)
        try:
            out.append((pack_doc, tomllib.loads(text)))
        except tomllib.TOMLDecodeError as exc:
            doc.problems.append(f"{pack_doc.name}:{toml_error(exc)}")
    return out


def _pack_names(value: Any) -> tuple[str, ...]:
    """``packs = [...]``: shipped pack names, ``"default"`` expanded, each once."""
    wanted = _str_list(value)
    known = packs.names()
    chosen: list[str] = []
    for name in wanted:
        if name == DEFAULT_PACKS:
            try:
                chosen += [n for n in known if packs.load(n).default]
            except LogwatchError as exc:  # a broken pack: say which, as one line
                raise ValueError(str(exc)) from exc
        elif name in known:
            chosen.append(name)
        else:
            raise ValueError(f'no pack "{name}" (packs: {DEFAULT_PACKS}, {", ".join(known)}; '
                             "`logwatch packs` describes them)")
    return tuple(dict.fromkeys(chosen))


def _read_includes(
    doc: Document, table: Any, env: Mapping[str, str],
) -> list[tuple[Document, dict[str, Any]]]:
    out = []
    for inc in _includes(doc, table if isinstance(table, dict) else {}, env):
        if (more := read_toml(inc, doc.problems, str(inc))) is not None:
            inc_doc = Document(inc, locate_lines(more[1]), doc.problems, doc.warnings,
                               label=str(inc))
            for top in ("logwatch", "metrics", "fleet"):
                if top in more[0]:
                    inc_doc.problem((top,), "", f"[{top}] belongs in the main config only")
            out.append((inc_doc, more[0]))
    return out


@dataclass
class _Parts:
    """Destinations, sources and raw rules gathered from the main file and its includes."""

    read_secrets: bool = True
    need_chat_id: bool = True
    destinations: dict[str, Destination] = field(default_factory=dict)
    #: destinations defined, even with errors: a broken one causes no cascade of "unknown"
    declared: set[str] = field(default_factory=set)
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    #: sources the user's files define: a pack's definition of the same name gives way
    own_sources: set[str] = field(default_factory=set)
    raw_rules: list[tuple[Document, int, dict[str, Any]]] = field(default_factory=list)
    overrides: list[tuple[Document, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, doc: Document, content: dict[str, Any], env: Mapping[str, str]) -> None:
        for key in content.keys() - _TOP_KEYS:
            doc.problem((key,), "", f"unknown top-level key {key!r} (expected one of: "
                        f"{', '.join(sorted(_TOP_KEYS))})")
        for name, table in _tables(doc, content, "destinations"):
            if name in self.declared:
                doc.problem(("destinations", name), "", f'destination "{name}" is defined twice')
            elif (dest := _destination(doc, name, table, env, self)) is not None:
                self.destinations[name] = dest
            self.declared.add(name)
        for name, table in _tables(doc, content, "sources"):
            source = _source(doc, name, table, env)
            if doc.pack and name in self.own_sources:
                continue  # the config's own [sources.NAME] replaces the pack's
            if not doc.pack:
                self.own_sources.add(name)
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
        self.overrides.extend((doc, name, table) for name, table in
                              _tables(doc, content, "overrides"))


@dataclass(frozen=True, slots=True)
class _Routes:
    """What the names in a rule's ``to`` mean: destinations, ``route`` names, a pack's roles."""

    destinations: frozenset[str]
    route: Mapping[str, tuple[str, ...]]

    def resolve(self, names: Iterable[str], *, pack: bool) -> tuple[tuple[str, ...], list[str]]:
        """The destinations ``names`` send to, and the names that mean nothing.

        A name a pack uses (``oncall``, ``audit``) that is neither a destination nor a
        ``route`` name sends to every destination (each keeps its ``min_severity``).
        """
        out: list[str] = []
        unknown = []
        for name in names:
            if name in self.destinations:
                out.append(name)
            elif name in self.route:
                out += self.route[name]
            elif pack:
                out += sorted(self.destinations)
            else:
                unknown.append(name)
        return tuple(dict.fromkeys(out)), unknown

    def known(self) -> set[str]:
        return set(self.destinations) | set(self.route)


def _route(doc: Document, route: Mapping[str, tuple[str, ...]],
           declared: set[str]) -> dict[str, tuple[str, ...]]:
    """``[logwatch] route``, checked against the destinations."""
    loc: Loc = ("logwatch", "route")
    out = {}
    for name, targets in route.items():
        if name in declared:
            doc.problem(loc, "", f'route: "{name}" is a destination already; '
                        "a route name stands for destinations")
            continue
        bad = [t for t in targets if t not in declared]
        for target in bad:
            doc.problem(loc, "", f'route: {name}: unknown destination "{target}"'
                        + _known(declared))
        if not bad:
            out[name] = targets
    return out


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


def _includes(doc: Document, table: Mapping[str, Any], env: Mapping[str, str]) -> list[Path]:
    patterns = doc.get(table, ("logwatch",), "", "include", _env_str_list(env), ())
    found: list[Path] = []
    for pattern in patterns:
        full = os.path.join(doc.path.parent, os.path.expanduser(pattern))
        if not glob.has_magic(full) and not os.path.exists(full):
            # a glob matching nothing is an empty rules.d/; a named file that is missing is a typo
            doc.problem(("logwatch", "include"), "", f"include: {full}: no such file")
            continue
        found.extend(Path(p) for p in sorted(glob.glob(full)) if Path(p) != doc.path)
    return found


def _settings(doc: Document, table: Any, env: Mapping[str, str]) -> Settings:
    loc: Loc = ("logwatch",)
    if not isinstance(table, dict):
        doc.problem(loc, "", "[logwatch] must be a table")
        table = {}
    known = {"state_dir", "hostname", "start_at", "include", "ignore", "max_line_length",
             "poll_interval", "inotify", "drain_timeout", "failing_after", "match_timeout", "storm",
             "max_retry_wait", "packs", "route", "rescan_interval", "batch_wait"}
    _unknown_keys(doc, loc, "", table, known)
    default_state = os.environ.get("STATE_DIRECTORY", "/var/lib/logwatch").split(":")[0]
    storm_table = doc.get(table, loc, "", "storm", _table, {})
    return Settings(
        state_dir=doc.get(table, loc, "", "state_dir", _env_path(env),
                          Path(default_state)),
        hostname=doc.get(table, loc, "", "hostname", _nonempty_str, socket.gethostname()),
        start_at=doc.get(table, loc, "", "start_at", _start_at, "end"),
        ignore=doc.get(table, loc, "", "ignore", _pattern_list, ()),
        max_line_length=doc.get(table, loc, "", "max_line_length", _line_length, 65536),
        packs=doc.get(table, loc, "", "packs", _pack_names, ()),
        route=doc.get(table, loc, "", "route", _route_table, {}),
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


def _fleet(doc: Document, table: Any, env: Mapping[str, str],
           read: bool = True) -> FleetSettings | None:
    """The ``[fleet]`` table (main config only); the URL and password stay secrets."""
    loc: Loc = ("fleet",)
    subject = "fleet: "
    if not isinstance(table, dict):
        doc.problem(loc, "", "[fleet] must be a table")
        return None
    _unknown_keys(doc, loc, subject, table, {"url", "url_file", "password_file", "namespace",
                                              "timeout"})
    url = _fleet_url(doc, loc, subject, table, env, read)
    if url is not None and read:
        try:
            check_url(url.reveal())
        except ValueError as exc:
            doc.problem((*loc, "url"), subject, f"url: {exc} ({url.origin})")
            url = None
    password = None
    if "password_file" in table:
        password = read_secret(doc, loc, subject, {"password_file": table["password_file"]},
                               "password", env, read=read)
    namespace = doc.get(table, loc, subject, "namespace", check_namespace, "logwatch")
    timeout = doc.get(table, loc, subject, "timeout", _positive_duration, DEFAULT_TIMEOUT)
    if url is None:
        return None
    return FleetSettings(url, password, namespace, min(timeout, 10.0))


def _fleet_url(doc: Document, loc: Loc, subject: str, table: Mapping[str, Any],
               env: Mapping[str, str], read: bool) -> Secret | None:
    raw = table.get("url")
    if isinstance(raw, str) and "${" not in raw and "@" not in raw:
        return Secret(raw, "inline")  # no credentials in it: nothing to warn about
    return read_secret(doc, loc, subject,
                       {k: table[k] for k in ("url", "url_file") if k in table}, "url", env,
                       read=read)


def _destination(
    doc: Document, name: str, table: dict[str, Any], env: Mapping[str, str], parts: _Parts,
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
        url = read_secret(doc, loc, subject, table, "url", env, read=parts.read_secrets)
        if url is not None and url.reveal() and not _is_http_url(url.reveal()):
            doc.problem((*loc, "url"), subject, f"url: expected an http(s) URL ({url.origin})")
        thread = doc.get(table, loc, subject, "thread_id", _int, None)
        user = doc.get(table, loc, subject, "username", _nonempty_str, None)
        if url is None:
            return None
        return DiscordDestination(name, url, min_severity=min_sev, thread_id=thread, username=user)
    if kind == "telegram":
        _unknown_keys(doc, loc, subject, table, common | {"token", "token_file", "chat_id",
                                                          "thread_id", "api_url"})
        token = read_secret(doc, loc, subject, table, "token", env, read=parts.read_secrets)
        if "chat_id" not in table and parts.need_chat_id:
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


def _source(
    doc: Document, name: str, table: dict[str, Any], env: Mapping[str, str],
) -> SourceConfig:
    loc: Loc = ("sources", name)
    subject = f'source "{name}": '
    _unknown_keys(doc, loc, subject, table, {"files", "journal", "silent_after"})
    files = doc.get(table, loc, subject, "files", _env_str_list(env), ())
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
              "dedup", "resolve", "quiet", "tests", "enabled", "context", "fleet"}
#: what ``[overrides.RULE_ID]`` may change in a rule defined elsewhere (a pack's)
_OVERRIDE_KEYS = {"severity", "to", "title", "message", "threshold", "dedup", "quiet", "enabled"}


@dataclass(slots=True)
class _Built:
    """A rule as read, whether it is on, and where it came from (for overrides)."""

    rule: Rule
    enabled: bool
    pack: bool


def _rules(
    raw: list[tuple[Document, int, dict[str, Any]]],
    routes: _Routes,
    sources: Mapping[str, SourceConfig],
) -> list[_Built]:
    seen: dict[str, tuple[Document, int]] = {}
    out: list[_Built] = []
    for doc, index, table in raw:
        rid = table.get("id")
        earlier = seen.get(rid) if isinstance(rid, str) else None
        duplicate = earlier is not None
        if earlier is not None:
            first, first_index = earlier
            if doc.pack and not first.pack:  # packs load last: say it at the user's rule
                first.problem(("rules", first_index, "id"), f'rules[{first_index}] "{rid}": ',
                              f"id: the pack rule at {doc.where(('rules', index))} has this id; "
                              f"change it with [overrides.{rid}] instead of a copy")
            else:
                doc.problem(("rules", index, "id"), f'rules[{index}] "{rid}": ',
                            f"id: duplicate of the rule at {first.where(('rules', first_index))}")
        elif isinstance(rid, str) and rid:
            seen[rid] = (doc, index)
        # a duplicate is still checked: its other errors are listed too
        rule = _rule(doc, index, table, routes, sources)
        if rule is not None and not duplicate:
            enabled = doc.get(table, ("rules", index), f'rules[{index}] "{rid}": ', "enabled",
                              _bool, True)
            out.append(_Built(rule, enabled, doc.pack))
    return out


def _apply_overrides(
    overrides: list[tuple[Document, str, dict[str, Any]]], built: list[_Built], routes: _Routes,
) -> list[Rule]:
    """``[overrides.RULE_ID]`` tables applied to the rules they name; the rules that are on."""
    by_id = {b.rule.id: b for b in built}
    done: dict[str, str] = {}
    for doc, rid, table in overrides:
        loc: Loc = ("overrides", rid)
        subject = f"overrides.{rid}: "
        if rid in done:
            doc.problem(loc, subject, f"overridden twice (also at {done[rid]})")
            continue
        done[rid] = doc.where(loc)
        target = by_id.get(rid)
        if target is None:
            close = difflib.get_close_matches(rid, list(by_id), n=3)
            hint = (f" (did you mean {', '.join(close)}?)" if close
                    else " (`logwatch packs` lists the packs' rules)")
            doc.problem(loc, subject, f'no rule "{rid}" to override{hint}')
            continue
        before = len(doc.problems)
        rule, enabled = _override(doc, loc, subject, table, target, routes)
        if len(doc.problems) == before:
            target.rule, target.enabled = rule, enabled
    return [b.rule for b in built if b.enabled]


def _override(doc: Document, loc: Loc, subject: str, table: Mapping[str, Any], target: _Built,
              routes: _Routes) -> tuple[Rule, bool]:
    """The rule with the override's keys in place of its own, and whether it is on."""
    rule = target.rule
    _unknown_keys(doc, loc, subject, table, _OVERRIDE_KEYS)
    changes: dict[str, Any] = {}
    if "severity" in table:
        changes["severity"] = doc.get(table, loc, subject, "severity", check_severity,
                                      rule.severity)
    if "to" in table:
        changes["to"] = _to(doc, loc, subject, table, routes, pack=False, default=rule.to)
    for key in ("title", "message"):
        if key in table:
            changes[key] = _template(doc, loc, subject, table, key, "", rule.groups)
    # false removes the rule's threshold, dedup or quiet
    if "threshold" in table:
        raw = table["threshold"]
        changes["threshold"] = None if raw is False else _threshold(doc, loc, subject, raw,
                                                                    rule.groups)
    if "dedup" in table:
        raw = table["dedup"]
        changes["dedup"] = None if raw is False else _dedup(doc, loc, subject, raw, rule.groups)
    if "quiet" in table:
        changes["quiet"] = (None if table["quiet"] is False else
                            doc.get(table, loc, subject, "quiet", _positive_duration, rule.quiet))
    enabled = doc.get(table, loc, subject, "enabled", _bool, target.enabled)
    return replace(rule, **changes), enabled


def _to(doc: Document, loc: Loc, subject: str, table: Mapping[str, Any], routes: _Routes, *,
        pack: bool, default: tuple[str, ...]) -> tuple[str, ...]:
    """A rule's ``to``, as destinations (route names and a pack's roles resolved)."""
    if "to" not in table:
        return default
    names = doc.get(table, loc, subject, "to", _str_list, ())
    resolved, unknown = routes.resolve(names, pack=pack)
    for name in unknown:
        doc.problem((*loc, "to"), subject, f'to: unknown destination "{name}"'
                    + _known(routes.known()))
    return resolved


def _context(doc: Document, loc: Loc, subject: str, raw: Any,
             groups: frozenset[str] | None) -> Context | None:
    """A rule's ``context = { key, from, within, keep }`` (events that span lines)."""
    if raw is None:
        return None
    sub = subject + "context: "
    cloc = (*loc, "context")
    if not isinstance(raw, dict):
        doc.problem(cloc, sub, "expected { key = \"{pid}\", from = '<regex>', within = 200 }")
        return None
    _unknown_keys(doc, cloc, sub, raw, {"key", "from", "within", "keep", "require"})
    for name, what in (("from", "the pattern of the earlier line"),
                       ("key", 'what links the lines, such as "{pid}"')):
        if name not in raw:
            doc.problem(cloc, sub, f"{name}: missing ({what})")
    pattern = doc.get(raw, cloc, sub, "from", _pattern, None)
    key = doc.get(raw, cloc, sub, "key", lambda v: parse_template(_str(v)), None)
    within = doc.get(raw, cloc, sub, "within", _at_most(MAX_CONTEXT_WITHIN), 200)
    keep = doc.get(raw, cloc, sub, "keep", _at_most(MAX_CONTEXT_KEEP), 10_000)
    require = doc.get(raw, cloc, sub, "require", _bool, False)
    if pattern is None or key is None:
        return None
    if not key.fields:
        doc.problem((*cloc, "key"), sub, 'key: name at least one field, such as "{pid}"')
    for name in sorted(key.fields):
        for what, names in (("from", frozenset(pattern.groupindex)), ("match", groups)):
            if names is not None and name not in names:
                doc.problem((*cloc, "key"), sub, f"key: {{{name}}} is not a named group of "
                            f"{what} (its groups: {', '.join(sorted(names)) or 'none'})")
    return Context(key, pattern, within, keep, require)


def _rule(
    doc: Document, index: int, table: dict[str, Any],
    routes: _Routes, sources: Mapping[str, SourceConfig],
) -> Rule | None:
    loc: Loc = ("rules", index)
    rid = table.get("id")
    subject = _rule_subject(index, rid)
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
    context = _context(doc, loc, subject, table.get("context"), groups)
    if groups is not None and context is not None:
        groups |= context.groups  # fields a hit takes from the earlier line
    source = doc.get(table, loc, subject, "source", _nonempty_str, None)
    if source is not None and source not in sources:
        doc.problem((*loc, "source"), subject, f'source: unknown source "{source}"'
                    + _known(sources))
    to = _to(doc, loc, subject, table, routes, pack=doc.pack,
             default=tuple(sorted(routes.destinations)))
    title = _template(doc, loc, subject, table, "title", "{rule} on {host}", groups)
    message = _template(doc, loc, subject, table, "message", "{line}", groups)
    threshold = _threshold(doc, loc, subject, table.get("threshold"), groups)
    dedup = _dedup(doc, loc, subject, table.get("dedup"), groups)
    fleet = _fleet_threshold(doc, loc, subject, table.get("fleet"), groups)
    # every key is checked before giving up, so all of a rule's errors are listed at once
    severity: Severity = doc.get(table, loc, subject, "severity", check_severity, "warning")
    ignore = doc.get(table, loc, subject, "ignore", _pattern_list, ())
    resolve = doc.get(table, loc, subject, "resolve", _pattern, None)
    quiet = doc.get(table, loc, subject, "quiet", _positive_duration, None)
    tests = _tests(doc, loc, subject, table.get("tests", []))
    if pattern is None or len(doc.problems) > before:
        return None
    return Rule(
        id=rid,  # type: ignore[arg-type]  # checked above
        pattern=pattern, severity=severity, title=title, message=message, to=to,
        source=source, ignore=ignore, threshold=threshold, dedup=dedup, resolve=resolve,
        quiet=quiet, tests=tests, fleet=fleet, where=doc.where(loc), context=context,
    )


def _rule_subject(index: int, rid: Any) -> str:
    return f'rules[{index}] "{rid}": ' if isinstance(rid, str) and rid else f"rules[{index}]: "


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
        out.append(RuleTest(case["line"], doc.get(case, tloc, sub, "match", _bool, True), fields,
                            where=doc.where(tloc)))
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


def _at_most(limit: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if not 0 < _int(value) <= limit:
            raise ValueError(f"expected a whole number from 1 to {limit:,}, got {value!r}")
        return int(value)

    return convert


def _route_table(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ValueError('expected a table such as { oncall = ["discord"], audit = ["console"] }')
    return {str(name): _str_list(targets) for name, targets in value.items()}


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return seconds


#: the longest max_line_length accepted: a line is held in memory whole
MAX_LINE_LENGTH = 16 << 20


def _line_length(value: Any) -> int:
    if _positive_int(value) > MAX_LINE_LENGTH:
        raise ValueError(f"expected at most {MAX_LINE_LENGTH} (16 MiB), got {value!r}")
    return int(value)


def _env_path(env: Mapping[str, str]) -> Callable[[Any], Path]:
    """A path with ``${VAR}`` expanded (an unset variable is an error) and ``~``."""
    def convert(value: Any) -> Path:
        return Path(os.path.expanduser(expand_env_strict(_nonempty_str(value), env)))

    return convert


def _env_str_list(env: Mapping[str, str]) -> Callable[[Any], tuple[str, ...]]:
    """:func:`_str_list` with ``${VAR}`` expanded in each string."""
    def convert(value: Any) -> tuple[str, ...]:
        return tuple(expand_env_strict(v, env) for v in _str_list(value))

    return convert


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
