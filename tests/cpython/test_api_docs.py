# docs/api.md is generated from the CPython port's docstrings by
# tools/gen_api_docs.py: it must be up to date, and every name it documents
# must have a docstring.

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _tool(name):
    # tools/NAME.py, loaded without putting tools/ on sys.path: there,
    # tools/micropython/ would make `import micropython` succeed, and the
    # portable tests' allocation probes would take CPython for MicroPython
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


gen_api_docs = _tool("gen_api_docs")


def test_docs_api_md_is_up_to_date():
    text, _missing = gen_api_docs.render()
    with open(gen_api_docs.OUT, encoding="utf-8") as f:
        assert f.read() == text, "docs/api.md is out of date: run python tools/gen_api_docs.py"


def test_every_documented_class_function_and_method_has_a_docstring():
    _text, missing = gen_api_docs.render()
    assert missing == []


def test_the_reference_covers_the_embedding_api_and_the_fixtures():
    text, _missing = gen_api_docs.render()
    for name in ("### `serve(", "#### `MeterHandle.set_value(", "#### `MeterHandle.written()`",
                 "### fixture `dlms_meter`", "### fixture `dlms_meter_factory`", "### class `ThreadedService(",
                 "### class `SimulatedMeter(", "### class `FileStorage(", "### `load(path, report=None"):
        assert name in text, name
