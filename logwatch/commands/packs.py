"""``logwatch packs``: the shipped rule packs, their rules, and which have logs here."""

from __future__ import annotations

import json
from typing import TextIO

from logwatch import packs


def print_packs(out: TextIO, *, as_json: bool = False, journalctl: str | None = None) -> None:
    """The table (or JSON) ``logwatch packs`` prints."""
    found = [(p, packs.logs_here(p, journalctl=journalctl)) for p in packs.all_packs()]
    if as_json:
        out.write(json.dumps([{"name": p.name, "default": p.default, "description": p.description,
                               "logs_here": here, "rules": dict(p.severities)}
                              for p, here in found], indent=2) + "\n")
        return
    width = max(len(p.name) for p, _ in found)
    out.write(f"{'pack':<{width}}  default  logs here\n")
    for pack, here in found:
        out.write(f"{pack.name:<{width}}  {'on' if pack.default else 'off':<7}  {here or '-'}\n")
        out.write(f"{'':<{width}}  {pack.description}\n")
        out.write(f"{'':<{width}}  rules: "
                  + ", ".join(f"{rid} ({sev})" for rid, sev in pack.severities.items()) + "\n")
    out.write('\nEnable them in the config: [logwatch] packs = ["default"] (every pack that is '
              'on by default) or by name; change a rule with [overrides.RULE_ID].\n')
