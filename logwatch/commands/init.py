"""``logwatch init``: write a starter configuration a new user can run at once.

Written next to the config (``/etc/logwatch/`` by default)::

    logwatch.toml            [logwatch] with the rule packs whose logs are on this machine,
                             destinations; includes rules.d/*.toml
    rules.d/local.toml       where the user's own rules and overrides go (examples, commented)
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

import hashlib
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

from logwatch import packs as shipped
from logwatch.config import DEFAULT_TELEGRAM_API, TelegramDestination
from logwatch.config.document import MAX_CONFIG_BYTES
from logwatch.errors import LogwatchError
from logwatch.secret import Secret

log = logging.getLogger(__name__)

#: how long init waits for Discord to say whether the webhook exists
WEBHOOK_CHECK_TIMEOUT = 10.0

Ask = Callable[[str], str]
T = TypeVar("T")

CREDENTIALS = "credentials"
RULES_DIR = "rules.d"
RULES_FILE = "local.toml"
#: how often a question is asked again after a wrong answer
ATTEMPTS = 3

#: any bot id and secret (a local Bot API server or a test server has its own); the
#: service is asked whether it is valid (getUpdates), not the shape
_TELEGRAM_TOKEN = regex.compile(r"[^\s/:]+:[^\s/]+")
_CHAT_ID = regex.compile(r"-?\d+|@[A-Za-z][A-Za-z0-9_]{3,}")

#: the first line of a console-only starter: ``init`` replaces such a file, unedited,
#: without --force (the package installs one; ``logwatch init`` then adds a webhook)
UNEDITED = "# unedited starter {digest}: `logwatch init` replaces this file until it is edited\n"
_UNEDITED = regex.compile(r"# unedited starter ([0-9a-f]{16}): .*")

HEADER = """\
# logwatch configuration, written by `logwatch init`.
# Check it with `logwatch check -c {path}`, try a destination with
# `logwatch send-test -c {path} NAME`. The rules come from the shipped packs below
# (`logwatch packs` lists them, with the ones whose logs are on this machine);
# change one with [overrides.RULE_ID], add your own in {rules}/*.toml.
# Chat destinations get warning and critical alerts; set min_severity = "info"
# on one to receive the audit trail (logins, account changes) too.
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
    packs: tuple[str, ...] = ("default",)


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
    packs: Sequence[str] | None = None,
    check_discord: bool = False,
) -> list[Path]:
    """Write a starter config at ``path`` (plus rules and secret files); return the files written.

    With ``ask`` (interactive) the missing webhook URL, bot token and chat are
    asked for; for Telegram the chats the bot has seen are offered. ``ask_secret``
    (``getpass.getpass`` on a terminal) asks for the URL and token without echo;
    it defaults to ``ask``. ``telegram_api`` is for a local Bot API server. Refuses
    to overwrite an existing file unless ``force``. Never prints a secret. ``packs``:
    the rule packs to enable (default: :func:`detect_packs`). ``check_discord`` asks
    Discord about the webhook, as the Telegram token is always asked about.
    """
    config = Path(path)
    if not force:  # before asking anything: don't make the user type a token for nothing
        _refuse_existing([config, config.parent / RULES_DIR / RULES_FILE])
    answers = gather(discord_url=discord_url, telegram_token=telegram_token,
                     telegram_chat=telegram_chat, state_dir=state_dir, ask=ask, out=out,
                     telegram_api=telegram_api, ask_secret=ask_secret)
    if check_discord and answers.discord_url is not None:
        check_webhook(answers.discord_url, out)
    chosen = tuple(packs) if packs is not None else detect_packs(out)
    answers = Answers(answers.discord_url, answers.telegram_token, answers.telegram_chat,
                      answers.telegram_api, answers.state_dir, chosen)
    secret_files = _secret_files(config, answers)
    if not force:
        _refuse_existing(list(secret_files))
    return _write_all(config, answers, secret_files, out)


# ---------------------------------------------------------------------------
# Gathering the answers


def detect_packs(out: TextIO, *, journalctl: str | None = None) -> tuple[str, ...]:
    """The packs on by default whose logs are on this machine (all of them if none is)."""
    chosen: list[str] = []
    opt_in: list[str] = []
    for pack in shipped.all_packs():
        if (here := shipped.logs_here(pack, journalctl=journalctl)) is None:
            continue
        (chosen if pack.default else opt_in).append(pack.name)
        out.write(f"pack {pack.name}: {'enabled' if pack.default else 'opt-in, not enabled'} "
                  f"(logs here: {here})\n")
    if not chosen:
        out.write('No log of a pack found on this machine: enabling packs = ["default"].\n')
        return ("default",)
    return tuple(chosen)


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


def check_webhook(url: Secret, out: TextIO) -> None:
    """Ask Discord about the webhook (a GET of its URL posts nothing).

    Refused (401, 403, 404): a ``LogwatchError`` before anything is written. Not
    reachable or another answer: a word, and the config is written anyway.
    """
    import httpx  # lazy: init without a webhook never needs it

    try:
        resp = httpx.get(url.reveal(), timeout=WEBHOOK_CHECK_TIMEOUT)
    except httpx.HTTPError as exc:
        out.write(f"Could not ask Discord about the webhook ({type(exc).__name__}:"
                  f" {url.redact(str(exc))}); writing it anyway: try `logwatch send-test`.\n")
        return
    if resp.status_code in (401, 403, 404):
        raise LogwatchError(f"Discord refused the webhook URL (HTTP {resp.status_code}): it was "
                            "deleted or mistyped; copy it again from Server Settings > "
                            "Integrations > Webhooks (nothing was written)")
    try:
        found = resp.json() if resp.status_code == 200 else None
    except (ValueError, RecursionError):  # not JSON, or JSON nested to exhaust the parser
        found = None
    if not isinstance(found, dict) or "id" not in found:
        out.write(f"The webhook URL answered HTTP {resp.status_code}, not as a Discord webhook "
                  "does; writing it anyway: try `logwatch send-test`.\n")
        return
    out.write("Discord: the webhook exists.\n")


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
    existing = [str(p) for p in paths if p.exists() and not _unedited(p)]
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
        # a console-only starter (the package ships one) may be replaced while unedited
        stamp = _stamped if not secrets else str
        rules = _mkdir(config.parent / RULES_DIR, 0o755) / RULES_FILE
        written.append(_write(rules, stamp(LOCAL_RULES), 0o644))
        header = HEADER.format(path=config, rules=RULES_DIR, credentials=CREDENTIALS)
        text = header + tomli_w.dumps(starter_document(answers))
        written.append(_write(config, stamp(text), 0o644))
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


def _stamped(text: str) -> str:
    """``text`` under a first line that lets a later ``init`` see it was never edited."""
    return UNEDITED.format(digest=_digest(text)) + text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _unedited(path: Path) -> bool:
    """Whether ``path`` is a console-only starter exactly as ``init`` wrote it."""
    try:
        with path.open("rb") as f:  # a starter is small: never read a huge file whole
            data = f.read(MAX_CONFIG_BYTES + 1)
        first, _, rest = data.decode("utf-8").partition("\n")
    except (OSError, UnicodeDecodeError):
        return False
    if len(data) > MAX_CONFIG_BYTES:
        return False
    found = _UNEDITED.fullmatch(first)
    return found is not None and found[1] == _digest(rest)


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
    settings: dict[str, Any] = {"start_at": "end", "packs": list(answers.packs),
                                "include": [f"{RULES_DIR}/*.toml"]}
    if answers.state_dir:
        settings["state_dir"] = answers.state_dir
    destinations: dict[str, Any] = {}
    if answers.discord_url is not None:
        destinations["discord"] = {"type": "discord", "url_file": f"{CREDENTIALS}/discord",
                                   "min_severity": "warning"}
    if answers.telegram_token is not None:
        telegram: dict[str, Any] = {"type": "telegram", "token_file": f"{CREDENTIALS}/telegram",
                                    "chat_id": answers.telegram_chat, "min_severity": "warning"}
        if answers.telegram_api.rstrip("/") != DEFAULT_TELEGRAM_API:
            telegram["api_url"] = answers.telegram_api
        destinations["telegram"] = telegram
    if not destinations:
        destinations["console"] = {"type": "console"}
    return {"logwatch": settings, "destinations": destinations}


#: rules.d/local.toml: the user's own place, examples only (the rules come from the packs)
LOCAL_RULES = """\
# Your own rules and changes to the packs' rules. Every *.toml file here is read.
#
# Change a pack's rule by id, without copying it (`logwatch packs` lists them):
#
# [overrides.ssh-auth-failure]
# threshold = { count = 10, within = "10m", by = "{ip}" }
#
# [overrides.ssh-login]
# enabled = false
#
# A rule of your own (docs/rules.md explains each key):
#
# [[rules]]
# id = "app-panic"
# source = "system"
# match = 'myapp\\[\\d+\\]: panic: (?P<why>.*)'
# severity = "critical"
# title = "myapp panicked on {host}"
# [[rules.tests]]
# line = "Mar  3 12:00:01 web-1 myapp[42]: panic: out of cheese"
"""
