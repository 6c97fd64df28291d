"""Write docs/api.md, the API reference of the CPython port, from its
docstrings (inspect, not pydoc).

    python tools/gen_api_docs.py            # write docs/api.md
    python tools/gen_api_docs.py --check    # exit 1 when docs/api.md is out
                                            # of date or a docstring is missing

What is documented: the modules in MODULES; in each, the names of its
``__all__``, else every public class and function it defines (a package:
defines in its own modules); in a class, the public methods and properties
it defines itself or inherits from a private base. A module without a
docstring is introduced by the first paragraph of its leading comment.
pytest hooks (``pytest_*``) are left out; fixtures are listed under their
names.
"""

import argparse
import inspect
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "api.md")
MODULES = (
    "dlms_micro_cpython.api",
    "dlms_micro_cpython.pytest_plugin",
    "dlms_micro_cpython.service",
    "dlms_micro_cpython.simulator",
    "dlms_micro_cpython.demo",
    "dlms_micro_cpython.meterdef",
    "dlms_micro_cpython.storage",
    "dlms_micro_cpython.keyfile",
    "dlms_micro_cpython.tcp",
    "dlms_micro_cpython.serial_port",
    "dlms_micro_cpython.push",
)
HEADER = """# API reference: the CPython port

Generated from the docstrings by `tools/gen_api_docs.py` (do not edit: run it again; a test
checks this file is up to date). The embedding API is `dlms_micro_cpython.api` (`serve()` is
re-exported by `dlms_micro_cpython`); the pytest fixtures are in
`dlms_micro_cpython.pytest_plugin`; the rest is what they are built on.
"""


def _unwrap(obj):
    # a pytest fixture definition -> the function it wraps
    fn = getattr(obj, "_get_wrapped_function", None)
    if fn is not None:
        return fn()
    return getattr(obj, "__wrapped__", obj)


def _is_fixture(obj):
    return hasattr(obj, "_get_wrapped_function") or hasattr(obj, "_pytestfixturefunction")


def _signature(obj):
    try:
        text = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # object reprs: no addresses
    return text.replace("(self, ", "(").replace("(self)", "()")


def _module_text(mod):
    # the module's docstring; a module without one is introduced by the
    # first paragraph of its leading comment
    doc = inspect.getdoc(mod)
    if doc:
        return doc
    comments = inspect.getcomments(mod) or ""
    lines = [re.sub(r"^# ?", "", line) for line in comments.splitlines()]
    return "\n".join(lines).strip().split("\n\n")[0]


def _line(obj):
    try:
        return inspect.getsourcelines(_unwrap(obj))[1]
    except (OSError, TypeError):
        return 0


def _members(mod):
    names = getattr(mod, "__all__", None)
    out = []
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_") and not n.startswith("pytest_")]
    for n in names:
        obj = getattr(mod, n)
        target = _unwrap(obj)
        if not (inspect.isclass(target) or inspect.isfunction(target)):
            continue
        home = getattr(target, "__module__", "") or ""
        if home != mod.__name__ and not home.startswith(mod.__name__ + "."):
            continue
        out.append((home, _line(obj), n, obj))
    if getattr(mod, "__all__", None) is None:
        out.sort(key=lambda m: (m[0] != mod.__name__, m[0], m[1]))
    return [(n, obj) for _h, _l, n, obj in out]


def _class_members(cls):
    # its own public methods and properties, and those of private bases
    # (whose names start with "_": documented nowhere else)
    out = []
    seen = set()
    for depth, klass in enumerate(cls.__mro__):
        if klass is object or (depth and not klass.__name__.startswith("_")):
            continue
        for n, v in vars(klass).items():
            if n.startswith("_") or n in seen:
                continue
            seen.add(n)
            if isinstance(v, property) or inspect.isfunction(v):
                out.append((depth, _line(v.fget if isinstance(v, property) else v), n, v))
    out.sort(key=lambda m: (m[0], m[1]))
    return [(n, v) for _d, _l, n, v in out]


def _doc_block(obj, missing, where):
    doc = inspect.getdoc(obj)
    if not doc:
        missing.append(where)
        return "*(no docstring)*\n"
    return _fenced(doc)


def _fenced(text):
    # docstrings and comments are plain text: shown as written
    return "```text\n%s\n```\n" % text if text else ""


def render():
    """The reference as Markdown, and the names that lack a docstring."""
    import importlib

    missing = []
    parts = [HEADER]
    for name in MODULES:
        mod = importlib.import_module(name)
        parts.append("\n## `%s`\n\n%s" % (name, _fenced(_module_text(mod))))
        for n, obj in _members(mod):
            target = _unwrap(obj)
            where = "%s.%s" % (name, n)
            if _is_fixture(obj):
                parts.append("\n### fixture `%s`\n\n" % n)
                parts.append(_doc_block(target, missing, where))
            elif inspect.isclass(target):
                bases = ["named tuple" if b.__name__ == n else b.__name__ for b in target.__bases__
                         if b is not object and not b.__name__.startswith("_")]
                head = "class `%s%s`" % (n, _signature(target))
                if bases:
                    head += " (%s)" % ", ".join(bases)
                parts.append("\n### %s\n\n" % head)
                parts.append(_doc_block(target, missing, where))
                for mn, mv in _class_members(target):
                    if isinstance(mv, property):
                        parts.append("\n#### property `%s.%s`\n\n" % (n, mn))
                        parts.append(_doc_block(mv, missing, "%s.%s" % (where, mn)))
                    else:
                        parts.append("\n#### `%s.%s%s`\n\n" % (n, mn, _signature(mv)))
                        parts.append(_doc_block(mv, missing, "%s.%s" % (where, mn)))
            else:
                parts.append("\n### `%s%s`\n\n" % (n, _signature(target)))
                parts.append(_doc_block(target, missing, where))
    return "".join(parts), missing


def main(argv=None):
    p = argparse.ArgumentParser(description="write docs/api.md from the CPython port's docstrings")
    p.add_argument("--check", action="store_true", help="only check that docs/api.md is up to date")
    args = p.parse_args(argv)
    text, missing = render()
    for where in missing:
        print("no docstring: %s" % where, file=sys.stderr)
    if args.check:
        try:
            with open(OUT, encoding="utf-8") as f:
                current = f.read()
        except OSError:
            current = None
        if current != text:
            print("docs/api.md is out of date: run python tools/gen_api_docs.py", file=sys.stderr)
            return 1
        return 1 if missing else 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s" % os.path.relpath(OUT, ROOT))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
