#!/usr/bin/env bash
# tracecar demo (`make demo`): Jaeger, the demo app, and the sidecar in front of
# it, all on 127.0.0.1. Sends a few requests through the sidecar, prints each
# trace as a span tree read back from Jaeger, then keeps everything running
# until Ctrl-C. Every process it starts is stopped on exit, on Ctrl-C and on
# any failure.
#
#   deploy/demo/run.sh             build, run, then wait for Ctrl-C
#   deploy/demo/run.sh --once      build, run, print the traces, stop everything and exit
#   deploy/demo/run.sh --no-build  use bin/sidecar and bin/demo-app as they are (make demo)
#
# The app's outbound calls (GET /chain?to=URL) go through the sidecar's egress
# proxy (the app's HTTP_PROXY), which stitches them into the inbound request's
# trace even when the app forwards only the correlation ID, or nothing.
#
# Ports (all on 127.0.0.1):
#   15006  sidecar inbound (send requests here)  15000  sidecar admin (/metrics, /readyz)
#   15001  sidecar egress (the app's HTTP_PROXY)   15002  sidecar outbound gRPC (dial with :authority)
#   8080   demo app                              16686  Jaeger query API (UI with Docker)
#   4317   Jaeger OTLP/gRPC   4318  Jaeger OTLP/HTTP  13133  Jaeger health (/status)
#
# Jaeger: where a Docker engine answers, the official jaegertracing/jaeger
# image (it has the UI); elsewhere bin/jaeger, built from source (no UI).
set -euo pipefail

once=false
build=true
for arg in "$@"; do
	case $arg in
	--once) once=true ;;
	--no-build) build=false ;;
	*)
		echo "usage: $0 [--once] [--no-build]" >&2
		exit 2
		;;
	esac
done

cd "$(dirname "$0")/../.."
root=$PWD
GO=${GO:-go}

host=127.0.0.1
sidecar_port=15006
admin_port=15000
egress_port=15001
egress_grpc_port=15002
app_port=8080
otlp_grpc_port=4317
otlp_http_port=4318
query_port=16686
health_port=13133
jaeger_image=jaegertracing/jaeger:2.13.0 # the image of Jaeger v1.76.0 / v2.13.0
query=http://$host:$query_port

logs=$(mktemp -d "${TMPDIR:-/tmp}/tracecar-demo.XXXXXX")
pids=()
names=()
container=""

if [[ -t 1 ]]; then
	say() { printf '\033[1m%s\033[0m\n' "$*"; }
else
	say() { printf '%s\n' "$*"; }
fi
fail() {
	echo "demo: $*" >&2
	exit 1
}

# stop ends every process this script started: TERM, up to 10 s to exit, then KILL.
stop() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n $container ]]; then
		docker rm -f "$container" >/dev/null 2>&1 || true
	fi
	local i
	for i in "${!pids[@]}"; do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for _ in $(seq 100); do
		local alive=false
		for i in "${!pids[@]}"; do
			kill -0 "${pids[$i]}" 2>/dev/null && alive=true
		done
		$alive || break
		sleep 0.1
	done
	for i in "${!pids[@]}"; do
		kill -KILL "${pids[$i]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	echo "demo stopped; logs are in $logs"
	exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD... runs CMD in the background with its output in $logs/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$logs/$name.log" 2>&1 &
	pids+=($!)
	names+=("$name")
}

# listening PORT: something accepts connections on $host:PORT.
listening() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }

# ready NAME URL SECONDS polls URL until it answers 2xx; fails early if NAME died.
ready() {
	local name=$1 url=$2 deadline=$((SECONDS + $3)) i
	until curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; do
		for i in "${!names[@]}"; do
			if [[ ${names[$i]} == "$name" ]] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
				tail -n 20 "$logs/$name.log" >&2
				fail "$name exited during start-up (log: $logs/$name.log)"
			fi
		done
		((SECONDS < deadline)) || fail "$name not ready at $url after $3 s (log: $logs/$name.log)"
		sleep 0.1
	done
}

for port in $sidecar_port $admin_port $egress_port $egress_grpc_port $app_port $otlp_grpc_port $otlp_http_port $query_port $health_port; do
	if listening "$port"; then
		fail "port $host:$port is already in use (another demo still running?)"
	fi
done

mkdir -p bin
if $build; then
	say "Building bin/sidecar and bin/demo-app"
	"$GO" build -o bin/sidecar ./cmd/sidecar
	"$GO" build -o bin/demo-app ./deploy/demo/app
fi
for bin in bin/sidecar bin/demo-app; do
	[[ -x $bin ]] || fail "$bin is missing (run without --no-build, or make demo)"
done

ui=false
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	say "Starting Jaeger ($jaeger_image, with UI)"
	container=$(docker run -d --rm --name "tracecar-demo-jaeger-$$" \
		-p "$host:$otlp_grpc_port:4317" -p "$host:$otlp_http_port:4318" \
		-p "$host:$query_port:16686" -p "$host:$health_port:13133" "$jaeger_image")
	start jaeger docker logs -f "$container"
	ui=true
else
	if [[ ! -x bin/jaeger ]]; then
		say "Building bin/jaeger from source (Jaeger v1.76.0; takes a few minutes once)"
		(cd deploy/jaeger && "$GO" build -o "$root/bin/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
	fi
	say "Starting Jaeger (bin/jaeger, built from source: query API only, no UI)"
	start jaeger bin/jaeger --config="file:$root/deploy/jaeger/config.yaml"
fi
ready jaeger "http://$host:$health_port/status" 60

say "Starting demo-app on $host:$app_port and the sidecar on $host:$sidecar_port (egress proxy on $host:$egress_port)"
export OTEL_EXPORTER_OTLP_ENDPOINT=http://$host:$otlp_http_port
export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
export OTEL_BSP_SCHEDULE_DELAY=200 # export spans within 200 ms, so the traces show at once
OTEL_SERVICE_NAME=demo-app HTTP_PROXY="http://$host:$egress_port" \
	start demo-app bin/demo-app -addr "$host:$app_port"
OTEL_SERVICE_NAME=demo-sidecar \
	TRACECAR_UPSTREAM="http://$host:$app_port" \
	TRACECAR_INBOUND_ADDR="$host:$sidecar_port" \
	TRACECAR_ADMIN_ADDR="$host:$admin_port" \
	TRACECAR_EGRESS_ADDR="$host:$egress_port" \
	TRACECAR_EGRESS_GRPC_ADDR="$host:$egress_grpc_port" \
	TRACECAR_EGRESS_SERIAL_INFERENCE=true \
	start sidecar bin/sidecar
ready demo-app "http://$host:$app_port/hello" 20
ready sidecar "http://$host:$admin_port/readyz" 20

# hex N prints N random bytes as lowercase hex.
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# shell_words prints its arguments as a shell would need them typed.
shell_words() {
	local arg
	for arg in "$@"; do
		if [[ $arg =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
			printf ' %s' "$arg"
		else
			printf " '%s'" "${arg//\'/\'\\\'\'}"
		fi
	done
}

traces=()
spans=()
# send SPANS DESCRIPTION CURL-ARGS... sends one request through the sidecar,
# shows the answer, and remembers its trace (from traceresponse) and how many
# spans it should have (sidecar + app).
send() {
	local want=$1 what=$2
	shift 2
	local headers=$logs/headers.txt
	say ""
	say "── $what"
	echo "\$ curl$(shell_words "$@")"
	curl -sS -N -D "$headers" "$@"
	local status cid tresp
	status=$(head -n 1 "$headers" | tr -d '\r')
	cid=$(sed -n 's/^[Xx]-[Cc]orrelation-[Ii][Dd]: *//p' "$headers" | tr -d '\r')
	tresp=$(sed -n 's/^[Tt]raceresponse: *//p' "$headers" | tr -d '\r')
	echo "  status:           $status"
	echo "  X-Correlation-ID: ${cid:-<missing>}"
	echo "  traceresponse:    ${tresp:-<missing>}"
	if [[ $tresp =~ ^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$ ]]; then
		traces+=("${BASH_REMATCH[1]}")
		spans+=("$want")
	else
		echo "  (no valid traceresponse header: this request's trace is not shown)" >&2
	fi
}

base=http://$host:$sidecar_port
caller_trace=$(hex 16)
send 3 "GET /orders/42 in the caller's trace $caller_trace, with its correlation ID (the caller's own span is never exported, so the tree marks it missing)" \
	-H "traceparent: 00-$caller_trace-$(hex 8)-01" -H "X-Correlation-ID: demo-order-42" "$base/orders/42"
send 2 "GET /hello with no trace context: the sidecar starts a trace and mints a correlation ID" \
	"$base/hello"
send 2 "POST /orders" -H "Content-Type: application/json" -d '{"item":"book","quantity":2}' "$base/orders"
send 2 "GET /fail: the app answers 500" "$base/fail"
send 2 "GET /events: Server-Sent Events, streamed through as they are written" "$base/events"
# The app calls its own /hello through the egress proxy; the sidecar's CLIENT
# span joins the caller's trace however the app behaves.
hello=http://$host:$app_port/hello
send 4 "GET /chain: the app calls $hello forwarding only X-Correlation-ID; the sidecar finds the inbound request by it (tracecar.parent.source=correlation_id)" \
	-H "traceparent: 00-$(hex 16)-$(hex 8)-01" -H "X-Correlation-ID: demo-chain-$(hex 4)" "$base/chain?forward=correlation&to=$hello"
send 4 "GET /chain: the app forwards its own traceparent (tracecar.parent.source=propagated)" \
	"$base/chain?forward=traceparent&to=$hello"
send 4 "GET /chain: the app forwards nothing; the only inbound request in flight is taken as the parent (serial inference, tracecar.parent.source=inferred)" \
	"$base/chain?forward=none&to=$hello"

say ""
say "Traces, read back from Jaeger's query API"
for i in "${!traces[@]}"; do
	echo
	# Waits until the sidecar's and the app's spans have reached Jaeger.
	bin/sidecar trace -jaeger "$query" -wait 20s -min-spans "${spans[$i]}" "${traces[$i]}" ||
		echo "  (trace ${traces[$i]} could not be read; logs: $logs)" >&2
done

say ""
say "Where to look"
if $ui; then
	echo "  Jaeger UI:        $query  (e.g. $query/trace/${traces[0]:-})"
else
	echo "  Jaeger here is built from source and has no UI: $query serves only the"
	echo "  query API and a placeholder page. Where a Docker engine runs, this demo uses"
	echo "  the $jaeger_image image instead, with the UI on $query."
fi
cat <<EOF
  Query API:        curl -s $query/api/services
                    curl -s '$query/api/traces?service=demo-sidecar&limit=20'
                    curl -s $query/api/traces/<trace-id>
  Span tree:        bin/sidecar trace <trace-id> -jaeger $query
  Send requests:    curl -i $base/hello
                    curl -i -H 'X-Correlation-ID: my-id' $base/orders/7
                    curl -i '$base/chain?forward=correlation&to=$hello'
  Egress directly:  curl -i -x http://$host:$egress_port $hello
  Sidecar metrics:  curl -s http://$host:$admin_port/metrics
  Sidecar health:   curl -s http://$host:$admin_port/readyz
  Logs:             $logs/{jaeger,demo-app,sidecar}.log
EOF

if $once; then
	exit 0
fi
say ""
say "Running. Press Ctrl-C to stop everything."
# Return when Ctrl-C arrives or any process ends.
wait -n "${pids[@]}" || true
for i in "${!pids[@]}"; do
	if ! kill -0 "${pids[$i]}" 2>/dev/null; then
		fail "${names[$i]} exited; see $logs/${names[$i]}.log"
	fi
done
