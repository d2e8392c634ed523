#!/usr/bin/env bash
# The whole pipeline on the bundled sample video, end to end:
# samples/sample.mp4 -> detector -> OCR -> tracker -> outbox -> the reference
# vignette backend (on 127.0.0.1, a throw-away database, samples/paid.csv as
# the paid plates) -> one line per vehicle and its vignette verdict.
#
#   bash scripts/demo.sh                 # set up (scripts/setup.sh), then run
#   ANPR_SKIP_SETUP=1 bash scripts/demo.sh
#   bash scripts/demo.sh --snapshot docs/annotated_frame.png   # extra replay options
#   bash scripts/demo.sh --annotate /tmp/annotated.mp4
#
# Exits non-zero when anything failed: setup, the backend, a model, a plate of
# samples/sample.truth.json not reported exactly once, or a wrong verdict.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -n "${ANPR_SKIP_SETUP:-}" ] || bash scripts/setup.sh
PY=.venv/bin/python

tmp=$(mktemp -d)
backend_pid=""
cleanup() {
  if [ -n "$backend_pid" ]; then
    kill "$backend_pid" 2>/dev/null || true
    wait "$backend_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" -m refbackend --db "$tmp/vignettes.sqlite" --host 127.0.0.1 --port 0 --port-file "$tmp/port" \
  --paid-file samples/paid.csv --log-level WARNING >/dev/null 2>"$tmp/refbackend.log" &
backend_pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/port" ] && break
  if ! kill -0 "$backend_pid" 2>/dev/null; then
    echo "demo: the reference backend failed to start:" >&2
    cat "$tmp/refbackend.log" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$tmp/port" ] || { echo "demo: the reference backend did not start within 10 s" >&2; exit 1; }
url="http://127.0.0.1:$(cat "$tmp/port")"
echo "demo: reference backend on $url, paid vignettes: $(grep -v '^plate' samples/paid.csv | cut -d, -f1 | paste -sd' ')"

"$PY" -m edge replay samples/sample.mp4 --config samples/demo-config.yaml --backend "$url" \
  --state-dir "$tmp/state" --jsonl "$tmp/vehicles.jsonl" --wait 30 "$@"

# What the backend said, against what the sample shows.
"$PY" - "$tmp/vehicles.jsonl" samples/sample.truth.json <<'PY'
import json, sys
got = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
truth = {p["plate"]: p["vignette"] for p in json.load(open(sys.argv[2], encoding="utf-8"))["plates"]}
plates = [d["plate"] for d in got]
problems = [f"{p} reported {plates.count(p)} times" for p in truth if plates.count(p) != 1]
problems += [f"{p} is not in the sample" for p in plates if p not in truth]
problems += [f"{d['plate']}: vignette {d.get('vignette')}, expected {truth[d['plate']]}"
             for d in got if d["plate"] in truth and d.get("vignette") != truth[d["plate"]]]
if problems:
    sys.exit("demo: FAILED: " + "; ".join(problems))
print(f"demo: OK: {len(truth)} vehicles, each read once, every verdict as expected")
PY
