# Sourced by the benchmark scripts: `bench_start` makes a scratch folder
# ($work: $BENCH_DIR, or a new temporary one), removed on exit, and prints
# the machine and the commit a run's figures belong to.
bench_start() {
  work=${BENCH_DIR:-$(mktemp -d -p "${TMPDIR:-/tmp}")}
  mkdir -p "$work"
  trap 'rm -rf "$work"' EXIT
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB memory"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
}
