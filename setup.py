"""Build of the one extension, gmr._capture.

Environment switches:
  GMR_REQUIRE_EXTENSION=1  a failed build of the extension is fatal (CI uses it);
                           otherwise gmr installs and runs on its pure-Python twin.
  GMR_DEBUG_BUILD=1        -O0 -g3 -UNDEBUG and Cython line tracing.
  GMR_SANITIZE=address     build the extension with AddressSanitizer.
"""

import os

from setuptools import Extension, setup

REQUIRE = os.environ.get("GMR_REQUIRE_EXTENSION") == "1"
DEBUG = os.environ.get("GMR_DEBUG_BUILD") == "1"
SANITIZE = os.environ.get("GMR_SANITIZE", "")

compile_args = ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
link_args = []
macros = []
directives = {"language_level": "3", "embedsignature": True}
if DEBUG:
    compile_args += ["-O0", "-g3", "-UNDEBUG"]
    macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]
    directives["linetrace"] = True
if SANITIZE:
    compile_args += [f"-fsanitize={SANITIZE}", "-fno-omit-frame-pointer", "-g"]
    link_args += [f"-fsanitize={SANITIZE}"]


def extensions():
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE:
            raise
        return []
    exts = cythonize(
        [
            Extension(
                "gmr._capture",
                ["gmr/_capture.pyx"],
                depends=["gmr/_capture_c.h", "gmr/_watchdog_c.h"],
                include_dirs=["gmr"],
                extra_compile_args=compile_args,
                extra_link_args=link_args,
                define_macros=macros,
            )
        ],
        compiler_directives=directives,
        quiet=True,
    )
    # cythonize() hands back fresh Extension objects without `optional`:
    # set it again so a machine without a compiler still installs the pure twin.
    for ext in exts:
        ext.optional = not REQUIRE
    return exts


setup(ext_modules=extensions())
