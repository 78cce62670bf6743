package caddyfile_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

// connPolicy is the part of a TLS connection policy these tests look at.
type connPolicy struct {
	Match struct {
		SNI []string `json:"sni"`
	} `json:"match"`
	CertSelection *struct {
		AnyTag []string `json:"any_tag"`
	} `json:"certificate_selection"`
	ClientAuth *struct {
		Mode string `json:"mode"`
	} `json:"client_authentication"`
}

// policyFor returns the connection policy a handshake for host gets on the
// only server: the first one whose SNI matcher matches, or a catch-all.
func policyFor(t *testing.T, out, host string) connPolicy {
	t.Helper()
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Policies []connPolicy `json:"tls_connection_policies"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apps.HTTP.Servers) != 1 {
		t.Fatalf("want one server, got %d", len(cfg.Apps.HTTP.Servers))
	}
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, p := range srv.Policies {
			if p.Match.SNI == nil {
				return p
			}
			for _, name := range p.Match.SNI {
				if certmagic.MatchWildcard(host, name) {
					return p
				}
			}
		}
	}
	return connPolicy{} // no policy: automatic HTTPS adds a plain one
}

// Issue 14: iap_mtls merges into the connection policy of the site's own
// tls, whatever the certificate source and whichever comes first in the
// site, so that sites sharing a certificate do not swallow its client
// authentication.
func TestMTLSMergesIntoTheSitesTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "client root")
	caFile := ca.WriteCert(t, dir, "rootCA.pem")
	server := testpki.NewCA(t, "server root")
	wild, wildKey := server.Issue(t, testpki.Server("*.example.test", "example.test")).Write(t, dir, "wild")
	a, aKey := server.Issue(t, testpki.Server("a.example.test")).Write(t, dir, "a")
	b, bKey := server.Issue(t, testpki.Server("b.example.test")).Write(t, dir, "b")
	mtls := "\tiap_mtls {\n\t\tca_file " + caFile + "\n\t}\n"
	site := func(host, tls string, withMTLS, mtlsFirst bool) string {
		body := ""
		if tls != "" {
			body = "\ttls " + tls + "\n"
		}
		if withMTLS {
			if mtlsFirst {
				body = mtls + body
			} else {
				body += mtls
			}
		}
		return fmt.Sprintf("https://%s {\n%s\trespond ok\n}\n", host, body)
	}
	shared := wild + " " + wildKey
	for _, c := range []struct {
		name, globals string
		sites         string
		mtls, plain   []string // hosts that must ask for a certificate, and hosts that must not
		selected      []string // hosts whose policy must keep the tls directive's certificate selection
	}{
		{"tls cert key per site", "",
			site("a.example.test", a+" "+aKey, true, false) + site("b.example.test", b+" "+bKey, false, false),
			[]string{"a.example.test"}, []string{"b.example.test"}, []string{"a.example.test", "b.example.test"}},
		{"one cert file, two sites", "",
			site("app.example.test", shared, true, false) + site("other.example.test", shared, false, false),
			[]string{"app.example.test"}, []string{"other.example.test"}, []string{"app.example.test", "other.example.test"}},
		{"one cert file, two sites, iap_mtls written first", "",
			site("app.example.test", shared, true, true) + site("other.example.test", shared, false, false),
			[]string{"app.example.test"}, []string{"other.example.test"}, []string{"app.example.test", "other.example.test"}},
		{"one cert file, three sites, iap_mtls on two", "",
			site("x.example.test", shared, true, false) + site("yy.example.test", shared, false, false) + site("zzz.example.test", shared, true, true),
			[]string{"x.example.test", "zzz.example.test"}, []string{"yy.example.test"}, []string{"x.example.test", "yy.example.test", "zzz.example.test"}},
		{"one cert file, three sites, iap_mtls on one", "",
			site("x.example.test", shared, false, false) + site("yy.example.test", shared, true, false) + site("zzz.example.test", shared, false, false),
			[]string{"yy.example.test"}, []string{"x.example.test", "zzz.example.test"}, []string{"x.example.test", "yy.example.test", "zzz.example.test"}},
		{"wildcard site with iap_mtls and a specific host", "",
			site("*.example.test", shared, true, false) + site("plain.example.test", shared, false, false),
			[]string{"foo.example.test"}, []string{"plain.example.test"}, []string{"foo.example.test", "plain.example.test"}},
		{"specific host with iap_mtls and a wildcard site", "",
			site("*.example.test", shared, false, false) + site("secure.example.test", shared, true, false),
			[]string{"secure.example.test"}, []string{"foo.example.test"}, []string{"foo.example.test", "secure.example.test"}},
		{"tls internal", "",
			site("a.example.test", "internal", true, false) + site("b.example.test", "internal", false, false),
			[]string{"a.example.test"}, []string{"b.example.test"}, nil},
		{"automatic HTTPS with local_certs", "{\n\tlocal_certs\n}\n",
			site("a.example.test", "", true, false) + site("b.example.test", "", false, false),
			[]string{"a.example.test"}, []string{"b.example.test"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := adapt(t, c.globals+c.sites)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range c.mtls {
				if p := policyFor(t, out, h); p.ClientAuth == nil || p.ClientAuth.Mode != "request" {
					t.Errorf("%s does not ask for a client certificate: %+v\n%s", h, p, out)
				}
			}
			for _, h := range c.plain {
				if p := policyFor(t, out, h); p.ClientAuth != nil {
					t.Errorf("%s asks for a client certificate: %+v", h, p)
				}
			}
			for _, h := range c.selected {
				if p := policyFor(t, out, h); p.CertSelection == nil || len(p.CertSelection.AnyTag) == 0 {
					t.Errorf("%s lost the certificate selection of its tls: %+v", h, p)
				}
			}
		})
	}
}

func TestMTLSAndTLSClientAuthInOneSiteIsAnError(t *testing.T) {
	dir := t.TempDir()
	caFile := testpki.NewCA(t, "client root").WriteCert(t, dir, "rootCA.pem")
	tls := "\ttls internal {\n\t\tclient_auth {\n\t\t\tmode require_and_verify\n\t\t\ttrust_pool file " + caFile + "\n\t\t}\n\t}\n"
	mtls := "\tiap_mtls {\n\t\tca_file " + caFile + "\n\t}\n"
	for name, body := range map[string]string{"tls first": tls + mtls, "iap_mtls first": mtls + tls} {
		t.Run(name, func(t *testing.T) {
			_, err := adapt(t, "app.example.test {\n"+body+"\trespond ok\n}\n")
			if err == nil || !strings.Contains(err.Error(), "client_auth") || !strings.Contains(err.Error(), "iap_mtls") {
				t.Fatalf("error = %v, want one naming iap_mtls and tls client_auth", err)
			}
		})
	}
}
