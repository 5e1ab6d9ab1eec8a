# Shared settings for the scripts: sourced, not run.
# Everything virtlab installs lives in the repository (.venv, target/) or in cargo's own bin folder.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
EVCXR_VERSION="0.22.0"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"
# The rust kernelspec is registered here, inside the venv, not in the user's home.
export JUPYTER_PATH="$VENV/share/jupyter"
# Saved measurements (chapter 0's peak, ...) stay with the checkout unless the user chose a place.
export VIRTLAB_CACHE_DIR="${VIRTLAB_CACHE_DIR:-$REPO/target/virtlab-cache}"
say() { printf '==> %s\n' "$*" >&2; }
