# lit configuration for tests/lit (netc dump, emit, init, emitted programs),
# tests/errors (diagnostics of .net files) and tests/files (malformed weights,
# tensors and data sets) and tests/onnx (netc import, and its bad-ONNX
# catalogue).  Each .net file holds its own RUN and CHECK lines.
#   %netc      the netc binary under test
#   FileCheck  LLVM's FileCheck (llvm-14-tools)
#   %examples  the examples/ directory
#   %npycmp    tests/tools/npycmp (compares .npy outputs within a tolerance)
#   %stcmp     tests/tools/stcmp (the same for safetensors files)
# Features, for REQUIRES lines (a test whose feature is missing shows as
# UNSUPPORTED, never as passing):
#   cpu-avx2    this CPU runs programs built with --target avx2 (x86-64-v3)
#   cpu-avx512  this CPU runs programs built with --target avx512 (x86-64-v4)
# decided by a tiny program built with gcc, whose __builtin_cpu_supports
# (libgcc's own cpuid and XCR0 checks, independent of libnetrt's cpu.c) tells
# the x86-64 levels apart.
import os
import shutil
import subprocess
import tempfile
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
config.substitutions.append(("%npycmp", os.environ.get("NPYCMP", "npycmp")))
config.substitutions.append(("%stcmp", os.environ.get("STCMP", "stcmp")))
config.substitutions.append(("FileCheck", filecheck))
# LLVM's `not` (inverts an exit status) sits beside FileCheck.
config.substitutions.append(("not ", os.path.join(os.path.dirname(filecheck), "not") + " "))
config.environment["PATH"] = os.environ.get("PATH", "")
for var in ("CC", "NETC_CFLAGS", "NETC_RUNTIME_INCLUDE", "NETC_RUNTIME_LIB", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
    if var in os.environ:
        config.environment[var] = os.environ[var]


def cpu_levels():
    """The x86-64 levels this CPU supports, by gcc's __builtin_cpu_supports."""
    gcc = shutil.which("gcc")
    if not gcc:
        lit_config.note("no gcc: the cpu-avx2 and cpu-avx512 tests are unsupported")
        return set()
    src = (
        "#include <stdio.h>\n"
        "int main(void) {\n"
        "    __builtin_cpu_init();\n"
        "    if (__builtin_cpu_supports(\"x86-64-v3\")) puts(\"cpu-avx2\");\n"
        "    if (__builtin_cpu_supports(\"x86-64-v4\")) puts(\"cpu-avx512\");\n"
        "    return 0;\n"
        "}\n"
    )
    with tempfile.TemporaryDirectory() as d:
        c, exe = os.path.join(d, "cpu.c"), os.path.join(d, "cpu")
        with open(c, "w") as f:
            f.write(src)
        try:
            subprocess.run([gcc, "-O0", c, "-o", exe], check=True, capture_output=True)
            out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            lit_config.note("the CPU check did not run (%s): the cpu-avx2 and cpu-avx512 tests are unsupported" % e)
            return set()
    return set(out.split())


for feature in sorted(cpu_levels()):
    config.available_features.add(feature)
