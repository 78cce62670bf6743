#!/usr/bin/env bash
# Builds bin/jaeger, Jaeger v2 (all in one: OTLP receivers over gRPC and
# HTTP, in-memory storage, the query API), the trace backend of the
# tracing tests. Pinned in tools/jaeger/go.mod (a tool directive).
# Rebuilds only when the pin changes. About 8 minutes the first time on two
# shared cores with empty Go caches (1.2 GB of modules); a 120 MB binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x bin/jaeger ] || [ tools/jaeger/go.mod -nt bin/jaeger ]; then
	echo "building Jaeger (tools/jaeger)" >&2
	mkdir -p bin
	(cd tools/jaeger && GOFLAGS="${GOFLAGS:--buildvcs=false}" go build -o ../../bin/jaeger.tmp github.com/jaegertracing/jaeger/cmd/jaeger)
	mv bin/jaeger.tmp bin/jaeger
fi
