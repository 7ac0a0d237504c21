#!/usr/bin/env bash
# serve-sidebyside.sh: terse serve and llama.cpp's llama-server on the same
# GGUF, under the same load from bench/serveload (streaming /v1/completions,
# ignore_eos, temperature 0), with 1 client and then N at once.
#
#   bench/serve-sidebyside.sh MODEL.gguf [CLIENTS=16] [MAX_TOKENS=64] [REQUESTS=2]
#
# Run from the repository root. llama-server comes from $LLAMA_BIN or
# ../shared/peer/llama.cpp/bin; both servers get 2 threads and room for N
# sequences. The machine is shared: compare only ratios from one run.
# TERSE_ONLY=1 skips llama-server (for checkpoints it cannot read).
set -euo pipefail
model=${1:?usage: bench/serve-sidebyside.sh MODEL.gguf [CLIENTS] [MAX_TOKENS] [REQUESTS]}
clients=${2:-16}
max_tokens=${3:-64}
requests=${4:-2}
threads=${THREADS:-2}
shared=${TERSE_SHARED:-../shared}
llama_bin=${LLAMA_BIN:-$shared/peer/llama.cpp/bin}
prompt=${PROMPT:-"The President said that"}
tmp=$(mktemp -d)
pid=""
cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/terse" ./cmd/terse
go build -o "$tmp/serveload" ./bench/serveload

wait_ready() { # url
	for _ in $(seq 1 300); do
		if curl -sf "$1/health" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	echo "serve-sidebyside: $1 did not become ready" >&2
	return 1
}

load() { # name url
	for c in 1 "$clients"; do
		echo "== $1, $c client(s)"
		"$tmp/serveload" -url "$2" -clients "$c" -requests "$requests" -max-tokens "$max_tokens" -prompt "$prompt"
	done
}

echo "model $model, $clients clients, $max_tokens tokens per request, $requests requests per client, $threads threads"
"$tmp/terse" serve --model "$model" --addr 127.0.0.1:18481 --threads "$threads" --max-seqs "$clients" 2>"$tmp/terse.log" &
pid=$!
wait_ready http://127.0.0.1:18481
load "terse serve" http://127.0.0.1:18481
kill -TERM "$pid"; wait "$pid" || true; pid=""

if [[ -n ${TERSE_ONLY:-} ]]; then exit 0; fi
if [[ ! -x $llama_bin/llama-server ]]; then
	echo "serve-sidebyside: no llama-server in $llama_bin; skipping it" >&2
	exit 0
fi
# Passive OpenMP waits: llama.cpp's spinning threads collapse (to a few
# tokens/s) when the shared machine's cores are oversubscribed.
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} "$llama_bin/llama-server" -m "$model" --host 127.0.0.1 --port 18482 -t "$threads" -np "$clients" \
	-c $((clients * 1024)) -cb >"$tmp/llama.log" 2>&1 &
pid=$!
if ! wait_ready http://127.0.0.1:18482; then tail -20 "$tmp/llama.log" >&2; exit 1; fi
load "llama-server" http://127.0.0.1:18482
