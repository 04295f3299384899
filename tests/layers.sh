#!/usr/bin/env bash
# layers.sh [SRC_DIR]: fails when an #include points up the layers.
#   engine/        may not include router/, gateway/, cli/, config/, tools/
#   common/        may not include any other layer
#   tools/synth/   may not include router/, gateway/, cli/, config/
#   config/        may not include engine/, router/, gateway/, cli/, tools/
#   router/        may not include gateway/, cli/
#   gateway/http/  may not include gateway/api/, router/, engine/, cli/
#   gateway/       may not include cli/
# The build's include roots already refuse most of these (each library sees
# only what it links); this check also catches relative ("../") includes and
# headers no target compiles. `layers.sh --selftest` proves it can fail.
set -euo pipefail

check() {
  local src="$1" bad=0 dir deny f hit
  local rules=(
    "engine|router gateway cli config tools"
    "common|engine router gateway cli config tools"
    "tools/synth|router gateway cli config"
    "config|engine router gateway cli tools"
    "router|gateway cli"
    "gateway/http|gateway/api router engine cli"
    "gateway|cli"
  )
  for rule in "${rules[@]}"; do
    dir="${rule%%|*}"
    deny="${rule#*|}"
    [ -d "$src/$dir" ] || continue
    local alt
    alt="$(echo "$deny" | sed 's/ /|/g')"
    while IFS= read -r -d '' f; do
      # gateway/ is checked as a whole; gateway/http has its own stricter rule.
      hit="$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<](\.\./)*($alt)/" "$f" || true)"
      if [ -n "$hit" ]; then
        while IFS= read -r line; do
          echo "layers: ${f#"$src"/}:${line%%:*}: ${dir}/ may not include ${line#*:}" >&2
        done <<<"$hit"
        bad=1
      fi
    done < <(find "$src/$dir" -name '*.[ch]' -print0)
  done
  return $bad
}

if [ "${1:-}" = "--selftest" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/engine" "$tmp/router" "$tmp/gateway/http"
  echo '#include "engine/lfm.h"' >"$tmp/router/ok.c"
  check "$tmp" || { echo "selftest: a clean tree failed" >&2; exit 1; }
  for c in 'engine/a.c|#include "router/dispatch.h"' 'engine/b.h|#include "../gateway/x.h"' \
    'engine/c.c|  #  include "cli/cli.h"' 'router/d.c|#include "gateway/api/sse.h"' \
    'router/e.c|#include "cli/cli.h"' 'gateway/http/f.c|#include "gateway/api/openai_api.h"'; do
    rm -rf "$tmp"/engine/* "$tmp"/router/* "$tmp"/gateway/http/*
    echo "${c#*|}" >"$tmp/${c%%|*}"
    if check "$tmp" 2>/dev/null; then
      echo "selftest: ${c%%|*} with ${c#*|} was not caught" >&2
      exit 1
    fi
  done
  echo "layers selftest: ok"
  exit 0
fi

src="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
check "$src"
echo "layers: ok"
