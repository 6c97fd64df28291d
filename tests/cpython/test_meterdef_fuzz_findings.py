# What the meter-definition fuzz target (tools/fuzz.py meterdef) found: a
# definition the compiler must refuse naming the object and the key, not
# with a traceback from deep inside it.

import json
import os

import pytest

from dlms_micro_cpython import meterdef
from dlms_micro_cpython.meterdef.compiler import DefinitionError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _board():
    with open(os.path.join(REPO, "tests", "meters", "mp_port_lp.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.mark.parametrize("key, value", [("max_length", "32"), ("min_length", [1]), ("max_length", True)])
def test_a_string_bound_that_is_not_an_integer_is_refused_naming_the_object_and_key(key, value):
    d = _board()
    obj = next(o for o in d["objects"] if o.get("type") == "octet-string" or o.get("type") == "visible-string")
    obj[key] = value
    with pytest.raises(DefinitionError) as e:
        meterdef.compile_definition(d, "board.json")
    assert key in str(e.value) and "an integer" in str(e.value)


@pytest.mark.parametrize("key", ["min", "max"])
def test_a_numeric_bound_that_is_not_an_integer_is_refused(key):
    d = _board()
    obj = next(o for o in d["objects"] if o.get("class") == "register")  # Register and Data share the check
    obj[key] = "10"
    with pytest.raises(DefinitionError) as e:
        meterdef.compile_definition(d, "board.json")
    assert key in str(e.value)


@pytest.mark.parametrize("value", [{"x": 1}, ["long"], None, 3.5])
def test_a_type_that_is_not_a_type_name_is_refused(value):
    d = _board()
    obj = next(o for o in d["objects"] if o.get("class") == "register")
    obj["type"] = value
    with pytest.raises(DefinitionError) as e:
        meterdef.compile_definition(d, "board.json")
    assert "type" in str(e.value)
