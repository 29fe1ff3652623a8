#!/usr/bin/env bash
# The README's two commands, and a few more for developers.
#
#   ./dev.sh up [tessera local flags]   install what is missing, build, run `tessera local`
#   ./dev.sh test [--asan]              install what is missing, build, run every test (ctest)
#   ./dev.sh build [--asan]             install what is missing and build
#   ./dev.sh deps                       install what is missing (Debian packages; npm ci in tests/ui)
#   ./dev.sh format [--check]           clang-format the tree (or check it)
#   ./dev.sh layers                     check that includes follow the layers (docs/architecture.md)
#   ./dev.sh tidy [files...]            clang-tidy the given files (default: changed vs origin/main)
#   ./dev.sh fuzz [target|all] [secs]   build the libFuzzer targets (clang) and run one or all of
#                                       them for secs seconds each (default 20); fuzz/README.md
#   ./dev.sh fuzz-build                 only build them (build-fuzz/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Debian 12 packages the build and the tests need: one library per job (docs/design.md).
PACKAGES=(
  build-essential cmake ninja-build ccache lld pkg-config clang-format curl procps python3
  libboost-dev libboost-filesystem-dev libboost-system-dev
  libprotobuf-dev protobuf-compiler
  libpoco-dev libspdlog-dev libfmt-dev
  libzookeeper-mt-dev libhowardhinnant-date-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev openssl
  clang-14 libclang-rt-14-dev llvm-14
  zookeeper docker.io busybox-static
  chromium
)

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else log "need root to run: $*"; exit 1
  fi
}

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "installing: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
}

# The browser tests' tools (tests/ui/README.md): Node.js and npm (Debian's, unless the machine
# already has a node), and playwright-core from tests/ui/package-lock.json; it drives the
# chromium above and never downloads a browser of its own.
ui_deps() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing: nodejs npm"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      nodejs npm
  fi
  local ui="$ROOT/tests/ui"
  # npm ci again only when the lock file changed since the last one.
  if [ ! -f "$ui/node_modules/.package-lock.json" ] ||
     [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
    log "npm ci in tests/ui"
    (cd "$ui" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The ASan+UBSan build uses clang: it compiles that build about a third faster than g++ (CI time,
# docs/design.md), and the sanitizers then come from the same runtime as the fuzzers'.
build() {
  local type="${BUILD_TYPE:-Release}" dir="$ROOT/build" cxx=()
  if [ "${1:-}" = "--asan" ]; then
    type=Asan; dir="$ROOT/build-asan"; cxx=(env CC=clang-14 CXX=clang++-14)
    # A build-asan/ configured by another compiler: cmake cannot switch it, so start it again.
    if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang++-14' "$dir/CMakeCache.txt"; then
      rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
    fi
  fi
  log "building ($type) in $dir"
  "${cxx[@]}" cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" >/dev/null
  ninja -C "$dir"
  BUILD_DIR="$dir"
}

# The Docker tests need a daemon on /var/run/docker.sock: start Debian's dockerd when none
# answers /_ping (defaults work here: overlay2, iptables; see docs/design.md), and wait for it.
docker_daemon() {
  local socket=/var/run/docker.sock
  ping_docker() { curl -sf --max-time 2 --unix-socket "$socket" http://docker/_ping >/dev/null 2>&1; }
  ping_docker && return 0
  if ! command -v dockerd >/dev/null; then log "no dockerd (install docker.io): Docker tests will skip"; return 0; fi
  log "starting dockerd (log: /var/log/tessera-dockerd.log)"
  as_root sh -c 'setsid dockerd >/var/log/tessera-dockerd.log 2>&1 < /dev/null &'
  local deadline=$((SECONDS + 60))
  until ping_docker; do
    if [ $SECONDS -ge $deadline ]; then
      log "dockerd did not answer within 60s:"; tail -n 20 /var/log/tessera-dockerd.log >&2 || true
      return 0
    fi
    sleep 0.5
  done
  log "dockerd is up"
}

run_tests() {
  log "testing in $BUILD_DIR"
  # clang's sanitizer runtime (build-asan/) names functions and lines with llvm-14's symbolizer.
  if [ -x /usr/bin/llvm-symbolizer-14 ]; then export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14; fi
  local jobs="${TEST_JOBS:-2}"
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$jobs" --timeout 600
}

format() {
  local files
  files=$(cd "$ROOT" && git ls-files -- '*.h' '*.cc' | grep -v '^examples/.*/build/')
  if [ "${1:-}" = "--check" ]; then
    (cd "$ROOT" && clang-format --dry-run --Werror $files)
  else
    (cd "$ROOT" && clang-format -i $files)
  fi
}

# The include rules of docs/architecture.md ("Layers"); stdlib Python, well under a second.
layers() {
  python3 "$ROOT/scripts/check_layers.py" "$ROOT"
}

tidy() {
  local files=("$@")
  if [ ${#files[@]} -eq 0 ]; then
    mapfile -t files < <(cd "$ROOT" && git diff --name-only origin/main -- '*.cc' 2>/dev/null ||
                         git diff --name-only HEAD~1 -- '*.cc')
  fi
  [ ${#files[@]} -eq 0 ] && { log "nothing to tidy"; return 0; }
  [ -f "$ROOT/build/compile_commands.json" ] || build
  (cd "$ROOT" && clang-tidy -p build --quiet "${files[@]}")
}

# The fuzzers (fuzz/README.md): a clang build of only the fuzz targets in build-fuzz/, then each
# target for `seconds` on a scratch copy of its seed corpus (the repository is never written).
# Fails on the first target that crashes, naming the reproducer.
fuzz_build() {
  local dir="$ROOT/build-fuzz"
  log "building the fuzz targets in $dir"
  CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Fuzz \
    -DTESSERA_FUZZ=ON >/dev/null
  ninja -C "$dir" fuzz_targets
}

fuzz() {
  local target="${1:-all}" seconds="${2:-20}" dir="$ROOT/build-fuzz"
  [ -n "$target" ] || target=all
  fuzz_build
  local targets=()
  if [ "$target" = all ]; then
    for seeds in "$ROOT"/fuzz/corpus/*/; do targets+=("$(basename "$seeds")"); done
  else
    targets=("$target")
  fi
  local name
  for name in "${targets[@]}"; do
    local bin="$dir/bin/${name}_fuzz" corpus="$dir/corpus/$name" artifacts="$dir/artifacts/$name"
    [ -x "$bin" ] || { log "no fuzz target '$name' (see fuzz/README.md)"; return 1; }
    rm -rf "$artifacts"; mkdir -p "$corpus" "$artifacts"
    cp -n "$ROOT/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
    log "fuzzing $name for ${seconds}s"
    if ! "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" \
        >"$dir/$name.log" 2>&1; then
      tail -n 40 "$dir/$name.log" >&2
      log "fuzz target '$name' failed; reproducers: $(ls "$artifacts"/* 2>/dev/null | tr '\n' ' ')"
      log "reproduce with: $bin <reproducer>"
      return 1
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$dir/$name.log" |
      tr -s ' \n' ' ' | sed "s/^/==> $name: /;s/ *$/\n/" >&2
  done
}

cmd="${1:-}"; shift || true
case "$cmd" in
  up)
    deps; build; docker_daemon
    exec "$BUILD_DIR/bin/tessera" local "$@"
    ;;
  test)
    deps; ui_deps; build "${1:-}"; docker_daemon; run_tests
    ;;
  build) deps; build "${1:-}" ;;
  deps) deps; ui_deps ;;
  format) format "${1:-}" ;;
  layers) layers ;;
  tidy) tidy "$@" ;;
  fuzz) deps; fuzz "$@" ;;
  fuzz-build) deps; fuzz_build ;;
  *)
    sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
