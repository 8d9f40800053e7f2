#!/usr/bin/env bash
# Debian packages the tests need (a real X server for the screenshot test, Qt's xcb needs, Chromium and ffmpeg).
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
fi
[ -e /usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4 ] || [ -e /usr/lib/aarch64-linux-gnu/libxcb-icccm.so.4 ] || need+=(libxcb-icccm4)
[ -e /usr/lib/x86_64-linux-gnu/libxcb-keysyms.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libxcb-keysyms.so.1 ] || need+=(libxcb-keysyms1)
# the rest of what Qt's xcb platform plugin links (present on most desktops, missing on bare CI images)
for pair in libxcb-cursor.so.0:libxcb-cursor0 libxkbcommon-x11.so.0:libxkbcommon-x11-0 libxcb-image.so.0:libxcb-image0 \
            libxcb-render-util.so.0:libxcb-render-util0 libxcb-shape.so.0:libxcb-shape0 libEGL.so.1:libegl1 libGL.so.1:libgl1; do
  ldconfig -p 2>/dev/null | grep -q "${pair%%:*}" || need+=("${pair##*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian packages for the $what: ${need[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || echo "warning: could not install ${need[*]}; $( [ "$what" = qt ] && echo "the window may not open: install them with sudo apt install" || echo "the tests that need them will skip")"
else
  echo "note: ${need[*]} missing and cannot be installed here (not root or no apt); $( [ "$what" = qt ] && echo "the window may need them: sudo apt install ${need[*]}" || echo "those tests will skip")"
fi
exit 0
