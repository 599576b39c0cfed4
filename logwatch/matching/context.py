"""Events that span lines: a rule's hit takes fields from an earlier line of its source.

A rule with ``context = { key = "{pid}", from = '...(?P<pid>\\d+)...(?P<ip>...)', within =
200, keep = 10000 }`` has its ``from`` pattern run by the matcher like any pattern
(a probe of kind ``"context"``, through the same prefilters). :class:`ContextMemory`
walks a chunk's matches in line order:

- a ``context`` match is *remembered*: its non-empty groups, under ``key`` rendered
  from them, with its line number;
- a hit of the rule renders ``key`` from its own fields and, if a line was
  remembered under it at most ``within`` lines back, takes the fields it lacks (its
  own non-empty fields win); if none was and the context says ``require``, the
  line is no hit of the rule (counted in :attr:`ContextMemory.unlinked`).

Line numbers count the lines of one source in the order they are read, never wall
time, so ``logwatch test``, ``test --alerts`` and the daemon agree. At most
``keep`` keys are remembered per rule (the least recently remembered go first), and
a key older than ``within`` lines is forgotten when the next one is remembered.

The daemon saves the memory with :meth:`ContextMemory.save` in the transaction that
saves the source's checkpoint, so a crash replays the same lines onto the same
memory (kv namespace ``context``, one row per remembered key, only what changed).
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from logwatch.matching.matcher import Found, HitRow, Match, Spot
from logwatch.rules import Context, Rule
from logwatch.state import get_value, get_values, put_value, put_values

log = logging.getLogger(__name__)

#: kv namespaces: remembered lines (``SOURCE/RULE/KEY``), and each source's line count
NS = "context"
LINES_NS = "context-lines"

#: a remembered line: its number in the source, and the fields it lends
_Entry = tuple[int, dict[str, str]]


class ContextMemory:
    """What the context-taking rules of one source remember; see the module docstring."""

    def __init__(self, rules: Sequence[Rule], source: str = "") -> None:
        self.source = source
        self.links: dict[str, Context] = {r.id: r.context for r in rules
                                          if r.context is not None}
        #: lines of the source read before the next chunk
        self.lines = 0
        self.memory: dict[str, OrderedDict[str, _Entry]] = {rid: OrderedDict()
                                                             for rid in self.links}
        self._dirty: set[tuple[str, str]] = set()
        self._lines_dirty = False
        #: per rule: lines its pattern matched that found no remembered line, with ``require``
        self.unlinked: Counter[str] = Counter()

    @classmethod
    def of(cls, rules: Sequence[Rule], source: str = "") -> ContextMemory | None:
        """A memory for ``rules``, or None if none of them takes context (nothing to do)."""
        return cls(rules, source) if any(r.context is not None for r in rules) else None

    def hits(self, matches: Iterable[Match], data: bytes, lines: int | None = None,
             numbers: Mapping[int, int] | None = None,
             ) -> Iterator[tuple[Match, Mapping[str, str]]]:
        """The hits among one chunk's ``matches``, in order, each with its fields.

        ``context`` matches are remembered, not yielded; a hit of a context-taking
        rule gets the remembered fields it lacks. ``data`` is the chunk (for line
        numbers; ``lines``: its line count, if known; ``numbers``: the line, in the chunk,
        starting at each of the context-taking rules' matches, if known). The chunk is
        walked at once (the memory and the line count are up to date on return), and its
        hits kept in a list: no generator to resume per hit.
        """
        links = self.links
        base = self.lines
        out: list[tuple[Match, Mapping[str, str]]] = []
        # with the line count known, numbered from the chunk's end back to the first line that
        # needs it, then forward: when only the last lines matter (counting), little of the
        # chunk is scanned; else forward from its start, the count at the end: one pass
        line_no, counted_to = -1, 0
        for m in matches:
            link = links.get(m.rule.id)
            if link is None or m.kind == "resolve":
                out.append((m, m.fields))
                continue
            if numbers is not None:
                line_no = base + numbers[m.start]
            elif line_no >= 0:
                line_no += newlines(data, counted_to, m.start)
            elif lines is None:
                line_no = base + newlines(data, 0, m.start)
            else:
                line_no = base + lines - newlines(data, m.start, len(data))
            counted_to = m.start
            if m.kind == "context":
                self._remember(m.rule.id, link, m.fields, line_no)
            elif (fields := self._complete(m.rule.id, link, m.fields, line_no)) is not None:
                out.append((m, fields))
            else:
                self.unlinked[m.rule.id] += 1
        if lines is None:
            lines = max(line_no - base, 0) + newlines(data, counted_to, len(data))
        self._counted(base + lines)
        return iter(out)

    def _counted(self, lines: int) -> None:
        """The source's lines read so far are ``lines`` (saved with the memory)."""
        self.lines = lines
        self._lines_dirty = True

    def skim(self, found: Found, data: bytes, lines: int) -> None:
        """What :meth:`hits` does to the memory and :attr:`unlinked`, for counting only.

        Only the rules that take context are walked, and of their ``context`` lines only
        those a hit can reach (:meth:`_reached`): the result is the same, at a fraction of
        the searches (a busy sshd logs a ``Connection from`` line per connection).
        """
        spots = found.spots(self.links)
        keys, numbers = self._reached(spots, data, lines)
        self.hits(found.pick(keys), data, lines, numbers)

    def follow(self, found: Found, data: bytes, lines: int) -> list[HitRow]:
        """:meth:`hits` of all of ``found``, as :meth:`Found.hits` gives them (the daemon's
        path; ``lines``: the chunk's line count), but for the ``context`` lines no hit can
        reach (:meth:`_reached`), which are neither searched for their groups nor
        remembered: the same hits now and in every chunk to come (what is left out is what
        a hit would find too old), fewer rows to save.

        The usual read holds no hit of a context-taking rule (the ``context`` lines, such
        as sshd's ``Connection from``, are far more common than the hits that look back to
        them): its ``context`` lines are then only remembered, each independently of every
        hit (a rule's memory is read by its own hits only), so they are remembered first,
        in order, and the hits are :meth:`Found.hits`, which skips ``context`` lines: what
        :meth:`hits` gives, in one walk of the matches and without a :class:`Match` per hit.
        """
        spots = found.spots(self.links)
        if any(kind == "match" for _, _, kind, _ in spots):
            return self._linked(found, spots, data, lines)
        if spots:
            keys, numbers = self._reached(spots, data, lines)
            base, links = self.lines, self.links
            for m in found.pick(keys):  # only context lines: no hit of these rules here
                self._remember(m.rule.id, links[m.rule.id], m.fields, base + numbers[m.start])
        self._counted(self.lines + lines)
        return found.hits()

    def _linked(self, found: Found, spots: list[Spot], data: bytes,
                lines: int) -> list[HitRow]:
        """:meth:`follow` of a read holding hits of context-taking rules."""
        keys, numbers = self._reached(spots, data, lines)
        reached = set(keys)
        unreached = [key for key, _, kind, _ in spots if kind == "context" and key not in reached]
        return [(m.start, m.text, m.rule.id, "resolve" if m.kind == "resolve" else "match",
                 fields)
                for m, fields in self.hits(found.pick_except(unreached), data, lines, numbers)]

    def _reached(self, spots: list[Spot], data: bytes,
                 lines: int) -> tuple[list[int], dict[int, int]]:
        """Of the context-taking rules' ``spots`` (:meth:`Found.spots`), the keys of every
        hit, and of each ``context`` line within its rule's ``within`` lines before one of
        the rule's hits here, or before the chunk's end (for the chunks to come): a hit
        looks back no further, so remembering only those gives the same hits. And the
        line, in the chunk, of each of those spots (by its line's start: :meth:`hits` counts
        no more).

        Walked backwards, the line numbers counted from the end, each rule's next hit known.
        Once past the first hit, a ``context`` line further back than each rule here
        reaches (its ``within`` before its nearest hit, or the end) is the first of those
        left out: so are all before it, and the lines before it are not counted.
        """
        links = self.links
        keys: list[int] = []
        numbers: dict[int, int] = {}
        #: rule id -> the line (in the chunk) of its nearest hit at or after the line walked
        nearest: dict[str, int] = {}
        hits_before = sum(kind == "match" for _, _, kind, _ in spots)
        floor: int | None = None  # the least line a context line may be on, once past every hit
        line, pos = lines, len(data)
        for key, start, kind, rule_id in reversed(spots):
            line -= newlines(data, start, pos)
            pos = start
            if kind == "match":
                nearest[rule_id] = line
                hits_before -= 1
                keys.append(key)
            elif kind == "context":
                if not hits_before:
                    if floor is None:  # over the rules with lines here (within differs)
                        floor = min(nearest.get(rid, lines) - links[rid].within
                                    for rid in {rid for _, _, _, rid in spots})
                    if line < floor:
                        break
                if nearest.get(rule_id, lines) - line <= links[rule_id].within:
                    keys.append(key)
            numbers[start] = line
        keys.reverse()
        return keys, numbers

    def _remember(self, rule_id: str, link: Context, fields: Mapping[str, str],
                  line_no: int) -> None:
        if not all(fields.get(name) for name in link.key.fields):
            return  # no key: nothing could ever find it
        key = link.key.render(fields)
        memory = self.memory[rule_id]
        memory[key] = (line_no, {k: v for k, v in fields.items() if v})
        memory.move_to_end(key)
        dirty = self._dirty
        dirty.add((rule_id, key))
        while memory:
            oldest, (line, _) = next(iter(memory.items()))
            if len(memory) <= link.keep and line_no - line <= link.within:
                break
            del memory[oldest]
            dirty.add((rule_id, oldest))

    def _complete(self, rule_id: str, link: Context, fields: dict[str, str],
                  line_no: int) -> Mapping[str, str] | None:
        """The hit's fields completed from the line its key links to; None: no hit."""
        found = None
        if all(fields.get(name) for name in link.key.fields):
            found = self.memory[rule_id].get(link.key.render(fields))
        if found is None or line_no - found[0] > link.within:
            return None if link.require else fields
        merged = dict(fields)
        for name, value in found[1].items():
            if not merged.get(name):
                merged[name] = value
        return merged

    # -- persistence ------------------------------------------------------------

    def load(self, conn: sqlite3.Connection) -> None:
        """Read this source's saved memory (and line count); drop what no rule uses now."""
        lines = get_value(conn, LINES_NS, self.source)
        self.lines = lines if isinstance(lines, int) and lines >= 0 else 0
        prefix = f"{self.source}/"
        entries: dict[str, list[tuple[str, _Entry]]] = {}
        for kv_key, value in get_values(conn, NS).items():
            if not kv_key.startswith(prefix):
                continue
            rule_id, _, key = kv_key[len(prefix):].partition("/")
            entry = _entry(value)
            if rule_id not in self.links or entry is None:
                self._dirty.add((rule_id, key))  # deleted at the next save
                continue
            entries.setdefault(rule_id, []).append((key, entry))
        for rule_id, rows in entries.items():
            rows.sort(key=lambda row: row[1][0])
            keep = self.links[rule_id].keep
            for key, _ in rows[:-keep]:
                self._dirty.add((rule_id, key))
            self.memory[rule_id] = OrderedDict(rows[-keep:])

    def save(self, conn: sqlite3.Connection) -> None:
        """Write what changed since the last save, in the caller's transaction."""
        rows: list[tuple[str, Any]] = []
        for rule_id, key in sorted(self._dirty):
            rows_of_rule = self.memory.get(rule_id)
            entry = None if rows_of_rule is None else rows_of_rule.get(key)
            rows.append((f"{self.source}/{rule_id}/{key}",
                         None if entry is None else [entry[0], entry[1]]))
        put_values(conn, NS, rows)
        self._dirty.clear()
        if self._lines_dirty:
            put_value(conn, LINES_NS, self.source, self.lines)
            self._lines_dirty = False

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.memory.values())


def _entry(value: Any) -> _Entry | None:
    """A saved ``[line, {field: value}]``, checked (state files can be old or damaged)."""
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
            and isinstance(value[1], dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value[1].items())):
        return value[0], value[1]
    log.warning("context: unreadable saved entry dropped")
    return None


def plain(matches: Iterable[Match]) -> Iterator[tuple[Match, Mapping[str, str]]]:
    """The hits among ``matches`` with their own fields: :meth:`ContextMemory.hits` for
    rules that take no context."""
    return ((m, m.fields) for m in matches if m.kind != "context")


def newlines(data: bytes, start: int, end: int) -> int:
    """How many newlines ``data[start:end]`` holds.

    ``bytes.count`` tests one byte after another; ``bytes.replace`` finds them with
    ``memchr``: from a kilobyte of log on, counting what it removed is 2 to 3 times
    faster, copy included (below, ``count`` does as well).
    """
    if end - start < _COUNT_BY_REPLACE:
        return data.count(b"\n", start, end)
    part = data if start == 0 and end == len(data) else data[start:end]
    return len(part) - len(part.replace(b"\n", b""))


#: from this many bytes on, :func:`newlines` counts by removing them
_COUNT_BY_REPLACE = 1024
