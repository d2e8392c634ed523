#!/usr/bin/env bash
# Set up a fresh Debian/Raspberry Pi OS machine for anpr-edge: system packages
# (Tesseract, the fonts the plate renderer uses, ffmpeg tools) and a venv in .venv.
#   bash scripts/setup.sh            # runtime + tests + training extras
#   ANPR_EXTRAS=tesserocr bash scripts/setup.sh   # runtime only (e.g. on the Pi)
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PKGS="tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev pkg-config fonts-opendin fonts-roadgeek fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-urw-base35 fonts-bebas-neue fonts-roboto-unhinted python3-venv systemd"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "setup: installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || $PY -m venv ${ANPR_VENV_FLAGS:-} .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[${ANPR_EXTRAS:-tesserocr,train,test}]"
echo "setup: done (.venv)"

# ---- BEGIN .venv-tflrt (detector: tflite-runtime check venv) ----
# A second venv with the legacy tflite-runtime 2.14 (it needs numpy<2, so it
# cannot share .venv). Only tests use it, through scripts/tflite_runtime_check.py,
# to show the exported detector also loads there; made with the test extras and
# skipped when it already works.
setup_tflrt_venv() {
  case ",${ANPR_EXTRAS:-tesserocr,train,test}," in *,test,*) ;; *) return 0 ;; esac
  if [ -x .venv-tflrt/bin/python ] && .venv-tflrt/bin/python -c "import numpy, tflite_runtime.interpreter" 2>/dev/null; then
    return 0
  fi
  [ -x .venv-tflrt/bin/python ] || $PY -m venv .venv-tflrt
  .venv-tflrt/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv-tflrt/bin/python -m pip install -q "tflite-runtime==2.14.0" "numpy<2"
  echo "setup: done (.venv-tflrt)"
}
setup_tflrt_venv
# ---- END .venv-tflrt ----
