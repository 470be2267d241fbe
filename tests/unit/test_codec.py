import math

import orjson
import pytest

from vtasks.core.errors import ArgumentNotJSON
from vtasks.wire import codec


def test_tuples_become_lists_and_plain_values_pass():
    args, kwargs = codec.normalize_arguments(((1, 2), "x", None, True, 1.5), {"k": {"a": [1]}})
    assert args == [[1, 2], "x", None, True, 1.5]
    assert kwargs == {"k": {"a": [1]}}


def test_plain_arguments_come_back_as_new_containers():
    given, keywords = ("a", None, True), {}
    args, kwargs = codec.normalize_arguments(given, keywords)
    assert args == ["a", None, True] and kwargs == {}
    assert kwargs is not keywords  # the stored call never aliases the caller's objects
    args, _ = codec.normalize_arguments(iter(["a", (1,), "b"]), {})  # read once
    assert args == ["a", [1], "b"]


def test_integers_pass_as_they_are_and_a_bad_keyword_is_named_after_plain_ones():
    keywords = {"user_id": 5, "flag": False}
    args, kwargs = codec.normalize_arguments((2**63 - 1, -(2**63)), keywords)
    assert args == [2**63 - 1, -(2**63)] and kwargs == keywords and kwargs is not keywords
    with pytest.raises(ArgumentNotJSON, match=r"kwargs\['big'\]: integer"):
        codec.normalize_arguments((), {"user_id": 5, "big": 2**64})


def test_the_first_bad_argument_is_named_after_plain_ones():
    with pytest.raises(ArgumentNotJSON, match=r"args\[2\]"):
        codec.normalize_arguments(("a", "b", object()), {})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "args[0]: nan is not a JSON number"),
        (math.inf, "args[0]: inf is not a JSON number"),
        ({1: "a"}, "args[0]: dict key 1 is not a string"),
        (object(), "args[0]: Unsupported type"),
        (2**70, "outside the 64-bit range"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_values_json_cannot_hold_are_refused_with_their_place(value, message):
    with pytest.raises(ArgumentNotJSON, match=message.replace("[", r"\[").replace("]", r"\]")):
        codec.normalize_arguments((value,), {})


def test_nested_kwarg_is_named():
    with pytest.raises(TypeError, match=r"kwargs\['outer'\]\['inner'\]\[1\]"):
        codec.normalize_arguments((), {"outer": {"inner": [1, object()]}})


def test_canonical_dump_sorts_keys():
    assert codec.dumps_canonical({"b": 1, "a": 2}) == codec.dumps_canonical({"a": 2, "b": 1})


def test_arguments_json_is_orjsons_text():
    args, kwargs = ["k1", 2, None], {"when": "now", "n": [1, 2]}
    args_json, kwargs_json = codec.arguments_json(args, kwargs)
    assert args_json == orjson.dumps(args) and kwargs_json == orjson.dumps(kwargs)
    assert codec.arguments_json(args, {}) == (orjson.dumps(args), b"{}")


def test_kept_copies_the_encoded_text():
    data = orjson.dumps(["k1"])
    copy = codec.kept(data)
    assert copy == data and copy is not data and type(copy) is bytes
