#!/usr/bin/python3
"""Checks that #include lines point one way through netc's layers
(docs/architecture.md):

    support/   spans, diagnostics, the arena          includes: support
    runtime/   libnetrt, what emitted programs link   includes: runtime
    compiler/  IR, op registry, passes, emitter       includes: support, runtime (netrt.h, the ABI it emits for), compiler
    dsl/       lexer, parser, AST, evaluation         includes: support, compiler, dsl
    import/    netc import (ONNX)                     includes: support, runtime, import
    driver/    the netc command                       includes: anything

An include is resolved as the C compiler does for "quoted" names: next to
the including file first, then in the include directories in CMakeLists.txt's
order (support, dsl, compiler, runtime; bison's and flex's generated headers
count as dsl).  Prints each include that goes up or sideways and exits 1 if
there is any.

    tools/check_layers.py [SOURCE_DIR]
"""
import os
import re
import sys

ALLOWED = {
    "support": {"support"},
    "runtime": {"runtime"},
    "compiler": {"support", "runtime", "compiler"},
    "dsl": {"support", "compiler", "dsl"},
    "import": {"support", "runtime", "import"},
    "driver": {"support", "runtime", "compiler", "dsl", "import", "driver"},
}
SEARCH = ["support", "dsl", "compiler", "runtime"]
GENERATED = {"parser.h": "dsl", "lexer.h": "dsl"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(root, path):
    rel = os.path.relpath(path, root)
    top = rel.split(os.sep)[0]
    return top if top in ALLOWED else None


def resolve(root, src, name):
    here = os.path.normpath(os.path.join(os.path.dirname(src), name))
    if os.path.exists(here):
        return here
    for d in SEARCH:
        p = os.path.normpath(os.path.join(root, d, name))
        if os.path.exists(p):
            return p
    return None


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    bad = 0
    checked = 0
    for layer in ALLOWED:
        for dirpath, _, files in os.walk(os.path.join(root, layer)):
            for f in sorted(files):
                if not f.endswith((".c", ".h", ".l", ".y", ".def")):
                    continue
                src = os.path.join(dirpath, f)
                with open(src, encoding="utf-8") as fh:
                    for lineno, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        checked += 1
                        name = m.group(1)
                        target = resolve(root, src, name)
                        if target is None:
                            to = GENERATED.get(os.path.basename(name))
                            if to is None:
                                continue  # not one of ours (a system header in quotes)
                        else:
                            to = layer_of(root, target)
                            if to is None:
                                continue
                        if to not in ALLOWED[layer]:
                            print(f"{os.path.relpath(src, root)}:{lineno}: {layer}/ includes \"{name}\" of {to}/, "
                                  f"a layer it may not use (it may use: {', '.join(sorted(ALLOWED[layer]))})")
                            bad += 1
    print(f"{checked} includes checked, {bad} against the layering")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
