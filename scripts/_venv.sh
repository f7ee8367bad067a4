# Shared by scripts/test and scripts/demo: find a Python, make its venv,
# install gmr editable with its test and docs extras (extension build required).
#
# A Python X.Y is looked for in pyenv's versions, then as pythonX.Y on PATH,
# and only when neither has it made by ../shared/tools/debian-cpython (beside
# the repository: a relocated Debian build of 3.14, 3.15, ...). Such an
# interpreter has no ensurepip: its venv is made without pip, and pip comes
# from a wheel kept in .venv/wheels (fetched once, by a Python that has pip).
# uWSGI, which embeds libpython, is built against a relocated interpreter's
# own libpython and then given that interpreter's loader and run path.

GMR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEBIAN_CPYTHON=$GMR_ROOT/../shared/tools/debian-cpython

find_python() {
    local minor=$1 candidate
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/"$minor".*/bin/python"$minor"; do
            [ -x "$candidate" ] && { echo "$candidate"; return; }
        done
    fi
    # A pyenv shim for a version pyenv does not have is on PATH but does not run.
    if candidate=$(command -v "python$minor") && "$candidate" -c '' 2>/dev/null; then
        echo "$candidate"; return
    fi
    if [ ! -f "$DEBIAN_CPYTHON" ]; then
        echo "python$minor not found: not in pyenv, not on PATH, and no ../shared/tools/debian-cpython beside the repository (pyenv install $minor)" >&2
        return 1
    fi
    locked debian-cpython bash "$DEBIAN_CPYTHON" "$minor"
}

# A Python with pip, to fetch pip's wheel for venvs of interpreters without ensurepip.
python_with_pip() {
    local candidate
    for candidate in python3 $(command -v pyenv >/dev/null 2>&1 && ls "$(pyenv root)"/versions/3.*/bin/python3 2>/dev/null) .venv/3.*/bin/python; do
        if "$candidate" -m pip --version >/dev/null 2>&1; then
            echo "$candidate"; return
        fi
    done
    echo "no Python with pip found to fetch pip's wheel (pyenv install 3.13, or a python3 with pip on PATH)" >&2
    return 1
}

# pip into a venv made without it, from .venv/wheels/pip-*.whl (fetched once; set-ups
# running side by side each fetch into a directory of their own and rename into place).
bootstrap_pip() {
    local venv=$1 wheels=.venv/wheels wheel tmp helper minor
    wheel=$(ls "$wheels"/pip-*.whl 2>/dev/null | sort -V | tail -1)
    if [ -z "$wheel" ]; then
        helper=$(python_with_pip) || return 1
        minor=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        mkdir -p "$wheels"
        tmp=$(mktemp -d "$wheels/.fetch.XXXXXX")
        "$helper" -m pip download --disable-pip-version-check -q --no-deps --only-binary :all: \
            --python-version "$minor" -d "$tmp" pip || { rm -rf "$tmp"; echo "could not fetch pip's wheel" >&2; return 1; }
        wheel=$(ls "$tmp"/pip-*.whl)
        mv -f "$wheel" "$wheels/" && wheel=$wheels/${wheel##*/}
        rm -rf "$tmp"
    fi
    "$venv/bin/python" "$wheel/pip" install --disable-pip-version-check -q --no-index "$wheel"
}

# For an interpreter whose libpython is not where its build says (relocated): the
# directory that holds it. Nothing for an interpreter installed where it was built.
relocated_libdir() {
    "$1" - <<'EOF'
import os, sys, sysconfig
var = sysconfig.get_config_var
lib = var("LDLIBRARY") or ""
if var("Py_ENABLE_SHARED") and lib and not os.path.exists(os.path.join(var("LIBDIR") or "", lib)):
    found = os.path.join(sys.base_prefix, "lib", var("MULTIARCH") or "", lib)
    if os.path.exists(found):
        print(os.path.dirname(found))
EOF
}

# gmr's requirements, its test and docs extras included, one a line: installed before
# gmr itself, so that set-ups running side by side share only gmr's build (below).
requirements() {
    "$1" - <<'EOF'
try:
    import tomllib
except ImportError:  # 3.10: pip's own copy
    from pip._vendor import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
extras = project["optional-dependencies"]
print("\n".join(project.get("dependencies", []) + extras["test"] + extras["docs"]))
EOF
}

# One at a time, across set-ups running side by side: the build writes generated C
# into gmr/, and debian-cpython may apt-get install patchelf.
locked() {
    local name=$1; shift
    mkdir -p "$GMR_ROOT/.venv"
    if command -v flock >/dev/null 2>&1; then
        flock "$GMR_ROOT/.venv/.$name.lock" "$@"
    else
        "$@"
    fi
}

# uWSGI against a relocated interpreter: link its libpython (whose own dependencies
# resolve only at run time, hence --allow-shlib-undefined), then give the binary the
# interpreter's ELF loader and the run path of its libraries.
install_uwsgi_relocated() {
    local venv=$1 libdir=$2 py=$1/bin/python spec base loader
    command -v patchelf >/dev/null 2>&1 || { echo "patchelf is needed to build uWSGI here (apt-get install patchelf)" >&2; return 1; }
    spec=$(grep -i -m1 '^uwsgi' "$venv/requirements.txt") || return 0  # not a test extra
    base=$("$py" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')
    loader=$(patchelf --print-interpreter "$base") || return 1
    LIBRARY_PATH=$libdir${LIBRARY_PATH:+:$LIBRARY_PATH} LDFLAGS="-Wl,--allow-shlib-undefined${LDFLAGS:+ $LDFLAGS}" \
        "$py" -m pip install --disable-pip-version-check "$spec" || return 1
    [ -e "$venv/bin/uwsgi" ] || return 0  # its marker leaves it out on this Python
    patchelf --set-interpreter "$loader" --force-rpath \
        --set-rpath "$libdir:$(dirname "$loader")" "$venv/bin/uwsgi"
}

setup_venv() {
    local minor=$1 venv=.venv/$1 python libdir
    if [ ! -x "$venv/bin/python" ]; then
        python=$(find_python "$minor") || return 1
        if "$python" -c 'import ensurepip' 2>/dev/null; then
            "$python" -m venv "$venv" || return 1
        else
            "$python" -m venv --without-pip "$venv" || return 1
        fi
    fi
    # pip's output goes to a log, shown only when the install fails.
    local log=$venv/install.log pip=("$venv/bin/python" -m pip install --disable-pip-version-check)
    if ! { { "$venv/bin/python" -m pip --version >/dev/null 2>&1 || bootstrap_pip "$venv"; } &&
           "${pip[@]}" -U pip setuptools &&
           requirements "$venv/bin/python" > "$venv/requirements.txt" &&
           { libdir=$(relocated_libdir "$venv/bin/python") &&
             { [ -z "$libdir" ] || install_uwsgi_relocated "$venv" "$libdir"; }; } &&
           "${pip[@]}" -r "$venv/requirements.txt" &&
           locked build env GMR_REQUIRE_EXTENSION=1 "${pip[@]}" -e ".[test,docs]" &&
           { [ ! -e "$venv/bin/uwsgi" ] || "$venv/bin/uwsgi" --version; }; } >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" | tail -60 >&2
        echo "set-up of $venv failed (full log: $log)" >&2
        return 1
    fi
}
