"""`python -m logwatch` is the `logwatch` command."""

from __future__ import annotations

from logwatch.cli import main

raise SystemExit(main())
