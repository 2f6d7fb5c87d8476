# lit configuration for tests/lit (netc dump, emit, init, emitted programs),
# tests/errors (diagnostics of .net files) and tests/files (malformed weights,
# tensors and data sets).  Each .net file holds its own RUN and CHECK lines.
#   %netc      the netc binary under test
#   FileCheck  LLVM's FileCheck (llvm-14-tools)
#   %examples  the examples/ directory
import os
import lit.formats

config.name = "netc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".net"]
config.excludes = ["golden", "unit", "tools", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.environ.get("NETC_WORK", "/tmp/netc-lit")

netc = os.environ.get("NETC")
filecheck = os.environ.get("FILECHECK", "FileCheck")
if not netc:
    lit_config.fatal("set NETC to the netc binary (ctest does this)")
config.substitutions.append(("%netc", netc))
config.substitutions.append(("%examples", os.environ.get("NETC_EXAMPLES", "")))
config.substitutions.append(("FileCheck", filecheck))
# LLVM's `not` (inverts an exit status) sits beside FileCheck.
config.substitutions.append(("not ", os.path.join(os.path.dirname(filecheck), "not") + " "))
config.environment["PATH"] = os.environ.get("PATH", "")
for var in ("CC", "NETC_CFLAGS", "NETC_RUNTIME_INCLUDE", "NETC_RUNTIME_LIB", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
