#!/usr/bin/env bash
# Runs every cargo-fuzz target for N seconds (default 30). Works on the stable toolchain:
# RUSTC_BOOTSTRAP lets cargo-fuzz pass the sanitizer flags stable rustc otherwise refuses.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p logs
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  log="logs/$t.log"
  if cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -max_len=4096 \
       -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    rss=$(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}')
    echo "fuzz $t: ${secs}s, ${runs:-?} inputs, peak RSS ${rss:-?} MB, no crash"
  else
    echo "fuzz $t FAILED; last lines of $log:"
    tail -40 "$log"
    exit 1
  fi
done
