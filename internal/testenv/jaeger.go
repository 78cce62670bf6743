package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Jaeger is a running Jaeger v2 (all in one, in-memory storage), a real
// trace backend, on loopback: OTLP receivers over gRPC and HTTP, open and
// behind HTTP basic authentication, and its query API.
type Jaeger struct {
	// OTLPHTTP and OTLPGRPC are the open receivers' base URLs
	// (http://127.0.0.1:port): HTTP takes spans at /v1/traces.
	OTLPHTTP, OTLPGRPC string
	// AuthOTLPHTTP and AuthOTLPGRPC are receivers that refuse an export
	// without Authorization: Basic of AuthUser and AuthPassword.
	AuthOTLPHTTP, AuthOTLPGRPC string
	AuthUser, AuthPassword     string
	// TLSOTLPHTTP is, with StartJaegerTLS, a receiver over HTTPS
	// (https://localhost:port) with the given certificate.
	TLSOTLPHTTP string
	// QueryURL is the query service (UI and API) base URL.
	QueryURL string
	out      *syncBuffer
}

// JaegerBinary returns the path of bin/jaeger, which scripts/test.sh
// builds from tools/jaeger (scripts/build-jaeger.sh), or $JAEGER_BIN.
func JaegerBinary(t testing.TB) string {
	t.Helper()
	return builtTool(t, "jaeger", "Jaeger", "JAEGER_BIN", "scripts/build-jaeger.sh")
}

// StartJaeger runs Jaeger until the test ends, and waits until its
// receivers accept connections and its query API answers.
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	return startJaeger(t, "", "")
}

// StartJaegerTLS is StartJaeger with one more receiver, OTLP over HTTPS
// with this certificate and key (TLSOTLPHTTP).
func StartJaegerTLS(t testing.TB, certFile, keyFile string) *Jaeger {
	t.Helper()
	return startJaeger(t, certFile, keyFile)
}

func startJaeger(t testing.TB, certFile, keyFile string) *Jaeger {
	t.Helper()
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", FreePort(t)) }
	otlpHTTP, otlpGRPC, authHTTP, authGRPC, query, queryGRPC := addr(), addr(), addr(), addr(), addr(), addr()
	j := &Jaeger{
		OTLPHTTP: "http://" + otlpHTTP, OTLPGRPC: "http://" + otlpGRPC,
		AuthOTLPHTTP: "http://" + authHTTP, AuthOTLPGRPC: "http://" + authGRPC,
		AuthUser: "collector", AuthPassword: "s3cret-for-spans",
		QueryURL: "http://" + query, out: new(syncBuffer),
	}
	tlsReceiver, tlsConf, listen := "", "", []string{otlpHTTP, otlpGRPC, authHTTP, authGRPC, query}
	if certFile != "" {
		a := addr()
		j.TLSOTLPHTTP = "https://localhost" + a[len("127.0.0.1"):]
		tlsReceiver = ", otlp/tls"
		tlsConf = fmt.Sprintf("  otlp/tls:\n    protocols:\n      http:\n        endpoint: %s\n        tls:\n          cert_file: %s\n          key_file: %s\n", a, certFile, keyFile)
		listen = append(listen, a)
	}
	conf := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query, basicauth/server]
  pipelines:
    traces:
      receivers: [otlp, otlp/auth%s]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  basicauth/server:
    htpasswd:
      inline: |
        %s:%s
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
  otlp/auth:
    protocols:
      grpc:
        endpoint: %s
        auth:
          authenticator: basicauth/server
      http:
        endpoint: %s
        auth:
          authenticator: basicauth/server
%s
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, tlsReceiver, j.AuthUser, j.AuthPassword, query, queryGRPC, otlpGRPC, otlpHTTP, authGRPC, authHTTP, tlsConf)
	p := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(JaegerBinary(t), "--config", "file:"+p)
	cmd.Stdout, cmd.Stderr = j.out, j.out
	exited := start(t, cmd, "jaeger", j.out)
	for _, a := range listen {
		WaitListening(t, a, exited)
	}
	waitOK(t, "jaeger", j.QueryURL+"/api/services", 30*time.Second, exited, j.out)
	return j
}

// Output is what Jaeger has logged.
func (j *Jaeger) Output() string { return j.out.String() }

// JaegerTrace is a trace as Jaeger's query API returns it.
type JaegerTrace struct {
	TraceID string `json:"traceID"`
	Spans   []struct {
		TraceID       string `json:"traceID"`
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		ProcessID     string `json:"processID"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		Tags []JaegerTag `json:"tags"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string      `json:"serviceName"`
		Tags        []JaegerTag `json:"tags"`
	} `json:"processes"`
}

// JaegerTag is an attribute of a span or a process (resource).
type JaegerTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Tag returns the value of the tag named key, as text, and whether there
// is one.
func Tag(tags []JaegerTag, key string) (string, bool) {
	for _, tag := range tags {
		if tag.Key == key {
			return fmt.Sprint(tag.Value), true
		}
	}
	return "", false
}

// Trace returns the trace with this ID (32 hex digits), if Jaeger has it.
func (j *Jaeger) Trace(t testing.TB, traceID string) (*JaegerTrace, bool) {
	t.Helper()
	resp, err := http.Get(j.QueryURL + "/api/traces/" + traceID)
	if err != nil {
		t.Fatalf("Jaeger query: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, false
	}
	var body struct {
		Data []JaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Jaeger query for %s: %d %v", traceID, resp.StatusCode, err)
	}
	if len(body.Data) == 0 || len(body.Data[0].Spans) == 0 {
		return nil, false
	}
	return &body.Data[0], true
}

// WaitTrace polls Jaeger until it has the trace with this ID, for up to a
// minute (spans reach it after the exporter's batch delay), and fails the
// test if it never does.
func (j *Jaeger) WaitTrace(t testing.TB, traceID string) *JaegerTrace {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if tr, ok := j.Trace(t, traceID); ok {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger has no trace %s after a minute:\n%s", traceID, j.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
