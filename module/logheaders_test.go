package module

import (
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestLogHeadersKeepsOnlyTheNamedHeaders(t *testing.T) {
	var f LogHeaders
	d := caddyfile.NewTestDispenser("iap_headers user-agent {\n\tkeep Referer X-Forwarded-For Cookie\n\tstrip_query referer\n}")
	if err := f.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if err := f.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	h := http.Header{
		"User-Agent":      {"ua"},
		"Referer":         {"https://a.example/p?code=secret"},
		"X-Forwarded-For": {"203.0.113.66"},
		"Cookie":          {"_iap=session"},
		"X-Secret":        {"s"},
	}
	out := f.Filter(zap.Object("headers", caddyhttp.LoggableHTTPHeader{Header: h}))
	kept, ok := out.Interface.(caddyhttp.LoggableHTTPHeader)
	if !ok || out.Key != "headers" {
		t.Fatalf("filtered field %+v", out)
	}
	if len(kept.Header) != 4 || kept.Header.Get("X-Secret") != "" || kept.Header.Get("Referer") != "https://a.example/p" || kept.Header.Get("User-Agent") != "ua" {
		t.Errorf("kept %v", kept.Header)
	}
	// Credentials stay as Caddy writes them: REDACTED unless the server
	// logs credentials.
	enc := zapcore.NewMapObjectEncoder()
	_ = kept.MarshalLogObject(enc)
	if got := enc.Fields["Cookie"]; got == nil || len(got.([]any)) != 1 || got.([]any)[0] != "REDACTED" {
		t.Errorf("Cookie %v", got)
	}

	// Anything but a headers object is left out, never passed through.
	if out := f.Filter(zap.String("headers", "raw")); out.Type != zapcore.SkipType {
		t.Errorf("a string field: %+v", out)
	}
	if err := new(LogHeaders).UnmarshalCaddyfile(caddyfile.NewTestDispenser("iap_headers {\n\tkeepp X\n}")); err == nil {
		t.Error("an unknown option is accepted")
	}
}
