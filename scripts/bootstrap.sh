# Sourced by scripts/demo.sh and scripts/test.sh: a virtual environment with Tsunagu installed.
# Re-installs only when pyproject.toml changed since the last install.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TSUNAGU_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_install() {
  # apt_install PACKAGE... : install Debian packages that are missing (one apt-get update per run).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  if [ -z "${_TSUNAGU_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq && _TSUNAGU_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if ! "$PYTHON_BIN" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Tsunagu needs Python 3.11 or newer as '$PYTHON_BIN' (set PYTHON=... to choose one)" >&2
  exit 1
fi
if ! "$PYTHON_BIN" -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3-venv
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi
STAMP="$VENV/.tsunagu-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "installing Tsunagu and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c 'import patient_portal.app' # fails loudly if the install did not work
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
