"""The policy's saved rows: the text written is what :func:`logwatch.state.encode` writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logwatch.policy.dedup import Suppression
from logwatch.policy.resolve import Incident
from logwatch.policy.storm import Held, Storm
from logwatch.policy.tables import encode, flat
from logwatch.policy.threshold import window_of, window_text
from logwatch.state import encode as state_encode

#: what rows hold: hostile text (log lines), floats of any kind, big ints, nesting
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
            | st.text(st.characters(codec=None)))
_TREES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@given(_TREES)
def test_rows_are_encoded_as_the_state_encodes_values(value: object) -> None:
    """Same text, byte for byte, as the standard library's ``json.dumps`` (ASCII, compact
    separators, NaN as JSON's extension): ``tables.encode`` is ``state.encode``, whose C
    encoder is made once (``state.one_shot_encoder``)."""
    assert encode(value) == json.dumps(value, separators=(",", ":"))


@given(st.lists(st.tuples(st.floats(0, 200, allow_nan=False), st.booleans(), st.booleans()),
                max_size=60))
def test_a_storms_saved_text_is_its_saved_form(steps: list[tuple[float, bool, bool]]) -> None:
    """The rate buckets' JSON kept as alerts come and buckets leave (the last one's made
    again only when a newer one starts or at a save) is the whole encoding of the saved
    form, saved after any number of alerts, and loads back to the same storm."""
    storm = Storm()
    for t, drop, save in steps:
        storm.add(1_750_000_000 + t)
        if drop:
            storm.count(1_750_000_000 + t, 30)
        if save:
            assert storm.saved_text() == state_encode(storm.dump())
    assert storm.saved_text() == state_encode(storm.dump())
    loaded = Storm.load(json.loads(storm.saved_text()))
    assert loaded.saved_text() == storm.saved_text()
    assert loaded.count(1_750_000_300, 60) == storm.count(1_750_000_300, 60)


@given(st.lists(st.tuples(st.sampled_from(["a", "b\x1fk", "é\x1e\"t\"", "\ud800"]),
                          st.integers(0, 3), st.booleans()), max_size=40))
def test_a_storms_held_entries_are_saved_as_they_change(
        steps: list[tuple[str, int, bool]]) -> None:
    """The held entries' texts kept between saves (only a changed one is made again) are
    the whole encoding, whatever the keys and titles, as entries come, count and go."""
    storm = Storm()
    for key, hits, clear in steps:
        if clear:
            storm.held.clear()  # a digest went out
        held = storm.held.setdefault(key, Held("rule", f"title {key}", "warning", key=key))
        held.hits += hits
        held.alerts += 1
        assert storm.saved_text() == state_encode(storm.dump())
        assert storm.held_json.keys() == storm.held.keys()


#: times as rows hold them: floats (event times), ints (a test's clock), JSON's extensions
_TIMES = st.floats() | st.integers(-2**60, 2**60)
_TEXT = st.text(st.characters(codec=None), max_size=40)


def _fields(row: Suppression | Incident) -> dict[str, object]:
    """The saved form of a row as it was before its text was kept: its fields but ``head``."""
    return {name: value for name, value in flat(row).items() if name != "head"}


@given(_TEXT, _TEXT, _TEXT, _TIMES, st.lists(st.tuples(_TEXT, _TIMES), max_size=4))
def test_a_dedup_windows_saved_text_is_its_fields_encoded(
        opener: str, title: str, source: str, until: float,
        hits: list[tuple[str, float]]) -> None:
    """Same text as the fields encoded as a dict, after each hit held back (the opening
    fields' text is kept from the first save), and it loads back to the same window."""
    held = Suppression(opener, title, source, until)
    assert held.saved_text() == state_encode(_fields(held))
    for line, t in hits:
        held.count(line, t)
        assert held.saved_text() == state_encode(_fields(held))
    loaded = Suppression(**json.loads(held.saved_text()))
    assert loaded.saved_text() == held.saved_text()


@pytest.mark.parametrize("row", [
    {}, {"suppressed": 0.0}, {"first": 0}, {"last": -0.0}, {"first": 0.0, "last": 0.0},
    {"line": "x"}, {"suppressed": 0, "first": 0.0, "last": 0.0, "line": ""}])
def test_a_dedup_window_that_held_nothing_back_is_written_as_its_fields(
        row: dict[str, object]) -> None:
    """The form kept for a window that held nothing back is used only when it is that
    window's text: a loaded row of zeros of other kinds (``0``, ``-0.0``, ``0.0`` counts)
    is written as its own fields say."""
    loaded = Suppression(**{"opener": "o", "title": "t", "source": "s", "until": 1.5, **row})
    assert loaded.saved_text() == state_encode(_fields(loaded))


@given(_TEXT, _TEXT, _TEXT, st.lists(_TIMES, min_size=1, max_size=4))
def test_an_incidents_saved_text_is_its_fields_encoded(
        opener: str, title: str, source: str, times: list[float]) -> None:
    incident = Incident(opener, title, source, times[0])
    for t in times:
        incident.last = t
        assert incident.saved_text() == state_encode(_fields(incident))
    assert Incident(**json.loads(incident.saved_text())).saved_text() == incident.saved_text()


@given(st.lists(_TIMES, min_size=1, max_size=6))
def test_a_threshold_windows_saved_text_is_its_times_encoded(times: list[float]) -> None:
    """A window (a list of hit times) is written as the encoder writes the list, byte for
    byte (one time, or several, or JSON's extensions), and loads back to the same times."""
    assert window_text(times) == state_encode(times)
    assert window_text(window_of(json.loads(window_text(times)))) == window_text(times)
