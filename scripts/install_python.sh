#!/usr/bin/env bash
# Makes `import strata` work in new shells, for the python3 first on PATH and
# for Debian's /usr/bin/python3, without pip: it writes a one-line strata.pth
# (the path of build/python, where the build assembles the package) into
# each interpreter's site-packages directory, which Python reads at start-up.
#
#   scripts/install_python.sh          # after the build (scripts/setup.sh calls it)
#
# Debian 12 marks its Python as externally managed (PEP 668): pip must not
# install there, and nothing here does. The .pth file goes where Debian keeps
# locally installed software, /usr/local/lib/python3.11/dist-packages
# (sysconfig's purelib, never touched by dpkg/apt), or, when that is not
# writable and there is no sudo, into the user's site-packages. A pyenv
# interpreter gets it in its own site-packages. The built module is for
# CPython 3.11 (the ABI of Debian's python3); an interpreter of another
# version is skipped with a message. Re-running replaces the file, so the
# last checkout that ran it is the one `import strata` finds. Uninstall: delete
# the strata.pth files this script lists.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/build/python"
if ! ls "$pkg"/strata/_strata*.so >/dev/null 2>&1; then
  echo "install_python: $pkg/strata has no built module; build first (cmake --build build)" >&2
  exit 1
fi

candidates=()
onpath="$(command -v python3 || true)"
[ -n "$onpath" ] && candidates+=("$onpath")
[ -x /usr/bin/python3 ] && candidates+=(/usr/bin/python3)

seen=""
status=0
for py in "${candidates[@]}"; do
  real="$(env -u PYTHONPATH "$py" -c 'import sys; print(sys.executable)')" || continue
  case " $seen " in *" $real "*) continue ;; esac
  seen="$seen $real"
  suffix="$("$real" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
  if ! ls "$pkg/strata/_strata$suffix" >/dev/null 2>&1; then
    echo "install_python: skipping $real: the module is built as $(basename "$pkg"/strata/_strata*.so), this Python needs _strata$suffix"
    continue
  fi
  site="$("$real" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  target=""
  if mkdir -p "$site" 2>/dev/null && [ -w "$site" ]; then
    printf '%s\n' "$pkg" >"$site/strata.pth"
    target="$site/strata.pth"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo mkdir -p "$site" && printf '%s\n' "$pkg" | sudo tee "$site/strata.pth" >/dev/null
    target="$site/strata.pth"
  else
    user_site="$("$real" -c 'import site; print(site.getusersitepackages())')"
    mkdir -p "$user_site"
    printf '%s\n' "$pkg" >"$user_site/strata.pth"
    target="$user_site/strata.pth"
  fi
  # A new interpreter, with none of this shell's Python variables, must find this build.
  found="$(env -u PYTHONPATH -u PYTHONHOME -u PYTHONNOUSERSITE "$real" -c 'import strata, os; print(os.path.dirname(os.path.dirname(strata.__file__)))' 2>&1)" || true
  if [ "$found" = "$pkg" ]; then
    echo "install_python: $real imports strata from $pkg (via $target)"
  else
    echo "install_python: $real does not import this build's strata after writing $target: $found" >&2
    status=1
  fi
done
exit $status
