package caddyfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// Wrong configs, each with the exact message `caddy adapt` gives: the
// option, the file and the option's own line (not the block's closing
// brace), and the cause. {dir} is the test's directory of certificates.
func TestWrongConfigsNameTheOptionFileAndLine(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	other := testpki.NewCA(t, "other")
	caFile := ca.WriteCert(t, dir, "ca.pem")
	cert, _ := ca.Issue(t, testpki.Client("client")).Write(t, dir, "client")
	_, otherKey := other.Issue(t, testpki.Client("x")).Write(t, dir, "other")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	route := func(lines ...string) string {
		return "app.example {\n\tiap_route {\n\t\tto https://127.0.0.1:1\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}\n}\n"
	}
	mtls := func(lines ...string) string {
		return "app.example {\n\tiap_mtls {\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}\n\trespond ok\n}\n"
	}
	global := func(lines ...string) string {
		return "{\n\tiap {\n\t\t" + strings.Join(lines, "\n\t\t") + "\n\t}\n}\napp.example {\n\trespond ok\n}\n"
	}
	idp := func(lines ...string) string {
		return global("idp {\n\t\t\t"+strings.Join(lines, "\n\t\t\t")+"\n\t\t}", "cookie_secret "+strings.Repeat("A", 43)+"=")
	}
	matcher := func(lines ...string) string {
		return "app.example {\n\t@in iap_policy {\n\t\tallow {\n\t\t\tor {\n\t\t\t\t" + strings.Join(lines, "\n\t\t\t\t") + "\n\t\t\t}\n\t\t}\n\t}\n\trespond @in ok\n}\n"
	}

	for _, c := range []struct{ name, src, want string }{
		{"iap_route: a missing tls_custom_ca_file", route("allow_public_unauthenticated_access", "tls_custom_ca_file /nope/ca.pem"),
			"parsing caddyfile tokens for 'iap_route': route app.example: tls_custom_ca_file: reading /nope/ca.pem: no such file or directory, at Caddyfile:5"},
		{"iap_route: a CA file without a certificate", route("tls_custom_ca_file " + notPEM),
			"parsing caddyfile tokens for 'iap_route': route app.example: tls_custom_ca_file: {dir}/not.pem: no PEM certificate found, at Caddyfile:4"},
		{"iap_route: a certificate without its key", route("tls_client_cert_file " + cert),
			"parsing caddyfile tokens for 'iap_route': route app.example: tls_client_cert_file is set without tls_client_key_file, at Caddyfile:4"},
		{"iap_route: a key of another certificate", route("tls_client_cert_file "+cert, "tls_client_key_file "+otherKey),
			"parsing caddyfile tokens for 'iap_route': route app.example: tls_client_key_file: {dir}/other-key.pem does not go with tls_client_cert_file {dir}/client.pem: tls: private key does not match public key, at Caddyfile:5"},
		{"iap_route: TLS options on an http upstream", "app.example {\n\tiap_route {\n\t\tto http://127.0.0.1:1\n\t\ttls_server_name x\n\t}\n}\n",
			"parsing caddyfile tokens for 'iap_route': route app.example: tls_server_name is set, but the route's upstreams are not https:// (use https:// in 'to'), at Caddyfile:4"},
		{"iap_route: an unknown option", route("tls_bogus x"),
			"parsing caddyfile tokens for 'iap_route': unrecognized subdirective tls_bogus, at Caddyfile:4"},
		{"iap_route: a flag with a bad value", route("tls_skip_verify maybe"),
			"parsing caddyfile tokens for 'iap_route': tls_skip_verify takes true or false, got \"maybe\", at Caddyfile:4"},
		{"iap_route: public access with allowed_users", route("allow_public_unauthenticated_access", "allowed_users alice@example.com"),
			"parsing caddyfile tokens for 'iap_route': route app.example: allow_public_unauthenticated_access cannot be combined with allow_any_authenticated_user, allowed_users or allowed_domains: it already admits everyone (deny rules in a policy may narrow it), at Caddyfile:4"},
		{"iap_route: a bad CIDR in the policy", route("policy {\n\t\t\tallow {\n\t\t\t\tor {\n\t\t\t\t\tsource_ip 10.0.0.0/33\n\t\t\t\t}\n\t\t\t}\n\t\t}"),
			"parsing caddyfile tokens for 'iap_route': route app.example: policy: rule 1: allow: or[0]: Caddyfile:7: criterion \"source_ip\": \"10.0.0.0/33\" is not an IP or CIDR"},
		{"iap_mtls: a missing ca_file", mtls("ca_file /nope/ca.pem"),
			"parsing caddyfile tokens for 'iap_mtls': iap_mtls: ca_file: reading /nope/ca.pem: no such file or directory, at Caddyfile:3"},
		{"iap_mtls: a missing crl_file", mtls("ca_file "+caFile, "crl_file /nope/crl.pem"),
			"parsing caddyfile tokens for 'iap_mtls': iap_mtls: crl_file: reading /nope/crl.pem: no such file or directory, at Caddyfile:4"},
		{"iap_mtls: a bad enforcement value", mtls("ca_file "+caFile, "enforcement strict"),
			"parsing caddyfile tokens for 'iap_mtls': iap_mtls: enforcement: unknown mode \"strict\" (want policy_with_default_deny, policy or reject_connection), at Caddyfile:4"},
		{"iap_mtls: no CA", mtls("enforcement policy"),
			"parsing caddyfile tokens for 'iap_mtls': iap_mtls: ca or ca_file is required: the CA that client certificates must chain to, at Caddyfile:2"},
		{"iap_mtls: an unknown option", mtls("ca_file "+caFile, "verify_depth 2"),
			"parsing caddyfile tokens for 'iap_mtls': unrecognized iap_mtls option \"verify_depth\", at Caddyfile:4"},
		{"iap_mtls: a bad max_verify_depth", mtls("ca_file "+caFile, "max_verify_depth -1"),
			"parsing caddyfile tokens for 'iap_mtls': max_verify_depth: \"-1\" is not a whole number (0 means no limit), at Caddyfile:4"},
		{"iap_mtls: a bad SAN pattern", mtls("ca_file "+caFile, "match_subject_alt_names {\n\t\t\temail (\n\t\t}"),
			"parsing caddyfile tokens for 'iap_mtls': iap_mtls: match_subject_alt_names: email pattern \"(\": error parsing regexp: missing closing ): `^(?:()$`, at Caddyfile:4"},
		{"iap_mtls: an unknown SAN type", mtls("ca_file "+caFile, "match_subject_alt_names {\n\t\t\tphone .*\n\t\t}"),
			"parsing caddyfile tokens for 'iap_mtls': iap_mtls: match_subject_alt_names: unknown type \"phone\" (want dns, email, ip_address, uri, user_principal_name), at Caddyfile:4"},
		{"iap: a provider_url without a scheme", idp("provider_url dex.example.com", "client_id caddy"),
			"parsing caddyfile tokens for 'iap': idp provider_url \"dex.example.com\" is not an http(s) URL: write the issuer with its scheme, such as https://dex.example.com, at Caddyfile:4"},
		{"iap: an unknown idp option", idp("provider_url https://dex.example.com", "client_id caddy", "tenant x"),
			"parsing caddyfile tokens for 'iap': unrecognized idp option \"tenant\", at Caddyfile:6"},
		{"iap: an unknown option", global("cookie_monster yes"),
			"parsing caddyfile tokens for 'iap': unrecognized iap option \"cookie_monster\", at Caddyfile:3"},
		{"iap: a bad cookie_expire duration", global("cookie_expire 14 hours"),
			"parsing caddyfile tokens for 'iap': cookie_expire takes one value, got more: \"hours\", at Caddyfile:3"},
		{"iap: a cookie_expire that is no duration", global("cookie_expire soon"),
			"parsing caddyfile tokens for 'iap': cookie_expire: time: invalid duration \"soon\", at Caddyfile:3"},
		{"iap: a bad signing_key_rotate duration", global("signing_key_rotate soon"),
			"parsing caddyfile tokens for 'iap': signing_key_rotate takes a positive duration such as 24h, got \"soon\", at Caddyfile:3"},
		{"iap: a bad pass_identity_headers value", global("pass_identity_headers maybe"),
			"parsing caddyfile tokens for 'iap': pass_identity_headers takes true or false, got \"maybe\", at Caddyfile:3"},
		{"iap_policy: an unknown criterion", matcher("colour blue"),
			"unknown criterion \"colour\" (known: accept, authenticated_user, claim, client_certificate, client_certificate_user, cors_preflight, date, day_of_week, domain, email, groups, http_method, http_path, invalid_client_certificate, reject, source_ip, time_of_day, user), at Caddyfile:5"},
		{"iap_policy: a bad CIDR", matcher("source_ip 10.0.0.0/33"),
			"iap_policy: rule 1: allow: or[0]: Caddyfile:5: criterion \"source_ip\": \"10.0.0.0/33\" is not an IP or CIDR"},
		{"iap_policy: an unknown time zone", matcher("time_of_day timezone Mars/Olympus after 09:00 before 17:00"),
			"iap_policy: rule 1: allow: or[0]: Caddyfile:5: criterion \"time_of_day\": timezone \"Mars/Olympus\": unknown time zone Mars/Olympus"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := adapt(t, c.src)
			got := "<nil>"
			if err != nil {
				got = strings.ReplaceAll(err.Error(), dir, "{dir}")
			}
			if got != c.want {
				t.Errorf("\nsrc:\n%s\ngot:  %s\nwant: %s", numbered(c.src), got, c.want)
			}
		})
	}
}

func numbered(src string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSuffix(src, "\n"), "\n") {
		b.WriteString(strings.Repeat(" ", 2))
		b.WriteString(string(rune('0' + (i+1)/10)))
		b.WriteString(string(rune('0' + (i+1)%10)))
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
