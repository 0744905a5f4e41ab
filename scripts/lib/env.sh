# Sourced by scripts/install, install-test, test and check (not run on its own): the one
# Python environment Pallet lives in, and Debian packages installed at most once.
#
# The environment is the active virtual environment ($VIRTUAL_ENV) if there is one, else
# .venv in the repository, created on first use. Debian 12's own python3 refuses
# `pip install` outside a virtual environment (PEP 668), so Pallet never installs there.

PALLET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PALLET_VENV="${VIRTUAL_ENV:-$PALLET_ROOT/.venv}"
PALLET_PYTHON="$PALLET_VENV/bin/python"

# Installs the Debian packages named that are missing, with one `apt-get update` per run
# of the outermost script. As root, or through sudo; otherwise says what to run.
pallet_apt_install() {
  command -v dpkg >/dev/null 2>&1 || return 0  # not Debian: nothing to do here
  local missing=() pkg sudo=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "Pallet needs the Debian packages ${missing[*]}; as root run: apt-get install ${missing[*]}" >&2
      return 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "${PALLET_APT_UPDATED:-}" ]; then
    "${sudo[@]}" apt-get update -qq
    export PALLET_APT_UPDATED=1
  fi
  echo "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Creates the virtual environment unless it exists. On Debian, `python3 -m venv` needs the
# python3-venv package (ensurepip); it is installed when missing.
pallet_ensure_venv() {
  [ -x "$PALLET_PYTHON" ] && return 0
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Pallet needs Python 3.11 or newer as python3 (Debian 12 has it)" >&2
    return 1
  fi
  if ! python3 -m venv "$PALLET_VENV" >/dev/null 2>&1; then
    rm -rf "$PALLET_VENV"  # what a failed run left: no pip inside
    pallet_apt_install python3-venv
    python3 -m venv "$PALLET_VENV"
  fi
  echo "created the virtual environment $PALLET_VENV"
}

# pip inside the environment.
pallet_pip() {
  "$PALLET_PYTHON" -m pip --disable-pip-version-check "$@"
}
