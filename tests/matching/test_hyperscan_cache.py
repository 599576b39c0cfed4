"""Compiled line filters kept on disk: reused when trusted, rebuilt when anything is off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import regex

from logwatch.matching import hyperscan_cache, hyperscan_filter
from logwatch.matching.hyperscan_filter import make_line_filter

hyperscan = pytest.importorskip("hyperscan")

PATTERNS = [regex.compile(r"Failed password for (?P<user>\S+)"), regex.compile(r"CRON\[\d+\]")]
DATA = b"sshd[1]: Failed password for root\nCRON[2]: x\nnothing\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CACHE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "logwatch"


def reports() -> tuple[list[int], list[int], frozenset[int]]:
    """What the loosened and the exact databases report, and which patterns are exact."""
    line_filter = make_line_filter(PATTERNS, prefer="hyperscan")
    assert line_filter is not None
    loose, _ = line_filter.lines(DATA, exact=False)
    precise, exact = line_filter.lines(DATA)
    return sorted(loose), sorted(precise), exact


def test_saved_then_loaded_with_the_same_results(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = reports()
    assert first[2] == {0, 1}
    saved = sorted(cache.glob("linefilter-*.hsdb"))
    assert len(saved) == 2  # the loosened expressions, and the exact ones
    assert cache.stat().st_mode & 0o777 == 0o700
    loaded: list[str] = []
    real_load = hyperscan_cache.load
    monkeypatch.setattr(hyperscan_cache, "load", lambda hs, name: loaded.append(name) or real_load(hs, name))
    assert reports() == first
    assert sorted(loaded) == [path.name for path in saved]
    assert all(hyperscan_cache.load(hyperscan, path.name) is not None for path in saved)


def test_an_edited_rule_gets_its_own_file(cache: Path) -> None:
    reports()
    make_line_filter([regex.compile("something else")], prefer="hyperscan")
    assert len(list(cache.glob("linefilter-*.hsdb"))) == 4


def test_corrupt_or_writable_files_are_not_trusted(cache: Path) -> None:
    first = reports()
    saved = next(cache.glob("linefilter-*.hsdb"))
    saved.write_bytes(hyperscan_cache.FORMAT + b"[[0, 0]]\nnot a database")
    assert hyperscan_cache.load(hyperscan, saved.name) is None
    assert reports() == first  # compiled again, and saved again
    assert hyperscan_cache.load(hyperscan, saved.name) is not None
    saved.chmod(0o666)
    assert hyperscan_cache.load(hyperscan, saved.name) is None
    saved.chmod(0o600)
    cache.chmod(0o777)
    assert hyperscan_cache.load(hyperscan, saved.name) is None


def test_systemd_cache_directory_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_DIRECTORY", f"{tmp_path / 'unit'}:{tmp_path / 'other'}")
    assert hyperscan_cache.cache_dir() == tmp_path / "unit"


def test_the_same_expressions_for_other_patterns_get_their_own_file(cache: Path) -> None:
    """[A, B] and [A, X, B] (X not covered) share expressions, not pattern indexes."""
    a, b = PATTERNS
    uncovered = regex.compile(r"\p{Lu}+")
    two = make_line_filter([a, b], prefer="hyperscan")
    three = make_line_filter([a, uncovered, b], prefer="hyperscan")
    assert two is not None and three is not None
    assert (two.covered, three.covered) == ((0, 1), (0, 2))


def test_translations_saved_then_read_instead_of_translated(cache: Path) -> None:
    """A start with rules seen before translates nothing: the translations are read back."""
    first = hyperscan_filter._Remembered()
    pattern = regex.compile(r"Failed (?!publickey)\S+ for (?P<user>\S+)")
    computed = first.get("tight", pattern, lambda: b"expression")
    first.get("alternatives", pattern, lambda: (b"a", b"b"))
    first.get("exact", pattern, lambda: None)
    first.save()
    assert computed == b"expression"
    [saved] = cache.glob("translations-*.json")
    assert saved.stat().st_mode & 0o077 == 0

    def never() -> bytes:
        raise AssertionError("translated again")

    again = hyperscan_filter._Remembered()
    assert again.get("tight", pattern, never) == b"expression"
    assert again.get("alternatives", pattern, never) == (b"a", b"b")
    assert again.get("exact", pattern, never) is None
    # another pattern, or other flags, is another translation
    assert again.get("tight", regex.compile(pattern.pattern, regex.I), lambda: b"x") == b"x"


def test_damaged_translations_are_translated_again(cache: Path) -> None:
    remembered = hyperscan_filter._Remembered()
    pattern = regex.compile("CRON")
    remembered.get("exact", pattern, lambda: b"CRON")
    remembered.save()
    [saved] = cache.glob("translations-*.json")
    damaged = {f"exact {int(pattern.flags)} CRON": 42,
               f"alternatives {int(pattern.flags)} CRON": "one expression, not a list"}
    saved.write_bytes(hyperscan_cache.TRANSLATIONS_FORMAT + json.dumps(damaged).encode())
    assert hyperscan_filter._Remembered().get("exact", pattern, lambda: b"again") == b"again"
    assert hyperscan_filter._Remembered().get("alternatives", pattern, lambda: (b"a",)) == (b"a",)
    saved.write_bytes(b"not json at all")
    assert hyperscan_filter._Remembered().get("exact", pattern, lambda: b"again") == b"again"
    saved.chmod(0o666)
    assert hyperscan_cache.load_translations(saved.name) == {}
