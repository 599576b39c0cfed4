"""Message templates: ``"{count} failed passwords for {user} from {ip}"``.

A template names fields in braces (``{{`` and ``}}`` are literal braces). The
fields it may use are known when the config is loaded (the rule's named groups
plus :data:`BUILTIN_FIELDS`), so a typo is a ``check`` error, not a crash at
3 a.m. Field values are inserted as plain text; no attribute or index lookups.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: fields every template may use, whatever the rule's pattern
BUILTIN_FIELDS = frozenset(
    {"host", "rule", "source", "line", "severity", "count", "within", "first", "last"}
)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: alternating literal text and field names."""

    text: str
    parts: tuple[tuple[str, str | None], ...]

    @property
    def fields(self) -> frozenset[str]:
        """The field names the template uses."""
        return frozenset(name for _, name in self.parts if name is not None)

    def render(self, values: Mapping[str, object]) -> str:
        """The text with each field replaced by its value (a missing value is empty)."""
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                value = values.get(name)
                out.append("" if value is None else str(value))
        return "".join(out)

    def bind(self, fixed: Mapping[str, str]) -> Template:
        """This template with the fields named in ``fixed`` written in as text: what
        :meth:`render` makes of it with any values is what this one makes with those
        values and ``fixed`` over them (a rule's host or name, worked out once per rule)."""
        parts: list[tuple[str, str | None]] = []
        literal = ""
        for text, name in self.parts:
            literal += text
            if name is not None and name in fixed:
                literal += fixed[name]
            else:
                parts.append((literal, name))
                literal = ""
        if literal:
            parts.append((literal, None))
        return Template(self.text, tuple(parts))


def parse_template(text: str) -> Template:
    """Parse ``text``; ``ValueError`` says what is wrong (unbalanced brace, ``{a.b}``...)."""
    parts: list[tuple[str, str | None]] = []
    try:
        for literal, name, spec, conversion in string.Formatter().parse(text):
            if name is not None and (not name.isidentifier() or spec or conversion):
                raise ValueError(f"{{{name}}} is not a plain field name (use letters, digits, _)")
            parts.append((literal, name))
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc}") from exc
    return Template(text, tuple(parts))


def unknown_fields(template: Template, known: Iterable[str]) -> list[str]:
    """The fields ``template`` uses that are neither in ``known`` nor built in, sorted."""
    allowed = BUILTIN_FIELDS | set(known)
    return sorted(template.fields - allowed)
