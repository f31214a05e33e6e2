#!/usr/bin/env bash
# Builds the web app: the Rust engine compiled to wasm32, wrapped by wasm-bindgen into www/pkg/,
# shrunk by wasm-opt when it is installed, and the weights file copied next to the page.
#
#   ./build.sh          build www/ (a plain static site: put it on any static host as is)
#   ./build.sh serve    build, then serve it on http://localhost:8080 (PORT=... to change)
#   ./build.sh test     installs what the tests need, builds, then runs every test: `cargo test --release`
#                       (native GPU tests), the page's unit tests (node tests/browser/unit.mjs) and the browser
#                       end-to-end tests (node tests/browser/e2e.mjs and tests/browser/page.mjs)
#   ./build.sh precache [DIR]
#                       only rewrites DIR/precache.js (default www): the list of files, with their SHA-256,
#                       that the service worker keeps for offline use (after editing files in www/ by hand)
#
# It installs what is missing: the rustup target and wasm-bindgen-cli at the exact version the crate pins
# (the CLI and the library must match, or the generated JS does not fit the wasm); for `test` also the npm
# packages (playwright-core, binaryen) and, through apt-get when run as root, Mesa's software Vulkan
# (lavapipe, for machines without a GPU), Chromium and the fonts the screenshots use. Not as root, it stops
# first with the one command to run.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${PORT:-8080}
WEIGHTS_FILE=weights/vgg19.q8.bin
MODE=${1:-build}
case "$MODE" in
    build | serve | test | precache) ;;
    *) printf '[build.sh] error: unknown argument %s (use: ./build.sh [serve|test|precache])\n' "$MODE" >&2; exit 2 ;;
esac

log() { printf '\033[1m[build.sh]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[build.sh] error:\033[0m %s\n' "$*" >&2; exit 1; }

# The files of the page that the service worker (www/sw.js) keeps for offline use, with their SHA-256,
# and the version they make: DIR/precache.js. The weights are not in it (the page caches them itself).
sha256_of() {
    if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}
write_precache() {
    local dir=$1 f lines=""
    [ -f "$dir/sw.js" ] || die "$dir/sw.js is missing: $dir is not the page's folder"
    # The globs name files of $dir.
    pushd "$dir" >/dev/null
    shopt -s nullglob
    local files=(index.html style.css app.js manifest.webmanifest lib/*.js pkg/stylize.js pkg/stylize_bg.wasm
        icons/*.png samples/*.png samples/*.jpg samples/thumbs/*.jpg)
    shopt -u nullglob
    popd >/dev/null
    for f in "${files[@]}"; do
        [ -f "$dir/$f" ] || die "$dir/$f is missing (run ./build.sh to make www/pkg)"
        lines="$lines    { url: \"$f\", sha256: \"$(sha256_of "$dir/$f")\" },"$'\n'
    done
    local version
    version=$(printf '%s' "$lines" | { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; } | cut -c1-16)
    {
        printf '// Written by ./build.sh (not committed): the files of this version of the page, for sw.js.\n'
        printf 'self.PRECACHE = {\n  version: "%s",\n  files: [\n%s  ],\n};\n' "$version" "$lines"
    } > "$dir/precache.js"
    log "$dir/precache.js: version $version, ${#files[@]} files"
}
if [ "$MODE" = precache ]; then
    write_precache "${2:-www}"
    exit 0
fi

command -v cargo >/dev/null || die "cargo is missing: install Rust from https://rustup.rs"

# 0. The test tools. System packages first (before minutes of building): a Vulkan driver for the native GPU
#    tests (lavapipe where there is no GPU), Chromium for the browser tests, a font for its screenshots.
SYSTEM_PACKAGES="mesa-vulkan-drivers libvulkan1 chromium fonts-dejavu-core"
missing_system_pieces() {
    local missing=""
    # The Vulkan loader and at least one driver (a real GPU's, or Mesa's lavapipe).
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' && [ ! -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ]; then
        missing="$missing libvulkan1"
    fi
    if ! compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null && ! compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; then
        missing="$missing mesa-vulkan-drivers"
    fi
    if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then missing="$missing chromium"; fi
    if [ ! -d /usr/share/fonts/truetype/dejavu ]; then missing="$missing fonts-dejavu-core"; fi
    printf '%s' "${missing# }"
}
if [ "$MODE" = test ]; then
    MISSING=$(missing_system_pieces)
    if [ -n "$MISSING" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing $MISSING (apt-get; once)"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update
            # shellcheck disable=SC2086 # a list of package names
            apt-get install -y --no-install-recommends $SYSTEM_PACKAGES
            MISSING=$(missing_system_pieces)
            [ -z "$MISSING" ] || die "still missing after apt-get install: $MISSING"
        elif command -v apt-get >/dev/null; then
            die "the tests need $MISSING; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends $SYSTEM_PACKAGES"
        else
            die "the tests need $MISSING (a Vulkan loader and driver, Chromium at \$CHROMIUM or /usr/bin/chromium, DejaVu fonts); install them with your system's package manager"
        fi
    fi
    # Mesa's software Vulkan (lavapipe) wants a runtime dir; a private one keeps its logs quiet.
    if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
        XDG_RUNTIME_DIR=$(mktemp -d)
        export XDG_RUNTIME_DIR
    fi
fi

#    Then the npm tools (exact versions from package-lock.json): playwright-core drives Chromium, binaryen's
#    wasm-opt shrinks the wasm. Only `test` installs them; a plain build uses wasm-opt if it is there.
if [ "$MODE" = test ]; then
    command -v npm >/dev/null || die "npm is missing: apt-get install nodejs npm"
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        log "npm ci"
        npm ci --no-audit --no-fund
    fi
fi

# 1. The wasm32 target.
if command -v rustup >/dev/null; then
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        log "adding the rustup target wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
fi

# 2. wasm-bindgen-cli at the version the crate uses (Cargo.lock wins; else the "=x.y.z" pin in Cargo.toml).
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock 2>/dev/null || true)
if [ -z "$WB_VERSION" ]; then
    WB_VERSION=$(sed -n 's/^wasm-bindgen *= *"=\{0,1\}\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
fi
[ -n "$WB_VERSION" ] || die "cannot find the wasm-bindgen version in Cargo.lock or Cargo.toml"
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WB_VERSION" ]; then
    log "installing wasm-bindgen-cli $WB_VERSION (a few minutes, once)"
    # No --locked: its lock file names versions some registries no longer serve.
    cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

# 3. Compile the library.
log "cargo build --target wasm32-unknown-unknown --release --lib"
cargo build --target wasm32-unknown-unknown --release --lib
WASM="$TARGET_DIR/wasm32-unknown-unknown/release/stylize.wasm"
[ -f "$WASM" ] || die "cargo did not produce $WASM"

# 4. JS bindings (one ES module + the wasm) into www/pkg.
log "wasm-bindgen --target web --out-dir www/pkg"
rm -rf www/pkg
wasm-bindgen --target web --no-typescript --out-dir www/pkg "$WASM"

# 5. Shrink it with wasm-opt when one is installed (npm `binaryen` in node_modules, or the system's). Old
#    binaryen releases (Debian bookworm's 108) mis-handle the reference-types table Rust emits, so the
#    result is checked by instantiating it in node; a broken one is discarded (the page works without).
WASM_OPT=""
if [ -x node_modules/.bin/wasm-opt ]; then
    WASM_OPT=node_modules/.bin/wasm-opt
elif command -v wasm-opt >/dev/null; then
    WASM_OPT=$(command -v wasm-opt)
fi
if [ -n "$WASM_OPT" ]; then
    log "$WASM_OPT -Oz ($("$WASM_OPT" --version 2>/dev/null | head -n1))"
    if "$WASM_OPT" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
        --enable-mutable-globals --enable-reference-types --enable-multivalue \
        -o www/pkg/stylize_bg.opt.wasm www/pkg/stylize_bg.wasm; then
        if ! command -v node >/dev/null; then
            log "node is missing, so the optimised wasm cannot be checked: keeping the unoptimised one"
            rm -f www/pkg/stylize_bg.opt.wasm
        elif node --input-type=module -e '
            import fs from "node:fs";
            const glue = await import(process.argv[1]);
            try { glue.initSync({ module: fs.readFileSync(process.argv[2]) }); }
            catch (e) { console.error(e.message); process.exit(1); }' \
            "$ROOT/www/pkg/stylize.js" "$ROOT/www/pkg/stylize_bg.opt.wasm"; then
            mv www/pkg/stylize_bg.opt.wasm www/pkg/stylize_bg.wasm
        else
            log "this wasm-opt produced a module that does not instantiate (too old a binaryen?): keeping the" \
                "unoptimised one (npm install binaryen gives a recent wasm-opt)"
            rm -f www/pkg/stylize_bg.opt.wasm
        fi
    else
        log "wasm-opt failed: keeping the unoptimised wasm"
        rm -f www/pkg/stylize_bg.opt.wasm
    fi
else
    log "wasm-opt not found (npm install binaryen, or apt-get install binaryen): skipping the size optimisation"
fi
log "www/pkg/stylize_bg.wasm: $(du -k www/pkg/stylize_bg.wasm | cut -f1) KiB"

# 6. The weights next to the page, so that the site is self-contained (www/weights is not committed).
if [ -f "$WEIGHTS_FILE" ]; then
    mkdir -p www/weights
    cp -p "$WEIGHTS_FILE" www/weights/
else
    log "warning: $WEIGHTS_FILE is missing; the page will say so when it tries to load it"
fi

# 7. The service worker's list of this version's files.
write_precache www

case "$MODE" in
    serve)
        log "serving www/ on http://localhost:$PORT/ (Ctrl-C stops)"
        if command -v python3 >/dev/null; then
            exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory www
        else
            exec node tests/browser/serve.mjs www "$PORT"
        fi
        ;;
    test)
        log "cargo test --release"
        cargo test --release
        log "node tests/browser/unit.mjs"
        node tests/browser/unit.mjs
        log "node tests/browser/e2e.mjs"
        node tests/browser/e2e.mjs
        log "node tests/browser/page.mjs"
        node tests/browser/page.mjs
        ;;
    *)
        log "done: www/ is ready (./build.sh serve to try it)"
        ;;
esac
