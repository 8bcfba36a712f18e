"""Series columns become one dict per row (``store/history/_series.as_dicts``)."""

from __future__ import annotations

import pytest

from tokenpulse.store.history._series import as_dicts


def test_columns_become_dicts_in_field_order() -> None:
    rows = as_dicts(("t", "open", "samples"), [[1, 2], ["a", "b"], [3, 4]])
    assert rows == [{"t": 1, "open": "a", "samples": 3}, {"t": 2, "open": "b", "samples": 4}]
    assert [list(row) for row in rows] == [["t", "open", "samples"]] * 2


def test_one_field_and_no_rows() -> None:
    assert as_dicts(("t",), [[5, 6]]) == [{"t": 5}, {"t": 6}]
    assert as_dicts(("t", "close"), [[], []]) == []


def test_each_row_is_its_own_dict() -> None:
    rows = as_dicts(("t", "close"), [[1, 2], [None, None]])
    rows[0]["close"] = 9
    assert rows[1]["close"] is None


@pytest.mark.parametrize("names", [(), ("t", "x) or (y"), ("t", "1a"), ("t", "")])
def test_anything_but_field_names_is_refused(names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="not field names"):
        as_dicts(names, [[1] for _ in names])
