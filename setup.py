"""Build of gmr's native units: gmr._walker (the frame walker), gmr._trigger
(signal handler, pipe wait, watchdog) and gmr._files (batched reads, the
report file).

Environment switches:
  GMR_REQUIRE_EXTENSION=1  a failed build of a unit is fatal (CI uses it), and
                           so is a built unit that does not import;
                           otherwise gmr installs and runs on its pure twins.
  GMR_DEBUG_BUILD=1        -O0 -g3 -UNDEBUG and Cython line tracing.
  GMR_SANITIZE=address     build the extension with AddressSanitizer.
"""

import importlib.util
import os
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE = os.environ.get("GMR_REQUIRE_EXTENSION") == "1"
DEBUG = os.environ.get("GMR_DEBUG_BUILD") == "1"
SANITIZE = os.environ.get("GMR_SANITIZE", "")

# A function the headers of this Python no longer declare compiles, links
# and fails only at import (undefined symbol): make it an error here.
compile_args = ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code",
                "-Werror=implicit-function-declaration", "-Werror=int-conversion",
                "-Werror=incompatible-pointer-types"]
link_args = []
macros = []
directives = {"language_level": "3", "embedsignature": True}
# Tests only: a walker built as if for another frame layout (3.13+), which
# its check against the interpreter's debug offsets must refuse.
if os.environ.get("GMR_LAYOUT_SKEW"):
    macros += [("GMR_LAYOUT_SKEW", str(int(os.environ["GMR_LAYOUT_SKEW"])))]
# Tests only: the walker for CPythons newer than the newest known, which
# reads every field through the interpreter's debug offsets, on 3.14+.
if os.environ.get("GMR_WALKER_OFFSETS") == "1":
    macros += [("GMR_WALKER_OFFSETS", "1")]
if DEBUG:
    compile_args += ["-O0", "-g3", "-UNDEBUG"]
    macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    directives["linetrace"] = True
if SANITIZE:
    compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-g"]
    link_args += [f"-fsanitize={SANITIZE}"]


UNITS = {
    "gmr._walker": ["gmr/_walker.h", "gmr/_walker_offsets.h", "gmr/_switch.h", "gmr/_mapped.h"],
    "gmr._trigger": ["gmr/_trigger.h", "gmr/_watchdog.h", "gmr/_publish.h", "gmr/_switch.h",
                     "gmr/_read.h"],
    "gmr._files": ["gmr/_publish.h", "gmr/_switch.h", "gmr/_read.h", "gmr/_listings.h",
                  "gmr/_mapped.h"],
}


class BuildAndImport(build_ext):
    """When the units are required, import each one just built: a unit that
    compiles but cannot load must fail the build, not the service."""

    def run(self) -> None:
        super().run()
        if not REQUIRE:
            return
        for ext in self.extensions:
            path = self.get_ext_fullpath(ext.name)
            spec = importlib.util.spec_from_file_location(ext.name, path)
            try:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            except Exception as error:
                sys.exit(f"gmr: {ext.name} was built but does not import: "
                         f"{type(error).__name__}: {error}")
            print(f"gmr: {ext.name} imports ({path})")


def extensions():
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        # Not yet: the walker needs the GIL to hold every thread still, and a
        # module without free-threading support would turn the GIL back on.
        print("gmr: a free-threaded Python: the pure twins only", file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE:
            raise
        return []
    exts = cythonize(
        [
            Extension(
                name,
                [name.replace(".", "/") + ".pyx"],
                depends=headers,
                include_dirs=["gmr"],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
                define_macros=macros,
            )
            for name, headers in UNITS.items()
        ],
        compiler_directives=directives,
        quiet=True,
    )
    # cythonize() hands back fresh Extension objects without `optional`:
    # set it again so a machine without a compiler still installs the pure twin.
    for ext in exts:
        ext.optional = not REQUIRE
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildAndImport})
