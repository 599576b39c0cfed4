"""The ``logwatch`` command: parse arguments, call the library, turn errors into one line.

Exit codes: 0 fine, 1 the user's input is wrong (config, rule, file), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from logwatch import __version__
from logwatch.config import DEFAULT_CONFIG, DEFAULT_TELEGRAM_API, Config, load_config
from logwatch.errors import ConfigError, LogwatchError
from logwatch.terminal import EscapingFormatter, escape_controls

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("logwatch")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    setup_logging(verbose=getattr(args, "verbose", False))
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INPUT
    except LogwatchError as exc:
        print(f"logwatch: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`logwatch test ... | head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def setup_logging(*, verbose: bool = False) -> None:
    """Log to stderr; into the journal with priorities and without our own timestamps."""
    from logwatch.journald import JournalFormatter, stderr_is_journal

    fmt = "%(levelname)s %(name)s: %(message)s"
    journal = stderr_is_journal()
    if not journal:
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(sys.stderr)
    # log text comes from attackers: escaped; under systemd `<N>` per line, so that
    # journalctl -p warning shows warnings and errors
    handler.setFormatter(JournalFormatter(fmt) if journal else EscapingFormatter(fmt))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    # httpx logs every request URL at INFO, and a webhook URL or bot URL carries the secret
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logwatch",
        description="Follow system logs, match TOML rules, alert Discord and Telegram.",
    )
    parser.add_argument("--version", action="version", version=f"logwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int],
                help_text: str) -> argparse.ArgumentParser:
        # no abbreviations: `--telegram-token SECRET` must not be taken for --telegram-token-file
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        p.set_defaults(handler=handler)
        p.add_argument("-c", "--config", type=Path,
                       default=Path(os.environ.get("LOGWATCH_CONFIG", DEFAULT_CONFIG)),
                       help=f"config file (default: $LOGWATCH_CONFIG or {DEFAULT_CONFIG})")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        return p

    p = command("run", _run, "follow the logs and send alerts (the daemon)")
    p.add_argument("--dry-run", action="store_true",
                   help="post nothing: print each alert as it would be sent; state is not kept")
    command("check", _check, "validate the config, compile rules, run every rule's tests")
    p = command("test", _test, "replay log files through the rules (like fail2ban-regex)")
    p.add_argument("logfiles", nargs="*", type=Path, metavar="LOGFILE",
                   help="log files; - reads standard input")
    p.add_argument("--rule", metavar="ID", help="only this rule")
    p.add_argument("--host", dest="hosts", action="append", type=_host_file,
                   metavar="NAME=FILE",
                   help="with --alerts: replay several hosts' logs as one fleet (fleet "
                        "thresholds and dedup, in-process); repeat it, a name once per file")
    p.add_argument("-j", "--jobs", type=_positive, metavar="N",
                   help="worker processes for a large file (default: one per CPU)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help='one JSON object per hit: {"rule", "file", "line_no", "fields"}')
    out.add_argument("--alerts", action="store_true",
                     help="replay with the lines' own timestamps through thresholds, dedup and "
                          "storms; print the alerts that would have been sent")
    p = command("send-test", _send_test, "post a test message to one destination")
    p.add_argument("destination", metavar="DEST")
    p = command("telegram-chats", _telegram_chats,
                "list the chats a Telegram bot has seen, to find chat_id")
    p.add_argument("destination", metavar="DEST")
    p = command("status", _status, "followed files, offsets, outbox, last delivery errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command("retry", _retry, "queue the dead alerts again (after the config was fixed)")
    p.add_argument("destination", metavar="DEST", nargs="?", help="only this destination")
    p = command("packs", _packs, "list the shipped rule packs, their rules, which have logs here")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command("init", _init, "write a starter config (asks for what is not given)")
    p.add_argument("--discord-url", metavar="URL")
    p.add_argument("--no-check", action="store_true",
                   help="do not ask Discord whether the webhook exists (offline installs)")
    p.add_argument("--telegram-token-file", metavar="FILE", type=Path,
                   help="read the bot token from FILE (- for standard input), never from the "
                        "command line, where other users see it")
    p.add_argument("--telegram-token", dest="token_on_command_line", help=argparse.SUPPRESS)
    p.add_argument("--telegram-chat", metavar="CHAT_ID")
    p.add_argument("--telegram-api", metavar="URL", default=DEFAULT_TELEGRAM_API,
                   help="Bot API server (default: %(default)s)")
    p.add_argument("--state-dir", metavar="DIR")
    p.add_argument("--force", action="store_true", help="overwrite an existing config")
    p.add_argument("--non-interactive", action="store_true", help="never ask; use what is given")
    return parser


def _count(n: int, noun: str) -> str:
    """``1 destination``, ``2 destinations``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _host_file(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    return name, Path(path)


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _run(args: argparse.Namespace) -> int:
    from logwatch.daemon import run

    return run(args.config, dry_run=args.dry_run)


def _check(args: argparse.Namespace) -> int:
    from logwatch.commands.check import check_config
    from logwatch.matching import engine

    config = _load(args)
    report = check_config(config)
    for note in report.notes:
        print(f"note: {note}")
    for failure in report.failures:
        print(failure, file=sys.stderr)
    if report.failures:
        print(f"{args.config}: {len(report.failures)} of {report.tests_run} rule tests failed",
              file=sys.stderr)
        return EXIT_INPUT
    print(f"matching engine: {engine.current().describe()}")
    print(f"{args.config}: OK: {_count(len(config.rules), 'rule')}, "
          f"{_count(report.tests_run, 'test')} passed, {_count(len(config.sources), 'source')}, "
          f"{_count(len(config.destinations), 'destination')} "
          f"({', '.join(sorted(config.destinations))})")
    return EXIT_OK


def _test(args: argparse.Namespace) -> int:
    from logwatch.commands.parallel import default_jobs
    from logwatch.commands.replay import (
        is_terminal,
        missing_logs,
        print_summary,
        replay,
        select_rules,
    )

    if args.hosts and (not args.alerts or args.logfiles):
        print("logwatch: test: --host NAME=FILE goes with --alerts, instead of LOGFILE",
              file=sys.stderr)
        return EXIT_USAGE
    if not args.hosts and not args.logfiles:
        print("logwatch: test: give a LOGFILE (or --alerts --host NAME=FILE ...)",
              file=sys.stderr)
        return EXIT_USAGE
    config = _load(args)
    if args.hosts:
        from logwatch.commands.fleet_replay import simulate_fleet

        simulate_fleet(config, args.hosts, sys.stdout, rule=args.rule)
        return EXIT_OK
    if missing := missing_logs(args.logfiles):  # said first, not after a table of zeros
        for line in missing:
            print(f"logwatch: {line}", file=sys.stderr)
        print(f"logwatch: on a system that logs to the journal only, try: journalctl -o short "
              f"| logwatch test -c {args.config} -", file=sys.stderr)
        args.logfiles = [p for p in args.logfiles if str(p) == "-" or p.exists()]
        if not args.logfiles:
            return EXIT_INPUT
    if args.alerts:
        from logwatch.commands.simulate import simulate

        simulate(config, args.logfiles, sys.stdout, rule=args.rule)
        return EXIT_OK
    progress: TextIO | None = sys.stderr if is_terminal(sys.stderr) else None
    result = replay(config, args.logfiles, sys.stdout, rule=args.rule, as_json=args.json,
                    progress=progress, jobs=args.jobs or default_jobs())
    if not args.json:
        print_summary(result, select_rules(config, args.rule), sys.stdout)
    for error in result.errors:
        print(f"logwatch: {escape_controls(error)}", file=sys.stderr)
    return EXIT_INPUT if result.errors or missing else EXIT_OK


def _send_test(args: argparse.Namespace) -> int:
    from logwatch.delivery.sender import send_test

    config = _load(args)
    _known_destination(config, args.destination)
    arrived, explanation = send_test(config, args.destination)
    print(f"{args.destination}: {explanation}")
    return EXIT_OK if arrived else EXIT_INPUT


def _telegram_chats(args: argparse.Namespace) -> int:
    from logwatch.config import TelegramDestination
    from logwatch.delivery.destinations.telegram import list_chats

    config = load_config(args.config, need_chat_id=False)  # it finds the chat_id
    dest = _known_destination(config, args.destination)
    if not isinstance(dest, TelegramDestination):
        raise LogwatchError(f'destination "{args.destination}" is not a telegram destination')
    chats = list_chats(dest)
    if not chats:
        print("The bot has seen no chat yet. Add the bot to the group (or open a chat with it), "
              "send any message there, then run this again.")
        return EXIT_OK
    print(f"{'chat_id':>16}  {'type':<10}  title")
    for chat in chats:
        print(f"{chat.id:>16}  {chat.type:<10}  {chat.title}")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from logwatch.commands.status import collect_status, format_status

    config = load_config(args.config, read_secrets=False)  # a report needs no secret
    report = collect_status(config)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_status(report))
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    from logwatch.commands.retry import retry_dead
    from logwatch.state_lock import running_pid

    config = load_config(args.config, read_secrets=False)
    counts = retry_dead(config, args.destination)
    for name, n in counts.items():
        print(f"{name}: {n} dead alert{'s' if n != 1 else ''} queued again" +
              (" (oldest first)" if n > 1 else ""))
    if sum(counts.values()) and (pid := running_pid(config.settings.state_dir)) is not None:
        print(f"logwatch is running (pid {pid}): `systemctl reload logwatch` (or kill -HUP {pid}) "
              "makes it use the fixed config and send them now")
    return 0


def _packs(args: argparse.Namespace) -> int:
    from logwatch.commands.packs import print_packs

    print_packs(sys.stdout, as_json=args.json)
    return EXIT_OK


def _init(args: argparse.Namespace) -> int:
    import getpass

    from logwatch.commands.init import next_steps, write_starter

    if args.token_on_command_line is not None:
        raise LogwatchError("--telegram-token is gone: a token on the command line is seen by "
                            "every user (ps); use --telegram-token-file FILE, or - for stdin")
    interactive = not args.non_interactive and sys.stdin.isatty()
    token = _read_secret_arg(args.telegram_token_file)
    written = write_starter(
        args.config,
        discord_url=args.discord_url,
        telegram_token=token,
        telegram_chat=args.telegram_chat,
        state_dir=args.state_dir,
        force=args.force,
        ask=input if interactive else None,
        ask_secret=getpass.getpass if interactive else None,
        telegram_api=args.telegram_api,
        out=sys.stdout,
        check_discord=not args.no_check,
    )
    for path in written:
        print(f"wrote {path}")
    for line in next_steps(args.config, written):
        print(line)
    return EXIT_OK


def _read_secret_arg(path: Path | None) -> str | None:
    """A secret from a file or ``-`` (standard input): its first line."""
    if path is None:
        return None
    try:
        text = sys.stdin.readline() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LogwatchError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"
                            ) from None
    return text.strip().splitlines()[0] if text.strip() else ""


def _known_destination(config: Config, name: str) -> object:
    if name not in config.destinations:
        raise LogwatchError(f'no destination "{name}" in {config.path} '
                            f"(destinations: {', '.join(sorted(config.destinations))})")
    return config.destinations[name]
