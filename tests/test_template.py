"""Templates: a template with some values written in renders as the whole one does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logwatch.template import parse_template

_NAMES = st.sampled_from(["host", "rule", "ip", "user", "within", "count"])
_LITERAL = st.text(st.characters(codec=None, exclude_characters="{}"), max_size=6) | st.sampled_from(
    ["{{", "}}", " ", ""])
_TEXTS = st.text(st.characters(codec=None), max_size=8)


@given(st.lists(st.tuples(_LITERAL, st.none() | _NAMES), max_size=6), _LITERAL,
       st.dictionaries(_NAMES, _TEXTS), st.dictionaries(_NAMES, _TEXTS | st.none() | st.integers()))
def test_a_bound_template_renders_as_the_template_with_the_fixed_values_over_the_others(
        parts: list[tuple[str, str | None]], tail: str, fixed: dict[str, str],
        values: dict[str, object]) -> None:
    template = parse_template("".join(f"{text}{{{name}}}" if name else text
                                      for text, name in parts) + tail)
    bound = template.bind(fixed)
    assert bound.render(values) == template.render({**values, **fixed})
    assert bound.fields == template.fields - fixed.keys()
