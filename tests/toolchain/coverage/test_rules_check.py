"""rules_check: the diff of binary facts against a rule table, and its record and text."""

from __future__ import annotations

import pytest

from retinaface_coreml_toolchain.coverage.ep_binary import read_binary
from retinaface_coreml_toolchain.coverage.rules import TABLES
from retinaface_coreml_toolchain.coverage.rules_check import (
    RulesStale,
    check_stale,
    compare,
    diff_fact,
    family,
    render,
)
from tests.toolchain.coverage.ep_blobs import blob, class_name, table_blob


@pytest.mark.parametrize("key", sorted(TABLES))
def test_a_binary_matching_the_table_is_clean(key: tuple[int, int]) -> None:
    table = TABLES[key]
    check = compare(f"{key[0]}.{key[1]}.0", table, read_binary(table_blob(table)), wheel="w.whl")
    assert not check.stale, render(check.to_dict())
    check_stale(check)  # no exception
    assert check.counts["builders"] == len(set(table.builders.values()))


def test_the_diff_names_what_changed() -> None:
    table = TABLES[(1, 24)]
    messages = set(table.messages)
    messages.remove("Gather does not support scalar 'indices'")  # gone
    messages.remove("Pad requires input shape to be at least 2d, input is ")  # reworded:
    messages.add("NeuralNetwork Pad requires input shape to be at least 2d, input is ")
    messages.add("Tile does not support input rank greater than 5. Input rank: ")  # new
    image = blob(
        builders=[*map(class_name, set(table.builders.values())), "Tile"],
        mlprogram=[*map(class_name, table.mlprogram), "Pad", "Tile"],
        trivial=["Tile"],
        messages=messages,
    )
    check = compare("1.28.0", table, read_binary(image), wheel="w.whl")
    assert check.stale
    diffs = {d.fact: d for d in check.diffs}
    assert diffs["builders"].new == ("tile",) and diffs["builders"].gone == ()
    assert diffs["mlprogram"].new == ("pad", "tile")
    assert diffs["trivial"].new == ("tile",)
    assert diffs["messages"].new == (
        "Tile does not support input rank greater than 5. Input rank: ",
    )
    assert diffs["messages"].gone == ("Gather does not support scalar 'indices'",)
    assert diffs["messages"].changed == (
        (
            "Pad requires input shape to be at least 2d, input is ",
            "NeuralNetwork Pad requires input shape to be at least 2d, input is ",
        ),
    )
    text = render(check.to_dict())
    assert "against the 1.24 rule table: STALE" in text
    assert "+ 'tile'" in text and "- \"Gather does not support scalar 'indices'\"" in text
    with pytest.raises(
        RulesStale, match=r"1\.24 rule table is stale for onnxruntime 1\.28\.0"
    ) as err:
        check_stale(check)
    assert err.value.return_code == 1


def test_a_builder_missing_from_the_binary_is_gone() -> None:
    found = diff_fact("builders", frozenset({"pad", "lrn"}), frozenset({"pad"}))
    assert (found.new, found.gone, found.changed) == ((), ("lrn",), ())


def test_unrelated_strings_are_not_paired_as_changed() -> None:
    found = diff_fact(
        "messages", frozenset({"Pad mode is wrong"}), frozenset({"GatherND: 'indices' dtype"})
    )
    assert found.changed == () and found.new and found.gone


def test_family_names() -> None:
    assert [family(c) for c in ("BatchNormalization", "GatherND", "LRN")] == [
        "batchnorm",
        "gathernd",
        "lrn",
    ]


def test_a_release_past_the_modelled_series_says_the_predictor_refuses_it() -> None:
    table = TABLES[(1, 32)]
    check = compare("1.33.0", table, read_binary(table_blob(table)), wheel="w.whl")
    assert not check.stale and not check.predictor_accepts
    assert "the predictor refuses 1.33.0" in render(check.to_dict())
