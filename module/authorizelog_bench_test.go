package module

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/authz"
)

// BenchmarkAuthorizeLog is what the "authorize check" line costs per
// decision with Pomerium's default authorize_log_fields (the adapter's
// default), written as JSON as Caddy's default logger would, to
// io.Discard: the cost of building and encoding the line, without the
// write itself. "none" is a config without authorize_log_fields (the
// Caddyfile's default).
func BenchmarkAuthorizeLog(b *testing.B) {
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	r := httptest.NewRequest(http.MethodGet, "https://app.example.com/reports/2026?page=3", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), new(caddyhttp.Server))
	st := &request{Session: &authn.Session{ID: "0123456789abcdef0123456789abcdef", Subject: "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs", Email: "alice@example.com"}}
	d := authz.Decision{Allow: true, Reason: authz.ReasonAllowed}
	for _, bc := range []struct {
		name string
		log  *authorizeLog
	}{
		{"none", newAuthorizeLog(nil, logger)},
		{"Pomerium's default fields", newAuthorizeLog(DefaultAuthorizeLogFields, logger)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				bc.log.log(r, st, d, "reports", 0x1234)
			}
		})
	}
}
