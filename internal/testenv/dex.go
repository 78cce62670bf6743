package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// DexUser is a static user of the test IdP.
type DexUser struct {
	Email, Name, Password string
	Groups                []string
}

// Dex is a running Dex, a real OpenID Connect provider, on loopback.
type Dex struct {
	Port         int
	Issuer       string
	ClientID     string
	ClientSecret string
	// MetricsURL is Dex's Prometheus endpoint, with DexOptions.Telemetry.
	MetricsURL string
	confPath   string
	out        *syncBuffer
	cmd        *exec.Cmd
	exited     chan struct{}
	t          testing.TB
}

// DexOptions configure the test IdP.
type DexOptions struct {
	// RedirectURIs of the "caddy" client.
	RedirectURIs []string
	Users        []DexUser
	// IDTokenTTL is the ID tokens' lifetime; default 24h.
	IDTokenTTL time.Duration
	// Port to listen on; default a free one.
	Port int
	// Telemetry serves Dex's Prometheus metrics (telemetry.http in its
	// config) on a free loopback port; see Dex.Metrics.
	Telemetry bool
}

// DexBinary returns the path of bin/dex, which scripts/test.sh builds from
// tools/dex (scripts/build-dex.sh), or $DEX_BIN.
func DexBinary(t testing.TB) string {
	t.Helper()
	return builtTool(t, "dex", "Dex", "DEX_BIN", "scripts/build-dex.sh")
}

// builtTool returns the path of bin/<name>, which scripts/test.sh builds
// from tools/<name> with script, or the path in the environment variable
// env; the test fails, saying how to build it, when it is missing. what
// names the tool in that message.
func builtTool(t testing.TB, name, what, env, script string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built (%v): run the tests with ./scripts/test.sh, which builds bin/%s from tools/%s (%s)", what, err, name, name, script)
	}
	return p
}

// StartDex runs Dex with in-memory storage, a password database with the
// given users, the client "caddy" and the password grant (for bearer
// tokens in tests). A second client, "other", has another audience.
func StartDex(t testing.TB, o DexOptions) *Dex {
	t.Helper()
	if o.Port == 0 {
		o.Port = FreePort(t)
	}
	if o.IDTokenTTL == 0 {
		o.IDTokenTTL = 24 * time.Hour
	}
	d := &Dex{Port: o.Port, ClientID: "caddy", ClientSecret: "caddy-secret", t: t}
	d.Issuer = fmt.Sprintf("http://127.0.0.1:%d/dex", o.Port)
	var users strings.Builder
	for i, u := range o.Users {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), 10)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&users, "- email: %q\n  hash: %q\n  username: %q\n  name: %q\n  userID: \"user-%d\"\n  groups: [%s]\n",
			u.Email, hash, strings.Split(u.Email, "@")[0], u.Name, i, quoteList(u.Groups))
	}
	conf := fmt.Sprintf(`issuer: %s
storage:
  type: memory
web:
  http: 127.0.0.1:%d
logger:
  level: info
oauth2:
  skipApprovalScreen: true
  passwordConnector: local
expiry:
  idTokens: %q
enablePasswordDB: true
staticClients:
- id: caddy
  secret: caddy-secret
  name: caddy
  redirectURIs: [%s]
- id: other
  secret: other-secret
  name: other
  redirectURIs: ["https://other.invalid/callback"]
staticPasswords:
%s`, d.Issuer, o.Port, o.IDTokenTTL.String(), quoteList(o.RedirectURIs), users.String())
	if o.Telemetry {
		addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		d.MetricsURL = "http://" + addr + "/metrics"
		conf += fmt.Sprintf("telemetry:\n  http: %s\n", addr)
	}
	dir := t.TempDir()
	d.confPath = filepath.Join(dir, "dex.yaml")
	if err := os.WriteFile(d.confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	t.Cleanup(d.Stop)
	return d
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func (d *Dex) start() {
	d.t.Helper()
	d.out = new(syncBuffer)
	d.cmd = exec.Command(DexBinary(d.t), "serve", d.confPath)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("starting dex: %v", err)
	}
	d.exited = make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	waitOK(d.t, "dex", d.Issuer+"/.well-known/openid-configuration", 30*time.Second, d.exited, d.out)
}

// Stop stops Dex; its in-memory state (sessions, refresh tokens) is lost.
func (d *Dex) Stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	if d.t.Failed() {
		d.t.Logf("--- dex output ---\n%s", d.out.String())
	}
	d.cmd = nil
}

// Restart stops and starts Dex on the same port, forgetting its tokens.
func (d *Dex) Restart() {
	d.Stop()
	d.start()
}

// Metrics returns Dex's Prometheus metrics as text (DexOptions.Telemetry).
func (d *Dex) Metrics(t testing.TB) string {
	t.Helper()
	if d.MetricsURL == "" {
		t.Fatal("Dex was started without DexOptions.Telemetry")
	}
	resp, err := http.Get(d.MetricsURL)
	if err != nil {
		t.Fatalf("dex metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("dex metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// DexTokens is what Dex's token endpoint answered.
type DexTokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// PasswordGrant gets tokens for a user with Dex's password grant (Dex's
// config enables it for the local users), as the client with this ID and
// secret, for these scopes. It fails the test without an ID token.
func (d *Dex) PasswordGrant(t testing.TB, clientID, clientSecret, email, password, scope string) DexTokens {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}, "scope": {scope}}
	req, _ := http.NewRequest(http.MethodPost, d.Issuer+"/token", strings.NewReader(form.Encode()))
	req.SetBasicAuth(clientID, clientSecret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok DexTokens
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.IDToken == "" {
		t.Fatalf("password grant for %s as %s: %d %v %+v", email, clientID, resp.StatusCode, err, tok)
	}
	return tok
}
