# Shared by scripts/test and scripts/demo: find a Python, make its venv,
# install gmr editable with its test extras (extension build required).

find_python() {
    local minor=$1 candidate
    if command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/"$minor".*/bin/python"$minor"; do
            [ -x "$candidate" ] && { echo "$candidate"; return; }
        done
    fi
    command -v "python$minor" || { echo "python$minor not found (pyenv install $minor)" >&2; return 1; }
}

setup_venv() {
    local minor=$1 venv=.venv/$1
    if [ ! -x "$venv/bin/python" ]; then
        "$(find_python "$minor")" -m venv "$venv"
    fi
    # pip's output goes to a log, shown only when the install fails.
    local log=$venv/install.log
    if ! { "$venv/bin/python" -m pip install --disable-pip-version-check -U pip setuptools &&
           GMR_REQUIRE_EXTENSION=1 "$venv/bin/python" -m pip install --disable-pip-version-check \
               -e ".[test]"; } >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" | tail -60 >&2
        echo "set-up of $venv failed (full log: $log)" >&2
        return 1
    fi
}
