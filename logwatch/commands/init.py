"""``logwatch init``: write a starter configuration a new user can run at once.

Written next to the config (``/etc/logwatch/`` by default)::

    logwatch.toml            [logwatch], destinations, sources; includes rules.d/*.toml
    rules.d/starter.toml     a small rule set, each rule with a test line
    credentials/             0700: one 0600 file per secret, never inline in the config
        discord              the webhook URL
        telegram             the bot token

The config names the secrets relatively (``url_file = "credentials/discord"``):
as root, ``logwatch check`` reads them there; under the systemd unit they are
systemd credentials that the unit shows at the same path, read-only, to its
unprivileged user (see ``docs/service.md``).

Every file is written whole (temporary file, then rename), secrets first and the
config last, so an interrupted ``init`` never leaves a config pointing at nothing.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypeVar

import regex
import tomli_w

from logwatch.config import DEFAULT_TELEGRAM_API, TelegramDestination
from logwatch.errors import LogwatchError
from logwatch.secret import Secret

log = logging.getLogger(__name__)

Ask = Callable[[str], str]
T = TypeVar("T")

CREDENTIALS = "credentials"
RULES_DIR = "rules.d"
RULES_FILE = "starter.toml"
#: how often a question is asked again after a wrong answer
ATTEMPTS = 3

#: any bot id and secret (a local Bot API server or a test server has its own); the
#: service is asked whether it is valid (getUpdates), not the shape
_TELEGRAM_TOKEN = regex.compile(r"[^\s/:]+:[^\s/]+")
_CHAT_ID = regex.compile(r"-?\d+|@[A-Za-z][A-Za-z0-9_]{3,}")

HEADER = """\
# logwatch configuration, written by `logwatch init`.
# Check it with `logwatch check -c {path}`, try a destination with
# `logwatch send-test -c {path} NAME`. Rules live in {rules}/*.toml; more rules, with
# their explanations, are in rules.example.toml in the logwatch repository.
# Secrets are in {credentials}/ (mode 0600), never in this file.

"""


@dataclass(frozen=True, slots=True)
class Answers:
    """What the starter config is made of; secrets stay wrapped."""

    discord_url: Secret | None
    telegram_token: Secret | None
    telegram_chat: int | str | None
    telegram_api: str = DEFAULT_TELEGRAM_API
    state_dir: str | None = None


def write_starter(
    path: str | os.PathLike[str],
    *,
    discord_url: str | None,
    telegram_token: str | None,
    telegram_chat: str | None,
    state_dir: str | None = None,
    force: bool = False,
    ask: Ask | None = None,
    out: TextIO,
    telegram_api: str = DEFAULT_TELEGRAM_API,
    ask_secret: Ask | None = None,
) -> list[Path]:
    """Write a starter config at ``path`` (plus rules and secret files); return the files written.

    With ``ask`` (interactive) the missing webhook URL, bot token and chat are
    asked for; for Telegram the chats the bot has seen are offered. ``ask_secret``
    (``getpass.getpass`` on a terminal) asks for the URL and token without echo;
    it defaults to ``ask``. ``telegram_api`` is for a local Bot API server. Refuses
    to overwrite an existing file unless ``force``. Never prints a secret.
    """
    config = Path(path)
    if not force:  # before asking anything: don't make the user type a token for nothing
        _refuse_existing([config, config.parent / RULES_DIR / RULES_FILE])
    answers = gather(discord_url=discord_url, telegram_token=telegram_token,
                     telegram_chat=telegram_chat, state_dir=state_dir, ask=ask, out=out,
                     telegram_api=telegram_api, ask_secret=ask_secret)
    secret_files = _secret_files(config, answers)
    if not force:
        _refuse_existing(list(secret_files))
    return _write_all(config, answers, secret_files, out)


# ---------------------------------------------------------------------------
# Gathering the answers


def gather(
    *,
    discord_url: str | None,
    telegram_token: str | None,
    telegram_chat: str | None,
    state_dir: str | None = None,
    ask: Ask | None,
    out: TextIO,
    telegram_api: str = DEFAULT_TELEGRAM_API,
    ask_secret: Ask | None = None,
) -> Answers:
    """Validate what was given and ask (when ``ask``) for what is missing."""
    secret_ask = (ask_secret or ask) if ask is not None else None
    url = _discord_url(discord_url, secret_ask, out)
    token = _telegram_token(telegram_token, secret_ask, out)
    chat: int | str | None = None
    if token is not None:
        chat = (_chat_id(telegram_chat) if telegram_chat is not None
                else _choose_chat(token, telegram_api, ask, out))
    elif telegram_chat is not None:
        raise LogwatchError("--telegram-chat needs --telegram-token-file "
                            "(the bot that posts there)")
    if url is None and token is None:
        out.write("No Discord webhook or Telegram bot given: alerts will be printed to the "
                  "console (destination \"console\"). Run init again with --force to add one.\n")
    return Answers(url, token, chat, telegram_api, state_dir)


def _discord_url(given: str | None, ask: Ask | None, out: TextIO) -> Secret | None:
    def check(value: str) -> Secret | None:
        if not value:
            return None
        if not value.startswith(("https://", "http://")):
            # the value itself is a secret: say what is wrong without echoing it
            raise LogwatchError("the Discord webhook URL must start with https:// (copy it from "
                                "Server Settings > Integrations > Webhooks)")
        return Secret(value, "logwatch init")

    if given is not None or ask is None:
        return check((given or "").strip())
    return _ask_until(ask, out, "Discord webhook URL (empty: no Discord): ", check)


def _telegram_token(given: str | None, ask: Ask | None, out: TextIO) -> Secret | None:
    def check(value: str) -> Secret | None:
        if not value:
            return None
        if not _TELEGRAM_TOKEN.fullmatch(value):
            raise LogwatchError("the Telegram bot token should look like 123456789:AAH... "
                                "(BOT_ID:KEY, as @BotFather gives it)")
        return Secret(value, "logwatch init")

    if given is not None or ask is None:
        return check((given or "").strip())
    return _ask_until(ask, out, "Telegram bot token (empty: no Telegram): ", check)


def _chat_id(value: str) -> int | str:
    value = value.strip()
    if not _CHAT_ID.fullmatch(value):
        raise LogwatchError(f"chat id {value!r}: expected a number such as -1001234567890 "
                            "or @channelname")
    return value if value.startswith("@") else int(value)


def _choose_chat(token: Secret, api_url: str, ask: Ask | None, out: TextIO) -> int | str:
    """Offer the chats the bot has seen; with one chat and no one to ask, take it."""
    chats = _list_chats(token, api_url, out)
    if ask is None:
        if len(chats) == 1:
            out.write(f"Telegram: using the only chat the bot has seen: {_describe(chats[0])}\n")
            return chats[0][0]
        hint = ("; chats seen: " + ", ".join(_describe(c) for c in chats)) if chats else ""
        raise LogwatchError(f"give --telegram-chat (the chat id to post to){hint}")
    if chats:
        out.write("Chats the bot has seen:\n")
        for number, seen in enumerate(chats, start=1):
            out.write(f"  {number}. {_describe(seen)}\n")
        prompt = f"Chat to post to (1-{len(chats)}, or a chat id): "
    else:
        out.write("The bot has seen no chat yet: add it to the group, send a message there, "
                  "and run `logwatch telegram-chats NAME` later; or type the chat id now.\n")
        prompt = "Telegram chat id: "

    def check(value: str) -> int | str:
        if value.isdigit() and 1 <= int(value) <= len(chats):
            return chats[int(value) - 1][0]
        return _chat_id(value)

    return _ask_until(ask, out, prompt, check)


Chat = tuple[int | str, str, str]  # id, type, title


def _list_chats(token: Secret, api_url: str, out: TextIO) -> list[Chat]:
    """The chats from getUpdates, or [] (with a word why) when they cannot be listed."""
    try:
        # lazy: another module's optional part, and it pulls in httpx
        from logwatch.delivery.destinations.telegram import list_chats
    except ImportError:
        log.debug("logwatch.delivery.destinations.telegram.list_chats is not available")
        return []
    dest = TelegramDestination("telegram", token, 0, api_url=api_url.rstrip("/"))
    try:
        found = list_chats(dest)
    except (LogwatchError, OSError) as exc:
        if getattr(exc, "permanent", False) and "webhook is set" not in str(exc):
            # a bad token: no point in asking for a chat, nor in writing a config that fails
            raise LogwatchError(f"Telegram refused the bot token: {token.redact(str(exc))}; "
                                "check it with @BotFather (nothing was written)") from None
        out.write(f"Could not list the bot's chats: {token.redact(str(exc))}\n")
        return []
    return [(chat.id, chat.type, chat.title) for chat in found]


def _describe(chat: Chat) -> str:
    chat_id, kind, title = chat
    return f"{chat_id} ({kind}) {title}".replace(" ()", "").strip()


def _ask_until(ask: Ask, out: TextIO, prompt: str, check: Callable[[str], T]) -> T:
    """``check(answer)``; on a LogwatchError say why and ask again, a few times."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = ask(prompt).strip()
        except EOFError:
            raise LogwatchError("init: no answer (end of input)") from None
        try:
            return check(answer)
        except LogwatchError as exc:
            if attempt == ATTEMPTS:
                raise
            out.write(f"  {exc}; try again.\n")
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------
# Writing


def _secret_files(config: Path, answers: Answers) -> dict[Path, Secret]:
    files: dict[Path, Secret] = {}
    if answers.discord_url is not None:
        files[config.parent / CREDENTIALS / "discord"] = answers.discord_url
    if answers.telegram_token is not None:
        files[config.parent / CREDENTIALS / "telegram"] = answers.telegram_token
    return files


def _refuse_existing(paths: Sequence[Path]) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise LogwatchError(f"{', '.join(existing)} already exist(s); "
                            "use --force to overwrite, or -c PATH for another location")


def _write_all(config: Path, answers: Answers, secrets: dict[Path, Secret],
               out: TextIO) -> list[Path]:
    written: list[Path] = []
    try:
        _mkdir(config.parent / CREDENTIALS, 0o700)
        for path, secret in secrets.items():
            written.append(_write(path, secret.reveal() + "\n", 0o600))
        rules = _mkdir(config.parent / RULES_DIR, 0o755) / RULES_FILE
        written.append(_write(rules, tomli_w.dumps({"rules": STARTER_RULES}), 0o644))
        header = HEADER.format(path=config, rules=RULES_DIR, credentials=CREDENTIALS)
        written.append(_write(config, header + tomli_w.dumps(starter_document(answers)), 0o644))
    except OSError as exc:
        where = exc.filename or config
        raise LogwatchError(f"cannot write {where}: {exc.strerror or exc} (run as root, "
                            "or give -c PATH for another location)") from exc
    return written


def next_steps(config: Path, written: Sequence[Path]) -> list[str]:
    """What to say after the "wrote ..." lines: where the secrets are, what to run next."""
    lines = []
    if any(p.parent.name == CREDENTIALS for p in written):
        lines.append(f"Secrets are in {config.parent / CREDENTIALS}/, mode 0600, "
                     "not in the config.")
    lines.append(f"Next: logwatch check -c {config}")
    return lines


def _mkdir(path: Path, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)  # also when it existed with a looser mode
    return path


def _write(path: Path, text: str, mode: int) -> Path:
    """Write ``text`` whole: a private temporary file, chmod, then rename over ``path``.

    An ``OSError`` names ``path``, not the random temporary name.
    """
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    if stat.S_IMODE(path.stat().st_mode) != mode:  # pragma: no cover  # a strange filesystem
        log.warning("%s: could not set mode %04o", path, mode)
    return path


# ---------------------------------------------------------------------------
# What is written


def starter_document(answers: Answers) -> dict[str, Any]:
    """The main config as a TOML-ready dict (secrets by file reference only)."""
    settings: dict[str, Any] = {"start_at": "end", "include": [f"{RULES_DIR}/*.toml"]}
    if answers.state_dir:
        settings["state_dir"] = answers.state_dir
    destinations: dict[str, Any] = {}
    if answers.discord_url is not None:
        destinations["discord"] = {"type": "discord", "url_file": f"{CREDENTIALS}/discord"}
    if answers.telegram_token is not None:
        telegram: dict[str, Any] = {"type": "telegram", "token_file": f"{CREDENTIALS}/telegram",
                                    "chat_id": answers.telegram_chat}
        if answers.telegram_api.rstrip("/") != DEFAULT_TELEGRAM_API:
            telegram["api_url"] = answers.telegram_api
        destinations["telegram"] = telegram
    if not destinations:
        destinations["console"] = {"type": "console"}
    return {"logwatch": settings, "destinations": destinations, "sources": STARTER_SOURCES}


#: where the starter rules read; a file that exists wins over the journal
STARTER_SOURCES: dict[str, Any] = {
    "auth": {
        "files": ["/var/log/auth.log", "/var/log/secure"],
        "journal": {"match": ["SYSLOG_FACILITY=4", "SYSLOG_FACILITY=10"]},
    },
    "kernel": {
        "files": ["/var/log/kern.log"],
        "journal": {"match": ["_TRANSPORT=kernel"]},
    },
    "system": {
        "files": ["/var/log/syslog", "/var/log/messages"],
        "journal": {"match": ["_PID=1"]},
    },
}

#: a small rule set that is worth having on any server; each rule carries a real line
STARTER_RULES: list[dict[str, Any]] = [
    {
        "id": "ssh-bruteforce",
        "source": "auth",
        "match": r"sshd(?:-session)?\[\d+\]: Failed password for (?:invalid user )?(?P<user>\S*) "
                 r"from (?P<ip>\S+)",
        "severity": "warning",
        "title": "SSH brute force from {ip}",
        "message": "{count} failed passwords (last for {user}) from {ip} on {host} within {within}",
        "threshold": {"count": 5, "within": "10m", "by": "{ip}"},
        "dedup": {"by": "{ip}", "for": "1h"},
        "tests": [{
            "line": "Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user ROOT "
                    "from 194.117.26.69 port 50273 ssh2",
            "fields": {"user": "ROOT", "ip": "194.117.26.69"},
        }],
    },
    {
        "id": "ssh-root-login",
        "source": "auth",
        "match": r"sshd(?:-session)?\[\d+\]: Accepted (?P<method>\S+) for root from (?P<ip>\S+)",
        "severity": "warning",
        "title": "root logged in over SSH on {host}",
        "message": "root logged in from {ip} ({method}) on {host}",
        "tests": [{
            "line": "Mar  3 09:14:22 web-1 sshd[2211]: Accepted publickey for root from "
                    "203.0.113.7 port 52514 ssh2: ED25519 SHA256:qY1x",
            "fields": {"method": "publickey", "ip": "203.0.113.7"},
        }],
    },
    {
        "id": "sudo-denied",
        "source": "auth",
        "match": r"sudo(?:\[\d+\])?: +(?P<user>\S+) : (?P<why>\d+ incorrect password attempts?|"
                 r"user NOT in sudoers|command not allowed)",
        "severity": "warning",
        "title": "sudo refused for {user} on {host}",
        "message": "sudo: {user}: {why}",
        "dedup": {"by": "{user}", "for": "30m"},
        "tests": [{
            "line": "Mar  3 10:12:01 web-1 sudo:    alice : 3 incorrect password attempts ; "
                    "TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
            "fields": {"user": "alice", "why": "3 incorrect password attempts"},
        }, {
            "line": "Mar  3 10:13:40 web-1 sudo[3101]:      bob : user NOT in sudoers ; "
                    "TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
            "fields": {"user": "bob", "why": "user NOT in sudoers"},
        }],
    },
    {
        "id": "oom-kill",
        "source": "kernel",
        "match": r"kernel: (?:\[[\d. ]+\] )?Out of memory: Killed process (?P<pid>\d+) "
                 r"\((?P<process>[^)]*)\)",
        "severity": "critical",
        "title": "out of memory on {host}: killed {process}",
        "message": "the kernel killed {process} (pid {pid}) to free memory",
        "dedup": {"by": "{process}", "for": "15m"},
        "tests": [{
            "line": "Mar  3 11:02:17 web-1 kernel: Out of memory: Killed process 4242 (java) "
                    "total-vm:8123456kB, anon-rss:6012345kB, file-rss:0kB, shmem-rss:0kB",
            "fields": {"pid": "4242", "process": "java"},
        }],
    },
    {
        "id": "disk-io-error",
        "source": "kernel",
        "match": r"kernel: (?:\[[\d. ]+\] )?(?:blk_update_request: )?(?:critical medium |I/O )"
                 r"error, dev (?P<device>[\w-]+), sector (?P<sector>\d+)",
        "severity": "critical",
        "title": "disk errors on {device} ({host})",
        "message": "{count} I/O error(s) on /dev/{device}, last at sector {sector}",
        "dedup": {"by": "{device}", "for": "1h"},
        "tests": [{
            "line": "Mar  3 11:40:02 web-1 kernel: blk_update_request: I/O error, dev sda, "
                    "sector 123456 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
            "fields": {"device": "sda", "sector": "123456"},
        }],
    },
    {
        "id": "unit-failed",
        "source": "system",
        "match": r"systemd\[1\]: (?P<unit>\S+?): Failed with result '(?P<result>[^']+)'",
        "severity": "warning",
        "title": "{unit} failed on {host}",
        "message": "{unit} failed ({result})",
        "dedup": {"by": "{unit}", "for": "1h"},
        "tests": [{
            "line": "Mar  3 12:00:01 web-1 systemd[1]: nginx.service: Failed with result "
                    "'exit-code'.",
            "fields": {"unit": "nginx.service", "result": "exit-code"},
        }],
    },
]
