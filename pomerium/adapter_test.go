package pomerium

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-iap/caddy-iap/internal/testpki"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixtures writes the files the test configs name into dir.
func fixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	ca.WriteCert(t, dir, "rootCA.pem")
	ca.Issue(t, testpki.Client("pomerium@localhost")).Write(t, dir, "pomerium@localhost-client")
	ca.Issue(t, testpki.Server("*.localhost.pomerium.io")).Write(t, dir, "_wildcard.localhost.pomerium.io")
	return dir
}

func adapt(t *testing.T, yaml, name string) ([]byte, []caddyconfig.Warning, error) {
	t.Helper()
	return Adapter{}.Adapt([]byte(yaml), map[string]any{"filename": name})
}

// Each testdata/*.yaml adapts to the JSON next to it (reviewed by hand once;
// regenerate with go test ./pomerium -update).
func TestGolden(t *testing.T) {
	dir := fixtures(t)
	inputs, _ := filepath.Glob("testdata/*.yaml")
	if len(inputs) == 0 {
		t.Fatal("no testdata")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := adapt(t, strings.ReplaceAll(string(src), "$DIR", dir), filepath.Base(in))
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "  "); err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(pretty.String(), dir, "$DIR") + "\n"
			for _, w := range warnings {
				got += "// warning: " + w.String() + "\n"
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".json"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pomerium -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", in, golden, got)
			}
		})
	}
}

func TestErrorsNameTheSettingAndLine(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"an unknown setting", "routes: []\ncookie_monster: yes\n", `config.yaml:2: unknown setting "cookie_monster"`},
		{"an unknown route setting", "routes:\n  - from: https://a.example\n    to: http://b\n    allow_everyone: true\n", `config.yaml:4: unknown route setting "allow_everyone"`},
		{"the removed client_ca", "client_ca: abc\n", "config.yaml:1: client_ca has been removed: use downstream_mtls.ca"},
		{"the removed client_ca_file", "client_ca_file: /x\n", "client_ca_file has been removed: use downstream_mtls.ca_file"},
		{"a route without to", "routes:\n  - from: https://a.example\n    allow_public_unauthenticated_access: true\n", "a route needs to"},
		{"a TCP route", "routes:\n  - from: tcp+https://a.example:22\n    to: tcp://b:22\n", "tcp+https routes (TCP, UDP, SSH) are not supported"},
		{"a policy with an unknown criterion", "routes:\n  - from: https://a.example\n    to: http://b\n    policy:\n      - allow:\n          or:\n            - emial: x\n", `config.yaml:7: unknown criterion "emial"`},
		{"public access with an allow-list", "routes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n    allowed_users: [a]\n", "cannot be combined"},
		{"a non-OIDC IdP", "idp_provider: github\nidp_client_id: x\n", `idp_provider "github" is not an OpenID Connect provider`},
		{"a missing client certificate file", "routes:\n  - from: https://a.example\n    to: https://b\n    tls_client_cert_file: /nope.pem\n    tls_client_key_file: /nope-key.pem\n    allow_public_unauthenticated_access: true\n", "tls_client_cert_file: reading /nope.pem"},
		{"a missing downstream_mtls CA file", "downstream_mtls:\n  ca_file: /nope.pem\nroutes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n",
			"config.yaml: downstream_mtls: ca_file: reading /nope.pem"},
		{"a missing per-route client CA file", "routes:\n  - from: https://a.example\n    to: http://b\n    tls_downstream_client_ca_file: /nope.pem\n    allow_public_unauthenticated_access: true\n",
			"config.yaml: route a.example: tls_downstream_client_ca_file: ca_file: reading /nope.pem"},
		{"a downstream_mtls typo", "downstream_mtls:\n  ca_flie: /x\n", `config.yaml:2: unknown downstream_mtls setting "ca_flie"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := adapt(t, c.yaml, "config.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestKnownButUnsupportedSettingsAreWarnings(t *testing.T) {
	_, warnings, err := adapt(t, "debug_address: :9090\nroutes:\n  - from: https://a.example\n    to: http://b\n    regex_priority_order: 5\n    allow_public_unauthenticated_access: true\n", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	joined := strings.Join(got, "\n")
	if !strings.Contains(joined, "config.yaml:1: debug_address is ignored: ") || !strings.Contains(joined, "config.yaml:5: route setting regex_priority_order is ignored: ") {
		t.Errorf("warnings:\n%s", joined)
	}
}

func TestEnvironmentVariablesOverrideTheFile(t *testing.T) {
	t.Setenv("IDP_CLIENT_SECRET", "from-env")
	t.Setenv("COOKIE_SECRET", "V2JBZk0zWGtsL29UcFUvWjVDWC9qK1JKS3Jhc0RaSmQ=")
	t.Setenv("ADDRESS", ":9443")
	out, _, err := adapt(t, "idp_provider_url: https://idp.example\nidp_client_id: x\nidp_client_secret: from-file\naddress: :443\n", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"client_secret":"from-env"`, `"cookie_secret":"V2JBZk0zWGtsL29UcFUvWjVDWC9qK1JKS3Jhc0RaSmQ="`, `":9443"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}
}

// downstream_mtls may come from the environment alone; its warnings then
// have no line to name.
func TestDownstreamMTLSFromTheEnvironmentAloneWarnsWithoutALine(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "root")
	other := testpki.NewCA(t, "other")
	t.Setenv("DOWNSTREAM_MTLS_CA_FILE", ca.WriteCert(t, dir, "rootCA.pem"))
	crl := filepath.Join(dir, "other.crl")
	if err := os.WriteFile(crl, other.CurrentCRL(t), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOWNSTREAM_MTLS_CRL_FILE", crl)
	out, warnings, err := adapt(t, "routes:\n  - from: https://a.example\n    to: http://b\n    allow_public_unauthenticated_access: true\n", "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"client_authentication"`) {
		t.Errorf("no client_authentication:\n%s", out)
	}
	if len(warnings) != 1 || warnings[0].Line != 0 || !strings.Contains(warnings[0].Message, "not signed by any CA") {
		t.Errorf("warnings = %v, want one about the CRL, without a line", warnings)
	}
}
