package module

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-iap/caddy-iap/authz"
)

// BenchmarkRequestPath is what caddy-iap's request path adds before the
// policy: begin (strip identity headers, check the Upgrade, clean the path,
// the request's state in Caddy's vars) and the policy's input, for a
// request with a dozen headers and a clean path; and then for a path that
// needs cleaning. Caddy's own PrepareRequest is outside the timer.
func BenchmarkRequestPath(b *testing.B) {
	eval := mustCompile(b, `{"allow":{"or":[{"http_path":{"starts_with":"/public"}}]}}`)
	for _, bc := range []struct{ name, target string }{
		{"a clean path", "/public/app/assets/main.js?v=3"},
		{"a path to clean", "/public//app/./assets/../assets/main.js?v=3"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "https://app.example.com"+bc.target, nil)
			for _, h := range []string{"Accept", "Accept-Language", "Accept-Encoding", "User-Agent", "Cookie", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode", "X-Request-Id", "Cache-Control"} {
				r.Header.Set(h, "some value of a usual length, more or less")
			}
			r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), httptest.NewRecorder(), new(caddyhttp.Server))
			vars := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
			path, rawPath := r.URL.Path, r.URL.RawPath
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// A new request, as far as caddy-iap can tell.
				delete(vars, requestVar)
				r.URL.Path, r.URL.RawPath = path, rawPath
				st, refused := begin(r, nil)
				if refused != nil {
					b.Fatal(refused.Message)
				}
				var (
					in   authz.Input
					user authz.User
					cert authz.ClientCert
				)
				st.input(r, &in, &user, &cert)
				if !eval.Evaluate(&in).Allow {
					b.Fatalf("refused %s", r.URL.Path)
				}
			}
		})
	}
}
