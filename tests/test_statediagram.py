"""The state diagram is drawn from the model's table: one arrow per row, nothing else."""

import re
from html import unescape

from timewait.model import states as S
from timewait.statediagram import CLOSING_CORNER, LABEL_POS, QUIET, least_width, state_diagram_svg

# The narrowest column of the desktop theme, measured in Chromium on the built page
# (book/open-close.html in a 1200 px window; 672 px at 1280 px).
DESKTOP_COLUMN_PX = 608


def _arrows(svg: str) -> list:
    return sorted(
        (unescape(a), unescape(b), unescape(e))
        for a, b, e in re.findall(
            r'<g class="tcp-arrow" data-from="([^"]*)" data-to="([^"]*)" data-event="([^"]*)"', svg
        )
    )


def test_every_row_of_the_table_is_one_arrow_and_every_arrow_a_row():
    svg = state_diagram_svg()
    table = sorted((state, nxt, event) for (state, event), (nxt, _) in S.TRANSITIONS.items())
    assert _arrows(svg) == table


def test_an_arrow_missing_from_the_table_would_be_noticed(monkeypatch):
    table = dict(S.TRANSITIONS)
    del table[(S.TIME_WAIT, S.TIMEOUT_2MSL)]
    monkeypatch.setattr(S, "TRANSITIONS", table)
    assert (S.TIME_WAIT, S.CLOSED, S.TIMEOUT_2MSL) not in _arrows(state_diagram_svg())


def test_every_state_has_a_box_and_the_picture_a_name():
    svg = state_diagram_svg()
    boxes = set(re.findall(r'<g class="tcp-state" data-state="([A-Z_0-9]+)"', svg))
    assert boxes == set(S.STATES)
    assert set(CLOSING_CORNER) <= boxes
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg


def test_every_labelled_row_has_one_label_and_every_placed_label_a_row():
    svg = state_diagram_svg()
    labels = sorted(
        (unescape(a), unescape(b), unescape(e))
        for a, b, e in re.findall(
            r'<g class="tcp-label" data-from="([^"]*)" data-to="([^"]*)" data-event="([^"]*)"', svg
        )
    )
    table = sorted(
        (state, nxt, event) for (state, event), (nxt, _) in S.TRANSITIONS.items() if event not in QUIET
    )
    assert labels == table
    assert set(LABEL_POS) <= set(S.TRANSITIONS)


def test_the_diagram_fits_the_desktop_column_with_10_px_labels():
    assert least_width() <= DESKTOP_COLUMN_PX
    assert f"min-width:{least_width()}px" in state_diagram_svg()
