#!/usr/bin/env bash
# System packages natlens's set-up needs on Debian: python3-venv (for .venv) and, for the tests,
# a Java runtime (--with-java, for Spark) and Chromium (--with-chromium, for the HTML report's
# browser tests). Installed with apt when missing and we are root; otherwise the exact
# command to run is printed.
set -eu
need=()
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need+=("python3-venv")
fi
with_java=no
with_chromium=no
for flag in "$@"; do
  case "$flag" in
    --with-java) with_java=yes ;;
    --with-chromium) with_chromium=yes ;;
    *) echo "system-deps.sh: unknown option $flag" >&2; exit 64 ;;
  esac
done
if [ "$with_chromium" = "yes" ] && [ ! -x /usr/bin/chromium ]; then
  need+=("chromium")
fi
if [ "$with_java" = "yes" ] && ! command -v java >/dev/null 2>&1; then
  if apt-cache policy openjdk-17-jre-headless 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    need+=("openjdk-17-jre-headless")
  else
    need+=("default-jre-headless")
  fi
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "natlens needs these Debian packages: ${need[*]}" >&2
  echo "run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
