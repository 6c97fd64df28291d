# tools/NAME.py loaded by path for the tests. tools/ itself never goes on
# sys.path: there tools/micropython/ would make `import micropython`
# succeed, and the portable tests' allocation probes would take CPython for
# MicroPython.

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tool_module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
