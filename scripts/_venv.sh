# Sourced by the README's commands: make .venv (Python >= 3.11) and install skysense into it.
# Reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "skysense needs Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
VENV="${SKYSENSE_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $PY" >&2
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 ships venv separately.
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv "$VENV"
    else
      echo "cannot create a virtual environment: install python3-venv" >&2; exit 1
    fi
  fi
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
EXTRAS="${SKYSENSE_EXTRAS:-all,test}"
STAMP="$VENV/.skysense-install-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-${EXTRAS//,/_}"
if [ ! -f "$STAMP" ]; then
  echo "==> installing skysense[$EXTRAS] (first run takes a few minutes)" >&2
  # The local package mirrors print one harmless warning per package; keep real errors visible.
  python -m pip install -q --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2) >/dev/null
  python -m pip install -q -e "$ROOT[$EXTRAS]" 2> >(grep -v "is ignored: it is neither" >&2)
  rm -f "$VENV"/.skysense-install-* && touch "$STAMP"
fi
