package pomerium

import (
	"encoding/json"
	"strings"
	"testing"
)

// tlsSummary is what an adapted config says of TLS: the certificate
// subjects Caddy manages, the names it is told to automate, each
// connection policy's SNI names (and whether it asks for client
// certificates), the iap_mtls handlers' server_names, and the server's
// strict_sni_host.
type tlsSummary struct {
	Subjects    []string
	Automate    []string
	Policies    []string // "sni1,sni2 client-auth" or "sni1 none"
	ServerNames []string // each iap_mtls handler's server_names, as JSON
	Strict      string
}

func summarizeTLS(t *testing.T, out []byte) tlsSummary {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var s tlsSummary
	apps := cfg["apps"].(map[string]any)
	if tlsApp, ok := apps["tls"].(map[string]any); ok {
		if a, ok := tlsApp["automation"].(map[string]any); ok {
			for _, subj := range a["policies"].([]any)[0].(map[string]any)["subjects"].([]any) {
				s.Subjects = append(s.Subjects, subj.(string))
			}
		}
		if c, ok := tlsApp["certificates"].(map[string]any); ok {
			for _, n := range asList(c["automate"]) {
				s.Automate = append(s.Automate, n.(string))
			}
		}
	}
	srv := apps["http"].(map[string]any)["servers"].(map[string]any)["pomerium"].(map[string]any)
	for _, p := range asList(srv["tls_connection_policies"]) {
		pm := p.(map[string]any)
		var snis []string
		if m, ok := pm["match"].(map[string]any); ok {
			for _, n := range asList(m["sni"]) {
				snis = append(snis, n.(string))
			}
		}
		auth := "none"
		if pm["client_authentication"] != nil {
			auth = "client-auth"
		}
		s.Policies = append(s.Policies, strings.Join(snis, ",")+" "+auth)
	}
	seen := map[string]bool{}
	walk(srv, func(o map[string]any) {
		if o["handler"] == "iap_mtls" {
			b, _ := json.Marshal(o["server_names"])
			if !seen[string(b)] {
				seen[string(b)] = true
				s.ServerNames = append(s.ServerNames, string(b))
			}
		}
	})
	b, _ := json.Marshal(srv["strict_sni_host"])
	s.Strict = string(b)
	return s
}

func asList(v any) []any { l, _ := v.([]any); return l }

// Pomerium's tls_downstream_server_name adds a name to the route's TLS
// domains (Options.GetAllRouteableHTTPHosts): a connection made for that
// name gets a certificate for it, and the requests it carries reach the
// route by their Host, as Envoy routes them. Here the name is a subject
// of Caddy's certificates (automate), its connection policy is the
// route's (its client CA, or the global downstream_mtls), and the route's
// iap_mtls takes a connection made for it (server_names), Caddy's own
// SNI-Host check (strict_sni_host) standing aside for iap_mtls's.
func TestTLSDownstreamServerName(t *testing.T) {
	dir := fixtures(t)
	const routes = `routes:
  - from: https://app.example.com
    to: http://app
    allow_public_unauthenticated_access: true
    tls_downstream_server_name: Legacy.Example.com
  - from: https://other.example.com
    to: http://other
    allow_public_unauthenticated_access: true
`
	for _, c := range []struct {
		what, yaml string
		want       tlsSummary
	}{
		{"no mTLS: a certificate for the name, nothing else", routes, tlsSummary{
			Subjects: []string{"app.example.com", "other.example.com", "legacy.example.com"},
			Automate: []string{"legacy.example.com"}, Strict: "null"}},
		{"global downstream_mtls: the name joins its connection policy, iap_mtls takes it for the route's host",
			"downstream_mtls:\n  ca_file: " + dir + "/rootCA.pem\n" + routes, tlsSummary{
				Subjects:    []string{"app.example.com", "other.example.com", "legacy.example.com"},
				Automate:    []string{"legacy.example.com"},
				Policies:    []string{"app.example.com,other.example.com,legacy.example.com client-auth", " none"},
				ServerNames: []string{`{"app.example.com":["legacy.example.com"]}`},
				Strict:      "false"}},
		{"the route's own client CA: the name is in that policy",
			strings.Replace(routes, "    tls_downstream_server_name", "    tls_downstream_client_ca_file: "+dir+"/rootCA.pem\n    tls_downstream_server_name", 1), tlsSummary{
				Subjects:    []string{"app.example.com", "other.example.com", "legacy.example.com"},
				Automate:    []string{"legacy.example.com"},
				Policies:    []string{"app.example.com,legacy.example.com client-auth", " none"},
				ServerNames: []string{`{"app.example.com":["legacy.example.com"]}`},
				Strict:      "false"}},
		{"autocert: the ACME issuer's policy names it too",
			"autocert: true\nautocert_ca: https://acme.example/directory\n" + routes, tlsSummary{
				Subjects: []string{"app.example.com", "other.example.com", "legacy.example.com"},
				Automate: []string{"legacy.example.com"}, Strict: "null"}},
		{"loaded certificates: the administrator's must cover the name",
			"certificate_file: " + dir + "/_wildcard.localhost.pomerium.io.pem\ncertificate_key_file: " + dir + "/_wildcard.localhost.pomerium.io-key.pem\n" +
				strings.ReplaceAll(routes, "Legacy.Example.com", "legacy.localhost.pomerium.io"),
			tlsSummary{Strict: "null"}},
	} {
		t.Run(c.what, func(t *testing.T) {
			out, warnings, err := adapt(t, c.yaml, "config.yaml")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range warnings {
				if !strings.Contains(w.Message, "deprecated") {
					t.Errorf("warning: %s", w)
				}
			}
			got, _ := json.Marshal(summarizeTLS(t, out))
			want, _ := json.Marshal(c.want)
			if string(got) != string(want) {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
		})
	}
}

// With loaded certificates, a name that none of them covers is a warning
// naming its line: the handshake of a client that sends it would fail.
func TestTLSDownstreamServerNameNotCoveredWarns(t *testing.T) {
	dir := fixtures(t)
	src := "certificate_file: " + dir + "/_wildcard.localhost.pomerium.io.pem\ncertificate_key_file: " + dir + "/_wildcard.localhost.pomerium.io-key.pem\n" +
		"routes:\n  - from: https://app.localhost.pomerium.io\n    to: http://app\n    allow_public_unauthenticated_access: true\n    tls_downstream_server_name: legacy.example.com\n"
	_, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0].String() != "config.yaml:7: tls_downstream_server_name legacy.example.com: no loaded certificate (certificate_file, certificates, certificate) covers it, so a client that sends it fails its handshake" {
		t.Errorf("warnings %v", warnings)
	}
}

// Under insecure_server (plain HTTP) the name does nothing: a warning
// naming its line.
func TestTLSDownstreamServerNameUnderInsecureServerWarns(t *testing.T) {
	src := "insecure_server: true\nroutes:\n  - from: https://app.example.com\n    to: http://app\n    allow_public_unauthenticated_access: true\n    tls_downstream_server_name: legacy.example.com\n"
	out, warnings, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0].String() != "config.yaml:6: tls_downstream_server_name is ignored: insecure_server serves plain HTTP, with no TLS server name" {
		t.Errorf("warnings %v", warnings)
	}
	if strings.Contains(string(out), "legacy.example.com") {
		t.Errorf("the name is in the config:\n%s", out)
	}
}

// A name that could not be a connection's server name, or one whose
// connection policy would be another route's too, is an error naming its
// line.
func TestTLSDownstreamServerNameErrors(t *testing.T) {
	dir := fixtures(t)
	route := func(from, extra string) string {
		return "  - from: https://" + from + "\n    to: http://up\n    allow_public_unauthenticated_access: true\n" + extra
	}
	for _, c := range []struct{ what, yaml, err string }{
		{"a wildcard", "routes:\n" + route("app.example.com", "    tls_downstream_server_name: '*.example.com'\n"),
			`config.yaml:5: tls_downstream_server_name: "*.example.com" is not a host name (no wildcard, scheme, port or path)`},
		{"a URL", "routes:\n" + route("app.example.com", "    tls_downstream_server_name: https://legacy.example.com\n"),
			`config.yaml:5: tls_downstream_server_name: "https://legacy.example.com" is not a host name (no wildcard, scheme, port or path)`},
		{"a port", "routes:\n" + route("app.example.com", "    tls_downstream_server_name: legacy.example.com:8443\n"),
			`config.yaml:5: tls_downstream_server_name: "legacy.example.com:8443" is not a host name (no wildcard, scheme, port or path)`},
		{"another route's host, with its own client CA",
			"routes:\n" + route("app.example.com", "    tls_downstream_client_ca_file: "+dir+"/rootCA.pem\n    tls_downstream_server_name: other.example.com\n") +
				route("other.example.com", ""),
			`config.yaml:6: route app.example.com: tls_downstream_server_name other.example.com is also the host of a route: a connection made for it cannot ask for this route's client certificates`},
		{"two hosts' name, one with its own client CA",
			"routes:\n" + route("app.example.com", "    tls_downstream_client_ca_file: "+dir+"/rootCA.pem\n    tls_downstream_server_name: legacy.example.com\n") +
				route("other.example.com", "    tls_downstream_server_name: legacy.example.com\n"),
			`config.yaml:6: route app.example.com: tls_downstream_server_name legacy.example.com is also named by a route of another host: a connection made for it cannot ask for this route's client certificates`},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, _, err := adapt(t, c.yaml, "config.yaml")
			if err == nil || err.Error() != c.err {
				t.Fatalf("error\n got %v\nwant %s", err, c.err)
			}
		})
	}
	// Routes of several hosts may share a name when no route has its own
	// client CA (the global downstream_mtls covers them all).
	src := "downstream_mtls:\n  ca_file: " + dir + "/rootCA.pem\nroutes:\n" +
		route("app.example.com", "    tls_downstream_server_name: legacy.example.com\n") +
		route("other.example.com", "    tls_downstream_server_name: legacy.example.com\n")
	out, _, err := adapt(t, src, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := summarizeTLS(t, out).ServerNames; len(got) != 1 || got[0] != `{"app.example.com":["legacy.example.com"],"other.example.com":["legacy.example.com"]}` {
		t.Errorf("server_names %v", got)
	}
}
