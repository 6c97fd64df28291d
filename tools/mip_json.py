"""Write (or check) the package.json files that `mip` installs from.

    python tools/mip_json.py                 # rewrite packages/*/package.json
    python tools/mip_json.py --check         # exit 1 if one is out of date
    python tools/mip_json.py --base github:ORG/REPO --out DIR

Default (what is committed under packages/NAME/package.json): every URL is
relative to the package.json itself ("../../dlms_micro/axdr.py"), so the files
name no GitHub address and survive forks. mip and `mpremote mip` resolve a
URL without a scheme against the directory of the package.json (mip >= 0.2,
micropython-lib PR #676). mip's "deps" cannot be relative (a dep without a
scheme is looked up in the micropython-lib index), so a committed package.json
lists its own files *and* its dependencies' files, and "deps" stays empty:
installing dlms-micro-hdlc brings the core along, as a dep would.

With --base github:ORG/REPO --out DIR (DIR inside the repository) the same
packages are written with absolute URLs and real mip deps pointing at DIR
(each package lists only its own files), for publishing under a known
address: commit DIR and `mip.install("github:ORG/REPO/DIR/hdlc")`.

The package table is tools/dlms_packages.py.
"""

import argparse
import json
import os
import sys

def _sibling(name):
    # Load tools/NAME.py without putting tools/ on sys.path: tools/micropython/
    # would then import as a namespace package `micropython`, and portable
    # code would take CPython for MicroPython.
    if name not in sys.modules:
        import importlib.util
        here = os.path.dirname(os.path.abspath(__file__))
        spec = importlib.util.spec_from_file_location(name, os.path.join(here, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


pk = _sibling("dlms_packages")

OUT_DEFAULT = os.path.join(pk.REPO, "packages")


def package_json(name, base=None, dep_dir="packages"):
    if base is None:
        files = []
        for each in pk.closure([name]):
            files.extend(pk.modules(each))
        urls = [[m, "../../" + m] for m in files]
        deps = []
    else:
        base = base.rstrip("/")
        urls = [[m, base + "/" + m] for m in pk.modules(name)]
        deps = [[base + "/" + dep_dir + "/" + d, "HEAD"]
                for d in pk.PACKAGES[name][1]]
    return {
        "urls": urls,
        "deps": deps,
        "version": pk.VERSION,
        "description": pk.mip_name(name) + ": " + pk.PACKAGES[name][0],
    }


def render(name, base=None, dep_dir="packages"):
    """package.json text, one [dest, url] pair per line (diffs stay small)."""
    d = package_json(name, base, dep_dir)
    lines = ["{"]
    for key in ("urls", "deps"):
        items = [json.dumps(pair) for pair in d[key]]
        if items:
            lines.append('  "%s": [\n    %s\n  ],' % (key, ",\n    ".join(items)))
        else:
            lines.append('  "%s": [],' % key)
    lines.append('  "version": %s,' % json.dumps(d["version"]))
    lines.append('  "description": %s' % json.dumps(d["description"]))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT_DEFAULT,
                    help="folder holding NAME/package.json (default packages/)")
    ap.add_argument("--base", help="absolute URL prefix, e.g. github:ORG/REPO")
    ap.add_argument("--check", action="store_true",
                    help="only compare with the files on disk")
    args = ap.parse_args(argv)
    # with --base, deps name the folder the files are written to, as a path
    # inside the repository (so the generated set must be committed there)
    dep_dir = os.path.relpath(os.path.abspath(args.out), pk.REPO).replace(os.sep, "/")
    if args.base and dep_dir.startswith(".."):
        ap.error("--out must be inside the repository when --base is given")
    stale = []
    for name in pk.PACKAGES:
        path = os.path.join(args.out, name, "package.json")
        text = render(name, args.base, dep_dir)
        if args.check:
            try:
                with open(path) as f:
                    same = f.read() == text
            except OSError:
                same = False
            if not same:
                stale.append(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        print("wrote %s (%s)" % (os.path.relpath(path), pk.mip_name(name)))
    if stale:
        print("mip_json: out of date (run python tools/mip_json.py):")
        for p in stale:
            print("  " + os.path.relpath(p))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
