#!/usr/bin/env bash
# Debian packages the tests need (a real X server for the screenshot test, Qt's xcb needs, Chromium, ffmpeg, jackd).
# Installed only where apt exists and we are root; elsewhere the tests that need them skip.
# `bash tests/system_deps.sh qt` (what `make run` does) installs only the libraries the window needs.
set -u
[ "$(uname -s)" = Linux ] || exit 0  # Windows and macOS bring their own Qt platform libraries
what=${1:-tests}
need=()
if [ "$what" = tests ]; then
  command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
  # a real browser and ffmpeg read the MJPEG stream as OBS's Browser Source and Media Source do (test_serve_browser)
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
  command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
  command -v jackd >/dev/null 2>&1 || need+=(jackd2)  # a JACK server (dummy driver) for the MIDI tests' JACK ports
fi
# what Qt's xcb platform plugin loads (present on most desktops, missing on bare CI images): the one list in
# assets/qt-xcb-libs.txt, which the app also checks before Qt starts
libs="$(dirname "$0")/../assets/qt-xcb-libs.txt"
known=$(ldconfig -p 2>/dev/null)
while read -r lib package; do
  case "$lib" in ''|'#'*) continue ;; esac
  grep -qF "	$lib " <<<"$known" || need+=("$package")
done <"$libs"
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian packages for the $what: ${need[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || echo "warning: could not install ${need[*]}; $( [ "$what" = qt ] && echo "the window may not open: install them with sudo apt install ${need[*]}" || echo "the tests that need them will skip")"
else
  echo "note: ${need[*]} missing and cannot be installed here (not root or no apt); $( [ "$what" = qt ] && echo "the window may need them: sudo apt install ${need[*]}" || echo "those tests will skip")"
fi
exit 0
