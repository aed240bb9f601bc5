#!/usr/bin/env bash
# Installs the Debian packages the full test suite relies on:
#   - Mesa lavapipe (mesa-vulkan-drivers >= 25, from bookworm-backports): a CPU
#     Vulkan driver for Dawn (npm `webgpu`). Bookworm's own Mesa 22.3 is rejected
#     by Dawn ("shaderUniform*ArrayDynamicIndexing required").
#   - NVRTC 11.8 (non-free): lets the CUDA backend compile kernels to PTX with no GPU.
#   - chromium: headless browser tests (WebGPU on SwiftShader).
#   - python3-torch (PyTorch 1.13, CPU): the independent PyTorch peer of the TwinFlow training step
#     (test/torch-twinflow.test.ts). Measured on Debian 12: 177 packages, 151 MB download, 634 MB installed
#     without recommends; about a minute to install.
# Idempotent: when everything is already installed it exits without touching apt.
# SKIP_SYSTEM_SETUP=1 skips it (machines provisioned some other way).
set -Eeuo pipefail
trap 'echo "setup-system: FAILED (line $LINENO): $BASH_COMMAND" >&2' ERR

say() { echo "setup-system: $*"; }
die() { echo "setup-system: ERROR: $*" >&2; exit 1; }

if [[ "${SKIP_SYSTEM_SETUP:-}" == 1 ]]; then
  say "SKIP_SYSTEM_SETUP=1, not installing system packages"; exit 0
fi

# Package versions and suites below are specific to Debian 12.
[[ -r /etc/os-release ]] && . /etc/os-release
[[ "${ID:-}" == debian && "${VERSION_CODENAME:-}" == bookworm ]] ||
  die "needs Debian 12 (bookworm), found '${PRETTY_NAME:-unknown}'; install the packages by hand or set SKIP_SYSTEM_SETUP=1"

CODENAME=$VERSION_CODENAME
PKGS=(mesa-vulkan-drivers libvulkan1 libnvrtc11.2 libnvrtc-builtins11.8 chromium)
# installed from bookworm itself (not -t backports), so PyTorch's many libraries stay at the release's versions
BASE_PKGS=(python3-torch)

# True when PKG is installed (and, for Mesa, new enough for Dawn).
have() {
  local v
  v=$(dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$1" 2>/dev/null) || return 1
  [[ $v == "ii "* ]] || return 1
  [[ $1 != mesa-vulkan-drivers ]] || dpkg --compare-versions "${v#ii }" ge 25~
}
missing=() base_missing=()
for p in "${PKGS[@]}"; do have "$p" || missing+=("$p"); done
for p in "${BASE_PKGS[@]}"; do have "$p" || base_missing+=("$p"); done
if ((${#missing[@]} + ${#base_missing[@]} == 0)); then say "system packages already installed"; exit 0; fi
[[ $EUID -eq 0 ]] || die "must run as root to install: ${missing[*]} ${base_missing[*]} (or set SKIP_SYSTEM_SETUP=1)"
start=$SECONDS
log=$(mktemp /tmp/twinflow-setup-system.XXXXXX.log)
# Quiet on success; on failure show what failed and the end of apt's output.
run() {
  local what=$1; shift
  say "$what"
  if ! "$@" >>"$log" 2>&1; then
    echo "setup-system: FAILED: $what: $*" >&2
    echo "--- last 40 lines of $log ---" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
}

# New sources entries copy the machine's own Debian entry (same mirror, same
# signing key, other fields kept) so that no archive host is written into the
# repository; only Types/Suites/Components change. Args: SUITE COMPONENTS.
from_deb822() {
  [[ -r /etc/apt/sources.list.d/debian.sources ]] || return 0
  awk -v code="$CODENAME" -v suite="$1" -v comps="$2" '
    function flush(   i) {   # emit the stanza if it is an enabled "deb" one for the release
      if (n && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " code " ") && tolower(enabled) != "no") {
        printf "%sTypes: deb\nSuites: %s\nComponents: %s\n", (found++ ? "\n" : ""), suite, comps
        for (i = 1; i <= n; i++) if (keep[i]) print lines[i]
      }
      n = 0; types = suites = enabled = ""
    }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { lines[n] = lines[n] "\n" $0; next }   # continuation (e.g. an inline Signed-By key)
    {
      key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
      lines[++n] = $0; keep[n] = (key !~ /^(types|suites|components):$/)
      if (key == "types:") types = val; if (key == "suites:") suites = val; if (key == "enabled:") enabled = val
    }
    END { flush() }' /etc/apt/sources.list.d/debian.sources
}
from_classic() {   # "deb [opts] URI SUITE COMPONENTS..."; signed-by is kept, other options dropped
  [[ -r /etc/apt/sources.list ]] || return 0
  awk -v code="$CODENAME" -v suite="$1" -v comps="$2" '
    $1 == "deb" {
      opts = ""; i = 2
      if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) opts = opts " " $(i++); opts = opts " " $(i++) }
      if ($(i + 1) != code) next
      sb = match(opts, /signed-by=[^] ]+/) ? "Signed-By: " substr(opts, RSTART + 10, RLENGTH - 10) "\n" : ""
      printf "%sTypes: deb\nURIs: %s\nSuites: %s\nComponents: %s\n%s", (found++ ? "\n" : ""), $i, suite, comps, sb
    }' /etc/apt/sources.list
}
# Writes /etc/apt/sources.list.d/NAME.sources unless apt already has SUITE/COMPONENT.
add_source() { # NAME SUITE COMPONENT
  local body configured
  # --no-release-info lists what is configured, downloaded yet or not.
  configured=$(apt-get indextargets --no-release-info --format '$(TARGET_OF) $(RELEASE) $(COMPONENT)')
  if grep -qx "deb $2 $3" <<<"$configured"; then return; fi
  body=$(from_deb822 "$2" "$3")
  [[ -n $body ]] || body=$(from_classic "$2" "$3")
  [[ -n $body ]] || die "no enabled '$CODENAME' entry to copy the mirror from in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
  printf '# Written by twinflow scripts/setup-system.sh\n%s\n' "$body" >"/etc/apt/sources.list.d/$1.sources"
  say "added '$2 $3' as /etc/apt/sources.list.d/$1.sources"
}
add_source twinflow-backports "$CODENAME-backports" main
add_source twinflow-nonfree "$CODENAME" non-free

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)
run "apt-get update" "${APT[@]}" update
# -t backports: Mesa 25 and the newer libdrm/libgbm it needs come from backports;
# everything else falls back to bookworm (Mesa 25 there still uses bookworm's LLVM 15). Recommends are skipped: lavapipe and headless chromium work without them.
((${#missing[@]} == 0)) || run "installing ${missing[*]}" "${APT[@]}" install --no-install-recommends -t "$CODENAME-backports" "${missing[@]}"
((${#base_missing[@]} == 0)) || run "installing ${base_missing[*]}" "${APT[@]}" install --no-install-recommends "${base_missing[@]}"

for p in "${PKGS[@]}" "${BASE_PKGS[@]}"; do have "$p" || die "$p still missing or too old after install (log: $log)"; done
rm -f "$log"
say "done in $((SECONDS - start))s"
