"""``logwatch init``: the starter config, its secret files, the questions it asks."""

from __future__ import annotations

import io
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logwatch import packs
from logwatch.commands.check import check_config
from logwatch.commands.init import detect_packs, write_starter
from logwatch.config import (
    DEFAULT_TELEGRAM_API,
    ConsoleDestination,
    DiscordDestination,
    TelegramDestination,
    load_config,
)
from logwatch.errors import LogwatchError
from tests.fakeapi import BOT_TOKEN, FakeAPI
from tests.helpers import logwatch

DISCORD_URL = "https://discord.com/api/webhooks/1234/SECRET-webhook-token-xyz"
OTHER_TOKEN = "987654:SECRET-other-bot-token-abcdef"  # noqa: S105 - fake credential


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def scripted(*answers: str) -> tuple[Callable[[str], str], list[str]]:
    """An ``ask`` that gives ``answers`` in order (EOFError after), and the prompts it saw."""
    prompts: list[str] = []
    queue = list(answers)

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        if not queue:
            raise EOFError
        return queue.pop(0)

    return ask, prompts


def everything_written(root: Path) -> str:
    """Every file under ``root`` (the secret files aside), for leak checks."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob("*"))
                     if p.is_file() and p.parent.name != "credentials")


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    """The fake Telegram (and Discord) API on 127.0.0.1."""
    with FakeAPI() as api:
        yield api


def add_chats(fake: FakeAPI, *chats: tuple[int, str, str]) -> None:
    """Make the bot have seen ``chats`` (id, type, title) in getUpdates."""
    fake.updates = [{"update_id": n, "message": {"chat": {"id": cid, "type": kind, "title": title}}}
                    for n, (cid, kind, title) in enumerate(chats, start=1)]


class TestWrites:
    """What init writes, with which permissions, and that it loads."""

    def test_discord_and_telegram(self, tmp_path: Path) -> None:
        """Config, rules and 0600 secrets; the config loads and every rule test passes."""
        config = tmp_path / "etc" / "logwatch.toml"
        out = io.StringIO()
        written = write_starter(config, discord_url=DISCORD_URL, telegram_token=BOT_TOKEN,
                                telegram_chat="-1001234567890", out=out, packs=["ssh", "kernel"])
        creds = config.parent / "credentials"
        assert written == [creds / "discord", creds / "telegram",
                           config.parent / "rules.d" / "local.toml", config]
        assert mode(creds) == 0o700
        assert mode(creds / "discord") == 0o600
        assert mode(creds / "telegram") == 0o600
        assert mode(config) == 0o644  # the service's dynamic user must read it

        loaded = load_config(config, environ={})
        discord, telegram = loaded.destinations["discord"], loaded.destinations["telegram"]
        assert isinstance(discord, DiscordDestination)
        assert discord.url.reveal() == DISCORD_URL
        assert isinstance(telegram, TelegramDestination)
        assert telegram.token.reveal() == BOT_TOKEN
        assert telegram.chat_id == -1001234567890
        assert telegram.api_url == DEFAULT_TELEGRAM_API
        assert loaded.warnings == ()  # no inline secret
        assert loaded.settings.packs == ("ssh", "kernel")
        assert {r.id for r in loaded.rules} == set(packs.load("ssh").rules) | set(
            packs.load("kernel").rules)
        assert {discord.min_severity, telegram.min_severity} == {"warning"}
        assert set(loaded.sources) == {"auth", "kernel"}
        report = check_config(loaded)
        assert report.failures == []
        assert report.tests_run > 2 * len(loaded.rules)

        for secret in (DISCORD_URL, "SECRET", BOT_TOKEN.split(":")[1]):
            assert secret not in everything_written(tmp_path)
            assert secret not in out.getvalue()

    def test_nothing_given_is_console(self, tmp_path: Path) -> None:
        """No webhook, no bot: a console destination, and the user is told so."""
        config = tmp_path / "logwatch.toml"
        out = io.StringIO()
        write_starter(config, discord_url=None, telegram_token=None, telegram_chat=None, out=out)
        loaded = load_config(config, environ={})
        assert list(loaded.destinations) == ["console"]
        assert isinstance(loaded.destinations["console"], ConsoleDestination)
        assert "console" in out.getvalue()
        # the unit bind-mounts credentials over this directory: it must exist even empty
        assert list((tmp_path / "credentials").iterdir()) == []

    def test_state_dir(self, tmp_path: Path) -> None:
        """--state-dir ends up in [logwatch]."""
        config = tmp_path / "logwatch.toml"
        write_starter(config, discord_url=None, telegram_token=None, telegram_chat=None,
                      state_dir=str(tmp_path / "state"), out=io.StringIO())
        assert load_config(config, environ={}).settings.state_dir == tmp_path / "state"

    def test_credentials_dir_tightened(self, tmp_path: Path) -> None:
        """An existing, too open credentials directory is made private."""
        (tmp_path / "credentials").mkdir(mode=0o755)
        (tmp_path / "credentials").chmod(0o755)
        write_starter(tmp_path / "logwatch.toml", discord_url=DISCORD_URL, telegram_token=None,
                      telegram_chat=None, out=io.StringIO())
        assert mode(tmp_path / "credentials") == 0o700


class TestRefuses:
    """Existing files are kept unless --force; bad secrets are refused without echoing them."""

    def test_existing_config(self, tmp_path: Path) -> None:
        """An existing config is not overwritten, and nothing else is written either."""
        config = tmp_path / "logwatch.toml"
        config.write_text("# mine\n", encoding="utf-8")
        ask, prompts = scripted(DISCORD_URL)
        with pytest.raises(LogwatchError, match=r"already exist.*--force"):
            write_starter(config, discord_url=None, telegram_token=None, telegram_chat=None,
                          ask=ask, out=io.StringIO())
        assert config.read_text(encoding="utf-8") == "# mine\n"
        assert prompts == []  # refused before asking for a secret
        assert sorted(p.name for p in tmp_path.iterdir()) == ["logwatch.toml"]

    def test_existing_secret(self, tmp_path: Path) -> None:
        """An existing secret file is not replaced either."""
        (tmp_path / "credentials").mkdir()
        (tmp_path / "credentials" / "discord").write_text("old\n", encoding="utf-8")
        with pytest.raises(LogwatchError, match="credentials/discord already exist"):
            write_starter(tmp_path / "logwatch.toml", discord_url=DISCORD_URL,
                          telegram_token=None, telegram_chat=None, out=io.StringIO())
        assert (tmp_path / "credentials" / "discord").read_text(encoding="utf-8") == "old\n"

    def test_force(self, tmp_path: Path) -> None:
        """--force overwrites config and secrets."""
        config = tmp_path / "logwatch.toml"
        write_starter(config, discord_url="https://example.invalid/old-hook", telegram_token=None,
                      telegram_chat=None, out=io.StringIO())
        write_starter(config, discord_url=DISCORD_URL, telegram_token=None, telegram_chat=None,
                      force=True, out=io.StringIO())
        dest = load_config(config, environ={}).destinations["discord"]
        assert isinstance(dest, DiscordDestination)
        assert dest.url.reveal() == DISCORD_URL

    def test_unwritable_place(self, tmp_path: Path) -> None:
        """A directory that cannot be made is one error line naming it."""
        (tmp_path / "file").write_text("", encoding="utf-8")
        with pytest.raises(LogwatchError, match=r"cannot write .*/file/credentials: "):
            write_starter(tmp_path / "file" / "logwatch.toml", discord_url=None,
                          telegram_token=None, telegram_chat=None, out=io.StringIO())

    def test_unwritable_file(self, tmp_path: Path) -> None:
        """A file that cannot be written is named (not the temporary file)."""
        (tmp_path / "rules.d").mkdir()
        (tmp_path / "rules.d" / "local.toml").mkdir()  # a directory where the file goes
        with pytest.raises(LogwatchError, match=r"cannot write .*rules\.d/local\.toml: "):
            write_starter(tmp_path / "logwatch.toml", discord_url=None, telegram_token=None,
                          telegram_chat=None, force=True, out=io.StringIO())
        assert not (tmp_path / "logwatch.toml").exists()  # the config comes last
        assert [p.name for p in (tmp_path / "rules.d").iterdir()] == ["local.toml"]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"discord_url": "discord.com/SECRET-hook"}, "must start with https://"),
            ({"telegram_token": "SECRET-not-a-token"}, "should look like"),
            ({"telegram_chat": "-100"}, "needs --telegram-token-file"),
            ({"telegram_token": BOT_TOKEN, "telegram_chat": "ops room"}, "expected a number"),
        ],
    )
    def test_bad_values(self, tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
        """Each bad value is one clear error that does not repeat a secret."""
        args: dict[str, str | None] = {"discord_url": None, "telegram_token": None,
                                       "telegram_chat": None, **kwargs}
        with pytest.raises(LogwatchError, match=message) as info:
            write_starter(tmp_path / "logwatch.toml", out=io.StringIO(), **args)
        assert "SECRET" not in str(info.value)
        assert not (tmp_path / "logwatch.toml").exists()


class TestInteractive:
    """With ``ask``: questions for what is missing, Telegram chats offered."""

    def test_asks_for_what_is_missing(self, tmp_path: Path) -> None:
        """Discord given on the command line is not asked; an empty Telegram answer skips it."""
        ask, prompts = scripted("")
        config = tmp_path / "logwatch.toml"
        write_starter(config, discord_url=DISCORD_URL, telegram_token=None, telegram_chat=None,
                      ask=ask, out=io.StringIO())
        assert len(prompts) == 1
        assert "Telegram bot token" in prompts[0]
        assert list(load_config(config, environ={}).destinations) == ["discord"]

    def test_secrets_asked_without_echo(self, tmp_path: Path, fake: FakeAPI) -> None:
        """URL and token go through ``ask_secret`` (getpass); the chat through ``ask``."""
        add_chats(fake, (-100, "group", "Ops"), (42, "private", "Alice"))
        ask, prompts = scripted("1")
        ask_secret, secret_prompts = scripted(DISCORD_URL, BOT_TOKEN)
        config = tmp_path / "logwatch.toml"
        write_starter(config, discord_url=None, telegram_token=None, telegram_chat=None,
                      ask=ask, ask_secret=ask_secret, out=io.StringIO(), telegram_api=fake.base)
        assert ["Discord" in secret_prompts[0], "Telegram" in secret_prompts[1]] == [True, True]
        assert len(prompts) == 1
        assert set(load_config(config, environ={}).destinations) == {"discord", "telegram"}

    def test_wrong_answer_is_asked_again(self, tmp_path: Path) -> None:
        """A malformed URL gets a reason and a second chance, without being echoed."""
        ask, prompts = scripted("discord.com/SECRET-hook", DISCORD_URL, "")
        out = io.StringIO()
        write_starter(tmp_path / "logwatch.toml", discord_url=None, telegram_token=None,
                      telegram_chat=None, ask=ask, out=out)
        assert prompts[0] == prompts[1]
        assert "try again" in out.getvalue()
        assert "SECRET" not in out.getvalue()
        assert (tmp_path / "credentials" / "discord").read_text(encoding="utf-8").strip() \
            == DISCORD_URL

    def test_gives_up_after_three_wrong_answers(self, tmp_path: Path) -> None:
        """Three wrong answers end init with the reason."""
        ask, prompts = scripted("nope", "nope", "nope")
        with pytest.raises(LogwatchError, match="https://"):
            write_starter(tmp_path / "logwatch.toml", discord_url=None, telegram_token=None,
                          telegram_chat=None, ask=ask, out=io.StringIO())
        assert len(prompts) == 3

    def test_end_of_input(self, tmp_path: Path) -> None:
        """Ctrl-D at a question ends init cleanly, nothing written."""
        ask, _ = scripted()
        with pytest.raises(LogwatchError, match="end of input"):
            write_starter(tmp_path / "logwatch.toml", discord_url=None, telegram_token=None,
                          telegram_chat=None, ask=ask, out=io.StringIO())
        assert list(tmp_path.iterdir()) == []

    def test_offers_the_bots_chats(self, tmp_path: Path, fake: FakeAPI) -> None:
        """getUpdates on a real local server: chats listed, one picked by its number."""
        add_chats(fake, (-1001234567890, "supergroup", "Ops"), (42, "private", "Alice"))
        ask, prompts = scripted("", BOT_TOKEN, "2")
        out = io.StringIO()
        config = tmp_path / "logwatch.toml"
        write_starter(config, discord_url=None, telegram_token=None, telegram_chat=None,
                      ask=ask, out=out, telegram_api=fake.base)
        assert "1. -1001234567890 (supergroup) Ops" in out.getvalue()
        assert "2. 42 (private) Alice" in out.getvalue()
        assert "1-2" in prompts[-1]
        dest = load_config(config, environ={}).destinations["telegram"]
        assert isinstance(dest, TelegramDestination)
        assert dest.chat_id == 42
        assert dest.api_url == fake.base
        assert BOT_TOKEN not in out.getvalue()
        assert BOT_TOKEN not in everything_written(tmp_path)

    def test_chat_id_typed_when_none_seen(self, tmp_path: Path, fake: FakeAPI) -> None:
        """No chat seen yet: the user is told how to make one appear, and may type an id."""
        ask, _ = scripted("", BOT_TOKEN, "-1009")
        out = io.StringIO()
        config = tmp_path / "logwatch.toml"
        write_starter(config, discord_url=None, telegram_token=None, telegram_chat=None,
                      ask=ask, out=out, telegram_api=fake.base)
        assert "seen no chat yet" in out.getvalue()
        dest = load_config(config, environ={}).destinations["telegram"]
        assert isinstance(dest, TelegramDestination)
        assert dest.chat_id == -1009


class TestTelegramWithoutChat:
    """Non-interactive, a token but no --telegram-chat."""

    def test_the_only_chat_is_taken(self, tmp_path: Path, fake: FakeAPI) -> None:
        """One chat seen: use it and say so."""
        add_chats(fake, (-1001234567890, "supergroup", "Ops"))
        out = io.StringIO()
        config = tmp_path / "logwatch.toml"
        write_starter(config, discord_url=None, telegram_token=BOT_TOKEN, telegram_chat=None,
                      out=out, telegram_api=fake.base)
        assert "only chat" in out.getvalue()
        dest = load_config(config, environ={}).destinations["telegram"]
        assert isinstance(dest, TelegramDestination)
        assert dest.chat_id == -1001234567890

    def test_several_chats_need_a_choice(self, tmp_path: Path, fake: FakeAPI) -> None:
        """Several chats: an error that lists them."""
        add_chats(fake, (-100, "group", "Ops"), (42, "private", "Alice"))
        with pytest.raises(LogwatchError, match=r"--telegram-chat.*-100 \(group\) Ops"):
            write_starter(tmp_path / "logwatch.toml", discord_url=None, telegram_token=BOT_TOKEN,
                          telegram_chat=None, out=io.StringIO(), telegram_api=fake.base)

    def test_bad_token_is_explained_without_the_token(self, tmp_path: Path,
                                                      fake: FakeAPI) -> None:
        """The API refuses the token: init stops there (no "no chat yet", nothing written),
        the reason is shown, the token is not."""
        out = io.StringIO()
        with pytest.raises(LogwatchError, match="Telegram refused the bot token") as info:
            write_starter(tmp_path / "logwatch.toml", discord_url=None, telegram_token=OTHER_TOKEN,
                          telegram_chat=None, out=out, telegram_api=fake.base,
                          ask=lambda prompt: "" if "Discord" in prompt else "-100")
        assert "nothing was written" in str(info.value)
        assert "no chat yet" not in out.getvalue()
        assert "SECRET" not in out.getvalue() + str(info.value)
        assert list(tmp_path.iterdir()) == []


class TestCommandLine:
    """``logwatch init`` as a real subprocess."""

    def test_init_then_check(self, tmp_path: Path, fake: FakeAPI) -> None:
        """init asks Discord about the webhook, writes, check accepts it; none prints it."""
        config = tmp_path / "logwatch.toml"
        result = logwatch("init", "-c", str(config), "--discord-url", fake.discord_url(),
                          "--non-interactive")
        assert result.returncode == 0, result.stderr
        assert "Discord: the webhook exists." in result.stdout
        assert f"wrote {config}" in result.stdout
        checked = logwatch("check", "-c", str(config))
        assert checked.returncode == 0, checked.stderr
        assert ": OK: " in checked.stdout and " tests passed" in checked.stdout
        for output in (result.stdout, result.stderr, checked.stdout, checked.stderr):
            assert "SECRET" not in output

    def test_a_webhook_discord_refuses_stops_init(self, tmp_path: Path, fake: FakeAPI) -> None:
        """A deleted or mistyped webhook (Discord says 404): one line, nothing written."""
        config = tmp_path / "logwatch.toml"
        gone = fake.discord_url().replace("/api/webhooks/", "/api/webhooks/9")
        result = logwatch("init", "-c", str(config), "--discord-url", gone,
                          "--non-interactive")
        assert result.returncode == 1
        assert "Discord refused the webhook URL (HTTP 404)" in result.stderr
        assert "nothing was written" in result.stderr
        assert not config.exists()
        assert gone not in result.stdout + result.stderr

    def test_an_unreachable_webhook_is_written_with_a_word(self, tmp_path: Path) -> None:
        """No answer (offline install): said, and the config is written; --no-check skips it."""
        config = tmp_path / "logwatch.toml"
        closed = "http://127.0.0.1:9/api/webhooks/1/SECRET-x"
        result = logwatch("init", "-c", str(config), "--discord-url", closed,
                          "--non-interactive")
        assert result.returncode == 0, result.stderr
        assert "Could not ask Discord about the webhook" in result.stdout
        assert "SECRET" not in result.stdout + result.stderr
        quiet = logwatch("init", "-c", str(tmp_path / "b" / "b.toml"), "--discord-url", closed,
                         "--non-interactive", "--no-check")
        assert quiet.returncode == 0, quiet.stderr
        assert "Discord" not in quiet.stdout

    def test_an_unedited_console_starter_is_replaced(self, tmp_path: Path,
                                                      fake: FakeAPI) -> None:
        """The package's console-only starter: `init` adds a webhook without --force; once
        the starter is edited, it is the user's and init refuses as always."""
        config = tmp_path / "logwatch.toml"
        assert logwatch("init", "-c", str(config), "--non-interactive").returncode == 0
        again = logwatch("init", "-c", str(config), "--non-interactive",
                         "--discord-url", fake.discord_url())
        assert again.returncode == 0, again.stderr
        assert 'url_file = "credentials/discord"' in config.read_text()
        mine = tmp_path / "mine"
        mine_config = mine / "logwatch.toml"
        assert logwatch("init", "-c", str(mine_config), "--non-interactive").returncode == 0
        mine_config.write_text(mine_config.read_text() + "# my note\n")
        refused = logwatch("init", "-c", str(mine_config), "--non-interactive")
        assert refused.returncode == 1
        assert "already exist(s)" in refused.stderr

    def test_init_refuses_overwrite(self, tmp_path: Path) -> None:
        """A second init over a config the user has edited fails with one line and exit 1."""
        config = tmp_path / "logwatch.toml"
        assert logwatch("init", "-c", str(config), "--non-interactive").returncode == 0
        (tmp_path / "rules.d" / "local.toml").write_text("# mine\n", encoding="utf-8")
        again = logwatch("init", "-c", str(config), "--non-interactive")
        assert again.returncode == 1
        assert "--force" in again.stderr
        assert "Traceback" not in again.stderr


class TestFirstHour:
    """What issue 14 found in a newcomer's first hour with init (point 10)."""

    def test_next_comes_after_the_wrote_lines(self, tmp_path: Path) -> None:
        config = tmp_path / "logwatch.toml"
        result = logwatch("init", "-c", str(config), "--non-interactive")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        wrote = [i for i, line in enumerate(lines) if line.startswith("wrote ")]
        assert wrote and lines.index(f"Next: logwatch check -c {config}") > max(wrote)
        assert f"`logwatch send-test -c {config} NAME`" in config.read_text()

    def test_the_token_comes_from_a_file_or_stdin_not_the_command_line(
            self, tmp_path: Path, fake: FakeAPI) -> None:
        add_chats(fake, (-100, "group", "Ops"))
        config = tmp_path / "logwatch.toml"
        result = logwatch("init", "-c", str(config), "--non-interactive",
                          "--telegram-token-file", "-", "--telegram-api", fake.base,
                          input_text=BOT_TOKEN + "\n")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "credentials" / "telegram").read_text().strip() == BOT_TOKEN
        old = logwatch("init", "-c", str(tmp_path / "x.toml"), "--telegram-token", BOT_TOKEN)
        assert old.returncode == 1  # gone: a secret on the command line is seen by every user
        assert "use --telegram-token-file" in old.stderr
        assert "SECRET" not in old.stderr

    def test_a_token_of_another_shape_is_asked_about_not_refused(
            self, tmp_path: Path, fake: FakeAPI) -> None:
        """A local Bot API server's or a test server's token: the service decides."""
        config = tmp_path / "logwatch.toml"
        with pytest.raises(LogwatchError, match="Telegram refused the bot token"):  # asked
            write_starter(config, discord_url=None, telegram_token="12:short",  # noqa: S106
                          telegram_chat=None, out=io.StringIO(), telegram_api=fake.base)


def test_init_enables_the_packs_whose_logs_are_here(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with an sshd log (and no journal) gets the ssh pack, not packs without logs."""
    log = tmp_path / "auth.log"
    log.write_text("Nov 28 10:00:01 h sshd[2]: Connection closed by 192.0.2.1 port 1\n",
                   encoding="utf-8")
    real = packs.load

    def only_here(name: str) -> packs.Pack:
        pack = real(name)
        files = {"auth": {"files": [str(log)]}} if name == "ssh" else {
            "x": {"files": [str(tmp_path / "missing.log")]}}
        return packs.Pack(**{**{f: getattr(pack, f) for f in pack.__slots__},  # type: ignore[arg-type]
                             "sources": files})

    monkeypatch.setattr(packs, "load", only_here)
    out = io.StringIO()
    no_journal = str(tmp_path / "no-journalctl")
    assert detect_packs(out, journalctl=no_journal) == ("ssh",)
    assert f"pack ssh: enabled (logs here: file {log})" in out.getvalue()
    monkeypatch.setattr(packs, "load", lambda name: packs.Pack(
        **{**{f: getattr(real(name), f) for f in real(name).__slots__},  # type: ignore[arg-type]
           "sources": {}}))
    assert detect_packs(io.StringIO(), journalctl=no_journal) == ("default",)
    config = tmp_path / "logwatch.toml"
    write_starter(config, discord_url=None, telegram_token=None, telegram_chat=None,
                  out=io.StringIO(), packs=["ssh"])
    assert load_config(config, environ={}).settings.packs == ("ssh",)


def test_a_hostile_webhook_reply_is_a_word_not_a_crash(tmp_path: Path) -> None:
    """A URL that answers JSON nested 100,000 deep: said once, the config written anyway."""
    import http.server
    import threading

    from logwatch.commands.init import check_webhook
    from logwatch.secret import Secret

    class Deep(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"[" * 100_000 + b"]" * 100_000
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deep)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = io.StringIO()
        check_webhook(Secret(f"http://127.0.0.1:{server.server_address[1]}/api/webhooks/1/x"),
                      out)
    finally:
        server.shutdown()
        server.server_close()
    assert "not as a Discord webhook does" in out.getvalue()
