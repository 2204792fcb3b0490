#!/usr/bin/env bash
# The book's CI gate (called by .ci/run):
#   1. the committed generated pages equal a fresh `mmsim book` run;
#   2. a pinned mdbook builds the book offline;
#   3. headless Chromium opens a built scenario chapter, its DOM holds the diagram and the
#      browser decoded it (book/diagram-check.js marks it with its size), and the diagram
#      itself loads as an SVG document with its race edge.
# Each step says what it does and fails loudly, naming the step.
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.4.52
CHAPTER=scenarios/gup-vs-unshare
DIAGRAM=generated/gup-vs-unshare.svg

step() { printf '\n==> book: %s\n' "$*"; STEP_START=$SECONDS; STEP="$*"; }
done_step() { printf '    (%s: %ss)\n' "$STEP" "$((SECONDS - STEP_START))"; }
die() { printf '\nbook/check.sh FAILED at step "%s": %s\n' "$STEP" "$*" >&2; exit 1; }

step "generated diagrams are current (mmsim book --check)"
cargo run -q -p mmsim -- book --check \
    || die "book/src/generated differs from a fresh run: run \`cargo run -p mmsim -- book\` and commit book/src/generated"
done_step

step "mdbook $MDBOOK_VERSION"
export PATH="$HOME/.cargo/bin:$PATH"
if ! mdbook --version 2>/dev/null | grep -qx "mdbook v$MDBOOK_VERSION"; then
    # only the search feature: `serve` and `watch` (a web server, a file watcher) are not needed
    # to build the book and would more than double the install time
    echo "installing mdbook $MDBOOK_VERSION with cargo (a few minutes once; cached in ~/.cargo/bin)"
    cargo install mdbook --version "$MDBOOK_VERSION" --locked --quiet \
        --no-default-features --features search \
        || die "cargo install mdbook --version $MDBOOK_VERSION --locked failed"
fi
mdbook --version
done_step

step "mdbook build book"
rm -rf book/build
mdbook build book || die "mdbook build book failed"
html="book/build/$CHAPTER.html"
[ -f "$html" ] || die "$html was not built (is the chapter in book/src/SUMMARY.md?)"
[ -f "book/build/$DIAGRAM" ] || die "book/build/$DIAGRAM was not copied into the built book"
done_step

step "headless Chromium renders $CHAPTER with its diagram"
if ! command -v chromium >/dev/null; then
    echo "installing Debian's chromium"
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
        || die "apt-get install chromium failed"
fi
chromium --version
profile_dir=$(mktemp -d)
trap 'rm -rf "$profile_dir"' EXIT
browse() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile_dir" \
        --virtual-time-budget=5000 --dump-dom "$1" 2>/dev/null
}
dom=$(browse "file://$PWD/$html") || die "chromium could not load $html"
grep -q "<img[^>]*class=\"mmsim-diagram\"[^>]*src=\"../$DIAGRAM\"" <<<"$dom" \
    || die "the rendered DOM of $html has no <img class=\"mmsim-diagram\" src=\"../$DIAGRAM\">"
grep -q 'class="language-mermaid[ "]' <<<"$dom" \
    || die "the rendered DOM of $html has no mermaid block"
size=$(grep -o '<img[^>]*class="mmsim-diagram"[^>]*>' <<<"$dom" | grep -o 'data-rendered="[^"]*"' | head -1)
case "$size" in
    'data-rendered="'[1-9]*x[1-9]*'"') ;;
    *) die "the diagram <img> in $html did not render in the browser (${size:-no data-rendered mark})" ;;
esac
echo "chapter DOM: $(wc -c <<<"$dom") bytes, diagram rendered ($size)"
svg=$(browse "file://$PWD/book/build/$DIAGRAM") || die "chromium could not load $DIAGRAM"
grep -q '<svg' <<<"$svg" || die "chromium did not parse book/build/$DIAGRAM as SVG"
grep -q 'class="race"' <<<"$svg" || die "book/build/$DIAGRAM has no race edge"
grep -q 'parsererror' <<<"$svg" && die "chromium reports an XML parse error in $DIAGRAM"
echo "diagram DOM: $(wc -c <<<"$svg") bytes, <svg> with the race edge"
done_step

echo
echo "book: all checks passed"
