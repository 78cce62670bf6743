package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// upstreamTraceparent requests host's path through caddy with header and
// returns the traceparent the upstream (the recorder) got: its trace ID,
// parent span ID and flags.
func upstreamTraceparent(t *testing.T, caddy *testenv.Caddy, rec *recorder, host string, header http.Header) (traceID, parentID, flags string) {
	t.Helper()
	id := testID()
	if header == nil {
		header = http.Header{}
	}
	header.Set("X-Test-Id", id)
	if resp := caddy.Get(t, host, "/traced?token=secret", header); resp.Status != 200 {
		t.Fatalf("GET %s: %d %s", host, resp.Status, resp.Body)
	}
	got, ok := rec.got(id)
	if !ok {
		t.Fatal("the upstream got no request")
	}
	if n := len(got.Header.Values("Traceparent")); n != 1 {
		t.Fatalf("the upstream got %d traceparent headers: %v", n, got.Header)
	}
	parts := strings.Split(got.Header.Get("Traceparent"), "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		t.Fatalf("the upstream got traceparent %q", got.Header.Get("Traceparent"))
	}
	return parts[1], parts[2], parts[3]
}

// lastRequest is the last request the recorder got.
func lastRequest(rec *recorder) recordedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.reqs[len(rec.reqs)-1]
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// pomeriumTracingConfig is a Pomerium config.yaml with one public route to
// upstream, and the given otel_* settings.
func pomeriumTracingConfig(t *testing.T, httpsPort int, upstream, otel string) string {
	return fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
routes:
  - from: https://app.pomerium.test
    to: %s
    allow_public_unauthenticated_access: true
  - from: https://closed.pomerium.test
    to: %s
    policy:
      - deny:
          or:
            - http_path:
                starts_with: /
%s`, httpsPort, testenv.FreePort(t), upstream, upstream, otel)
}

// Issue 13, otel_*: a Pomerium config's tracing settings, run by the built
// Caddy, send each request's span to Jaeger, a real trace backend, over
// both OTLP protocols, with the exporter headers its receiver requires
// (HTTP basic authentication). The span has the resource attributes set,
// the upstream gets a traceparent of the same trace whose parent is that
// span, and the query string (which may carry a token) is not recorded.
func TestPomeriumTracingReachesJaeger(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	auth := "Authorization=Basic " + base64.StdEncoding.EncodeToString([]byte(jaeger.AuthUser+":"+jaeger.AuthPassword))
	for _, tc := range []struct{ name, otel string }{
		{"http/protobuf, from the general endpoint and headers", fmt.Sprintf(`otel_traces_exporter: otlp
otel_exporter_otlp_endpoint: %s
otel_exporter_otlp_protocol: http/protobuf
otel_exporter_otlp_headers: [%q]
`, jaeger.AuthOTLPHTTP, auth)},
		{"grpc, from the traces endpoint and headers", fmt.Sprintf(`otel_traces_exporter: otlp
otel_exporter_otlp_traces_endpoint: %s
otel_exporter_otlp_traces_protocol: grpc
otel_exporter_otlp_traces_headers: %q
otel_exporter_otlp_traces_timeout: 5000
`, jaeger.AuthOTLPGRPC, auth)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			service := "pomerium-e2e-" + randomHex(t, 4)
			httpsPort := testenv.FreePort(t)
			caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", pomeriumTracingConfig(t, httpsPort, rec.URL, tc.otel+fmt.Sprintf(
				"otel_resource_attributes: service.name=%s,deployment.environment=e2e\notel_bsp_schedule_delay: 100\notel_attribute_value_length_limit: 100\n", service)), httpsPort)

			traceID, parentID, flags := upstreamTraceparent(t, caddy, rec, "app.pomerium.test", http.Header{"User-Agent": {strings.Repeat("long-agent/", 20)}})
			if flags != "01" {
				t.Errorf("traceparent flags %s, want 01 (sampled)", flags)
			}
			tr := jaeger.WaitTrace(t, traceID)
			if len(tr.Spans) != 1 {
				t.Fatalf("%d spans, want 1: %+v", len(tr.Spans), tr)
			}
			span := tr.Spans[0]
			if span.SpanID != parentID {
				t.Errorf("the upstream's parent span is %s, the trace's span %s", parentID, span.SpanID)
			}
			proc := tr.Processes[span.ProcessID]
			if proc.ServiceName != service {
				t.Errorf("service %q, want %q", proc.ServiceName, service)
			}
			if env, _ := testenv.Tag(proc.Tags, "deployment.environment"); env != "e2e" {
				t.Errorf("deployment.environment %q in %+v", env, proc.Tags)
			}
			for key, want := range map[string]string{"http.request.method": "GET", "url.path": "/traced",
				"server.address": "app.pomerium.test", "http.response.status_code": "200", "iap.reason": "allowed"} {
				if got, _ := testenv.Tag(span.Tags, key); got != want {
					t.Errorf("span tag %s = %q, want %q (tags %+v)", key, got, want, span.Tags)
				}
			}
			if ua, _ := testenv.Tag(span.Tags, "user_agent.original"); len(ua) != 100 {
				t.Errorf("user_agent.original has %d characters, want 100 (otel_attribute_value_length_limit)", len(ua))
			}
			for _, tag := range span.Tags {
				if strings.Contains(fmt.Sprint(tag.Value), "secret") {
					t.Errorf("span tag %s carries the query string: %v", tag.Key, tag.Value)
				}
			}

			// A refused request is traced too, with its reason and status.
			id := randomHex(t, 16)
			if resp := caddy.Get(t, "closed.pomerium.test", "/", http.Header{"Traceparent": {"00-" + id + "-" + randomHex(t, 8) + "-01"}}); resp.Status != 403 {
				t.Fatalf("closed route: %d", resp.Status)
			}
			tr = jaeger.WaitTrace(t, id)
			if got, _ := testenv.Tag(tr.Spans[0].Tags, "http.response.status_code"); got != "403" {
				t.Errorf("refusal traced with status %q", got)
			}
			if got, _ := testenv.Tag(tr.Spans[0].Tags, "iap.reason"); got == "" || got == "allowed" {
				t.Errorf("refusal traced with reason %q", got)
			}
		})
	}
}

// otel_traces_sampler_arg: 0 traces nothing of its own: the upstream gets
// an unsampled traceparent, and Jaeger never gets the trace. A request
// that comes with a sampled traceparent is still traced (the parent's
// decision, as Envoy honours it), which is how the test knows that
// everything exported before it has arrived.
func TestPomeriumTracingSamplerZero(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	rec := newRecorder(t)
	httpsPort := testenv.FreePort(t)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", pomeriumTracingConfig(t, httpsPort, rec.URL, fmt.Sprintf(`otel_traces_exporter: otlp
otel_exporter_otlp_endpoint: %s
otel_traces_sampler_arg: 0
otel_bsp_schedule_delay: 100
`, jaeger.OTLPHTTP)), httpsPort)

	unsampled, _, flags := upstreamTraceparent(t, caddy, rec, "app.pomerium.test", nil)
	if flags != "00" {
		t.Errorf("sampler 0: traceparent flags %s, want 00", flags)
	}
	parent := randomHex(t, 16)
	traceID, _, flags := upstreamTraceparent(t, caddy, rec, "app.pomerium.test", http.Header{"Traceparent": {"00-" + parent + "-" + randomHex(t, 8) + "-01"}})
	if traceID != parent || flags != "01" {
		t.Errorf("a sampled parent: upstream trace %s flags %s, want %s 01", traceID, flags, parent)
	}
	jaeger.WaitTrace(t, parent)
	if _, ok := jaeger.Trace(t, unsampled); ok {
		t.Errorf("sampler 0: Jaeger has trace %s", unsampled)
	}
}

// A collector that requires a header the config does not send refuses
// every export; Caddy says so in its log (iap.tracing, at error), and
// requests are served all the same.
func TestPomeriumTracingCollectorRefusal(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	rec := newRecorder(t)
	httpsPort := testenv.FreePort(t)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", pomeriumTracingConfig(t, httpsPort, rec.URL, fmt.Sprintf(`otel_traces_exporter: otlp
otel_exporter_otlp_endpoint: %s
otel_exporter_otlp_headers: Authorization=Basic %s
otel_bsp_schedule_delay: 100
`, jaeger.AuthOTLPHTTP, base64.StdEncoding.EncodeToString([]byte(jaeger.AuthUser+":wrong")))), httpsPort)
	traceID, _, _ := upstreamTraceparent(t, caddy, rec, "app.pomerium.test", nil)
	if !caddy.WaitLog("exporting spans failed") {
		t.Fatalf("no export failure logged:\n%s", caddy.Log())
	}
	if !strings.Contains(caddy.Log(), "401") {
		t.Errorf("the failure does not give the collector's answer (401):\n%s", caddy.Log())
	}
	if strings.Contains(caddy.Log(), "wrong") || strings.Contains(caddy.Log(), base64.StdEncoding.EncodeToString([]byte(jaeger.AuthUser+":wrong"))) {
		t.Errorf("the log shows the exporter's credentials")
	}
	if _, ok := jaeger.Trace(t, traceID); ok {
		t.Errorf("Jaeger took spans without its credentials")
	}
}

// A client's traceparent is never what the upstream gets: a valid one
// becomes the span's parent (same trace, Caddy's span as the parent), a
// forged or malformed one starts a new trace. A tracestate goes on only
// as Caddy parsed it, with a valid traceparent, as W3C Trace Context asks.
func TestTracingClientTraceHeaders(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	rec := newRecorder(t)
	caddy := testenv.StartCaddy(t, tracingGlobal(jaeger.OTLPGRPC, "grpc", "caddyfile-e2e"), tracingSite("app.test", rec.URL))

	clientTrace, clientSpan := randomHex(t, 16), randomHex(t, 8)
	traceID, parentID, _ := upstreamTraceparent(t, caddy, rec, "app.test", http.Header{
		"Traceparent": {"00-" + clientTrace + "-" + clientSpan + "-01"}, "Tracestate": {"vendor=forged"}})
	if traceID != clientTrace || parentID == clientSpan {
		t.Errorf("valid client traceparent: upstream got trace %s parent %s, want trace %s and Caddy's span as parent", traceID, parentID, clientTrace)
	}
	if got := lastRequest(rec); got.Header.Get("Tracestate") != "vendor=forged" {
		t.Errorf("the client's valid tracestate reached the upstream as %q", got.Header.Get("Tracestate"))
	}
	upstreamTraceparent(t, caddy, rec, "app.test", http.Header{
		"Traceparent": {"00-" + randomHex(t, 16) + "-" + clientSpan + "-01"}, "Tracestate": {"not valid;;" + strings.Repeat("x", 600)}})
	if got := lastRequest(rec); got.Header.Get("Tracestate") != "" {
		t.Errorf("a malformed tracestate reached the upstream: %.60q", got.Header.Get("Tracestate"))
	}
	upstreamTraceparent(t, caddy, rec, "app.test", http.Header{"Traceparent": {"garbage"}, "Tracestate": {"vendor=forged"}})
	if got := lastRequest(rec); got.Header.Get("Tracestate") != "" {
		t.Errorf("a tracestate without a valid traceparent reached the upstream: %q", got.Header.Get("Tracestate"))
	}
	tr := jaeger.WaitTrace(t, clientTrace)
	if len(tr.Spans[0].References) != 1 || tr.Spans[0].References[0].SpanID != clientSpan {
		t.Errorf("the span's parent is not the client's span: %+v", tr.Spans[0].References)
	}

	// Oversize values a client controls are cut at the default limit
	// (256 characters) in the span, and served all the same.
	long := http.Header{"User-Agent": {strings.Repeat("u", 8<<10)}}
	long.Set("Traceparent", "00-"+randomHex(t, 16)+"-"+clientSpan+"-01")
	longTrace, _, _ := upstreamTraceparent(t, caddy, rec, "app.test", long)
	tr = jaeger.WaitTrace(t, longTrace)
	if ua, _ := testenv.Tag(tr.Spans[0].Tags, "user_agent.original"); len(ua) != 256 {
		t.Errorf("an 8 KiB User-Agent is %d characters in the span, want 256", len(ua))
	}

	for _, forged := range []string{
		"00-" + strings.Repeat("0", 32) + "-" + clientSpan + "-01", // all-zero trace ID
		"ff-" + clientTrace + "-" + clientSpan + "-01",             // version ff is invalid
		"00-" + clientTrace + "-" + clientSpan,                     // no flags
		"00-" + strings.Repeat("g", 32) + "-" + clientSpan + "-01", // not hex
		strings.Repeat("00-", 3000),                                // oversize garbage
	} {
		traceID, _, flags := upstreamTraceparent(t, caddy, rec, "app.test", http.Header{"Traceparent": {forged}})
		if traceID == clientTrace || traceID == strings.Repeat("0", 32) || flags != "01" {
			t.Errorf("forged %.40q: upstream got trace %s flags %s, want a new sampled trace", forged, traceID, flags)
		}
	}
}

// tracingGlobal is the global iap option with a tracing block.
func tracingGlobal(endpoint, protocol, service string) string {
	return fmt.Sprintf("\tiap {\n\t\ttracing {\n\t\t\tendpoint %s\n\t\t\tprotocol %s\n\t\t\tresource_attribute service.name %s\n\t\t\tschedule_delay 100ms\n\t\t}\n\t}", endpoint, protocol, service)
}

// tracingSite is a traced site proxying to upstream.
func tracingSite(host, upstream string) string {
	return fmt.Sprintf("%s {\n\ttls internal\n\tiap_tracing\n\treverse_proxy %s\n}\n", host, upstream)
}

// The Caddyfile's tracing settings live in the config: two sites share
// them, and a reload with another service name and collector takes
// effect at once (the old config's spans are sent on before it goes),
// which Caddy's own tracing handler, set up once per process from OTEL_*
// variables, does not do.
func TestTracingReloadAndTwoSites(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	rec := newRecorder(t)
	sites := tracingSite("one.test", rec.URL) + tracingSite("two.test", rec.URL)
	caddy := testenv.StartCaddy(t, tracingGlobal(jaeger.OTLPHTTP, "http/protobuf", "before-reload"), sites)

	serviceOf := func(traceID string) string {
		tr := jaeger.WaitTrace(t, traceID)
		return tr.Processes[tr.Spans[0].ProcessID].ServiceName
	}
	one, _, _ := upstreamTraceparent(t, caddy, rec, "one.test", nil)
	two, _, _ := upstreamTraceparent(t, caddy, rec, "two.test", nil)
	if s1, s2 := serviceOf(one), serviceOf(two); s1 != "before-reload" || s2 != "before-reload" {
		t.Errorf("two sites: services %q and %q, want before-reload", s1, s2)
	}

	// A span still waiting in the old config's batch (a delay of an hour)
	// is sent when that config goes.
	caddy.Reload(t, strings.Replace(tracingGlobal(jaeger.OTLPHTTP, "http/protobuf", "waiting"), "100ms", "1h", 1), sites)
	waiting, _, _ := upstreamTraceparent(t, caddy, rec, "one.test", nil)
	caddy.Reload(t, tracingGlobal(jaeger.OTLPGRPC, "grpc", "after-reload"), sites)
	if s := serviceOf(waiting); s != "waiting" {
		t.Errorf("the span batched before the reload: service %q", s)
	}
	after, _, _ := upstreamTraceparent(t, caddy, rec, "two.test", nil)
	if s := serviceOf(after); s != "after-reload" {
		t.Errorf("after the reload: service %q, want after-reload", s)
	}
}

// A WebSocket goes through iap_tracing as through any handler (the
// handshake is hijacked through its response writer), and its span has
// the upgrade's status, 101.
func TestTracingWebSocket(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	echo := newWSEcho(t)
	caddy := testenv.StartCaddy(t, tracingGlobal(jaeger.OTLPHTTP, "http/protobuf", "ws-e2e"),
		"ws.test {\n\ttls internal\n\tiap_tracing\n\tiap_route {\n\t\tto "+echo.URL+"\n\t\tallow_public_unauthenticated_access\n\t}\n}\n")
	caddy.WaitCertificates(t, "ws.test")
	id := testID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, fmt.Sprintf("wss://ws.test:%d/socket", caddy.HTTPSPort),
		&websocket.DialOptions{HTTPClient: caddy.Client(t), HTTPHeader: http.Header{"X-Test-Id": {id}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "hello, no assertion" {
		t.Fatalf("greeting: %q %v", msg, err)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conn.Read(ctx); err != nil || string(msg) != "echo: ping" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	conn.Close(websocket.StatusNormalClosure, "")
	h, _, upgraded := echo.got(id)
	if !upgraded {
		t.Fatal("the upstream did not get a WebSocket")
	}
	parts := strings.Split(h.Get("Traceparent"), "-")
	if len(parts) != 4 {
		t.Fatalf("the upstream's handshake had traceparent %q", h.Get("Traceparent"))
	}
	tr := jaeger.WaitTrace(t, parts[1])
	if got, _ := testenv.Tag(tr.Spans[0].Tags, "http.response.status_code"); got != "101" {
		t.Errorf("the WebSocket's span has status %q, want 101", got)
	}
}

// An https endpoint is verified: a collector whose certificate Caddy does
// not trust gets no spans (the log says why), and the CA given in Caddy's
// environment as OTEL_EXPORTER_OTLP_CERTIFICATE, which the OpenTelemetry
// exporter reads, makes it trusted.
func TestTracingToACollectorOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "collector CA")
	certFile, keyFile := ca.Issue(t, testpki.Server("localhost")).Write(t, dir, "collector")
	caFile := ca.WriteCert(t, dir, "collector-ca.pem")
	jaeger := testenv.StartJaegerTLS(t, certFile, keyFile)
	rec := newRecorder(t)
	global := tracingGlobal(jaeger.TLSOTLPHTTP, "http/protobuf", "https-e2e")

	untrusting := testenv.StartCaddy(t, global, tracingSite("app.test", rec.URL))
	traceID, _, _ := upstreamTraceparent(t, untrusting, rec, "app.test", nil)
	if !untrusting.WaitLog("exporting spans failed") {
		t.Fatalf("no export failure logged:\n%s", untrusting.Log())
	}
	if !strings.Contains(untrusting.Log(), "certificate signed by unknown authority") {
		t.Errorf("the failure does not say the certificate is not trusted:\n%s", untrusting.Log())
	}
	if _, ok := jaeger.Trace(t, traceID); ok {
		t.Errorf("spans reached a collector whose certificate is not trusted")
	}

	t.Setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", caFile)
	trusting := testenv.StartCaddy(t, global, tracingSite("app.test", rec.URL))
	traceID, _, _ = upstreamTraceparent(t, trusting, rec, "app.test", nil)
	jaeger.WaitTrace(t, traceID)
}
