package caddyfile_test

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// FuzzDirectives feeds the bodies of iap_route and iap_mtls blocks to the
// Caddyfile adapter: nothing may panic.
func FuzzDirectives(f *testing.F) {
	f.Add("iap_route {\n to http://127.0.0.1:1\n set_request_headers {\n X-A b\n }\n allowed_idp_claims groups admins\n policy {\n allow {\n or {\n email is a\n }\n }\n }\n}")
	f.Add("iap_mtls {\n ca Zm9v\n enforcement policy\n match_subject_alt_names {\n email .*\n }\n max_verify_depth 2\n}")
	f.Add("iap_route /x* https://a:1 {\n tls_skip_verify false\n remove_request_headers X-A X-B\n}")
	f.Fuzz(func(t *testing.T, body string) {
		src := "app.example {\n\ttls internal\n" + body + "\n}\n"
		_, _, _ = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	})
}
