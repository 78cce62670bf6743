package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-iap/caddy-iap/authn"
	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// rotationEnv is Dex and Caddys whose global iap option a test rewrites
// and reloads: the keys change, the sites stay.
type rotationEnv struct {
	dex      *testenv.Dex
	upstream string
}

func newRotationEnv(t *testing.T, httpsPorts ...int) *rotationEnv {
	t.Helper()
	var uris []string
	for _, p := range httpsPorts {
		uris = append(uris, fmt.Sprintf("https://app.test:%d/.iap/callback", p))
	}
	return &rotationEnv{
		dex:      testenv.StartDex(t, testenv.DexOptions{RedirectURIs: uris, Users: []testenv.DexUser{alice}}),
		upstream: echoUpstream(t),
	}
}

// globals is the iap global option with these key lines, plus other
// global options.
func (e *rotationEnv) globals(other string, keyLines ...string) string {
	return fmt.Sprintf(`	iap {
		idp {
			provider_url %s
			client_id %s
			client_secret %s
			scopes openid email profile groups offline_access
		}
		%s
	}
%s`, e.dex.Issuer, e.dex.ClientID, e.dex.ClientSecret, strings.Join(keyLines, "\n\t\t"), other)
}

func (e *rotationEnv) sites() string {
	return site("app.test", "to "+e.upstream, "allow_any_authenticated_user")
}

// signedIn fetches app.test/ with ua and fails unless the upstream
// answered, signed in: no trip to the IdP. It returns what the upstream
// got.
func signedIn(t *testing.T, ua *testenv.UserAgent) http.Header {
	t.Helper()
	resp, body := ua.Get(t, ua.URL("app.test", "/"), nil)
	if resp.StatusCode != 200 || strings.Contains(resp.Request.URL.Path, "/dex/") {
		t.Fatalf("not signed in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return echoed(t, body)
}

// A cookie_secret rotation signs nobody out: a session made before it is
// sealed again under the new secret on its next request and outlives the
// old secret's removal. A session that sat out the whole overlap ends,
// with the reason in the log.
func TestCookieSecretRotationKeepsSessions(t *testing.T) {
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	e := newRotationEnv(t, httpsPort)
	oldSecret, newSecret := randomSecret(t), randomSecret(t)
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, e.globals("", "cookie_secret "+oldSecret), e.sites())

	active, idle := caddy.NewUserAgent(t), caddy.NewUserAgent(t)
	for _, ua := range []*testenv.UserAgent{active, idle} {
		if resp, _ := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
	}
	sealedOld := active.Cookie("app.test", "__Host-_iap")

	caddy.Reload(t, e.globals("", "cookie_secret "+newSecret, "cookie_secret_previous "+oldSecret), e.sites())
	t.Run("after the swap, a session of the old secret is served and sealed again", func(t *testing.T) {
		if h := signedIn(t, active); h.Get("X-Iap-Jwt-Assertion") == "" {
			t.Error("no assertion upstream")
		}
		if now := active.Cookie("app.test", "__Host-_iap"); now == "" || now == sealedOld {
			t.Error("the session cookie was not sealed again")
		}
	})

	caddy.Reload(t, e.globals("", "cookie_secret "+newSecret), e.sites())
	t.Run("after the old secret is removed, the re-sealed session still works", func(t *testing.T) {
		signedIn(t, active)
	})

	t.Run("a session not seen during the overlap ends, and the log says why", func(t *testing.T) {
		resp, _ := idle.Get(t, idle.URL("app.test", "/"), nil)
		if !strings.Contains(resp.Request.URL.Path, "/dex/") {
			t.Fatalf("the idle session was not sent to sign in again: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		if !caddy.WaitLog("session cookie refused, and cleared") || !strings.Contains(caddy.Log(), "sealed under another cookie_secret") {
			t.Errorf("no reason logged:\n%s", caddy.Log())
		}
	})
}

// writePEM writes keys to a file, in order, and returns its path.
func writePEM(t *testing.T, dir, name string, keys ...*ecdsa.PrivateKey) string {
	t.Helper()
	var b []byte
	for _, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fetchJWKS is the JWKS a Caddy publishes for app.test.
func fetchJWKS(t *testing.T, caddy *testenv.Caddy) jose.JSONWebKeySet {
	t.Helper()
	r := caddy.Get(t, "app.test", "/.well-known/iap/jwks.json", nil)
	var set jose.JSONWebKeySet
	if r.Status != 200 || json.Unmarshal([]byte(r.Body), &set) != nil {
		t.Fatalf("JWKS: %d %s", r.Status, r.Body)
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// verifiedKID checks an assertion against a JWKS, as an upstream does,
// and returns its key ID; "" and an error when it does not verify.
func verifiedKID(raw string, set jose.JSONWebKeySet) (string, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", err
	}
	kid := tok.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) == 0 {
		return "", fmt.Errorf("the JWKS has no key %q", kid)
	}
	var c jwt.Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return "", err
	}
	if err := c.Validate(jwt.Expected{Issuer: "app.test", AnyAudience: jwt.Audience{"app.test"}, Time: time.Now()}); err != nil {
		return "", err
	}
	return kid, nil
}

func kidOfKey(t *testing.T, k *ecdsa.PrivateKey) string {
	t.Helper()
	kid, err := authn.KeyID(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// Pomerium's three-step rotation of signing_key_file (add the new key
// second, put it first, remove the old one), one reload each: an assertion
// made before each step verifies against the JWKS after it.
func TestSigningKeyFileRotation(t *testing.T) {
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	e := newRotationEnv(t, httpsPort)
	secret := randomSecret(t)
	dir := t.TempDir()
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	oldKID, newKID := kidOfKey(t, oldKey), kidOfKey(t, newKey)
	keys := func(file string) []string {
		return []string{"cookie_secret " + secret, "signing_key_file " + file}
	}
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, e.globals("", keys(writePEM(t, dir, "0.pem", oldKey))...), e.sites())
	ua := caddy.NewUserAgent(t)
	if resp, _ := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	assertion := signedIn(t, ua).Get("X-Iap-Jwt-Assertion")

	for _, step := range []struct {
		name      string
		keys      []*ecdsa.PrivateKey
		published []string
		signs     string
	}{
		{"1. the new key listed second is published and does not sign", []*ecdsa.PrivateKey{oldKey, newKey}, []string{oldKID, newKID}, oldKID},
		{"2. the new key listed first signs", []*ecdsa.PrivateKey{newKey, oldKey}, []string{newKID, oldKID}, newKID},
		{"3. the old key removed", []*ecdsa.PrivateKey{newKey}, []string{newKID}, newKID},
	} {
		t.Run(step.name, func(t *testing.T) {
			caddy.Reload(t, e.globals("", keys(writePEM(t, dir, step.name[:1]+".pem", step.keys...))...), e.sites())
			set := fetchJWKS(t, caddy)
			if got := kids(set); fmt.Sprint(got) != fmt.Sprint(step.published) {
				t.Errorf("JWKS %v, want %v", got, step.published)
			}
			if _, err := verifiedKID(assertion, set); err != nil {
				t.Errorf("the assertion made before this step does not verify against the JWKS after it: %v", err)
			}
			assertion = signedIn(t, ua).Get("X-Iap-Jwt-Assertion")
			if kid, err := verifiedKID(assertion, set); err != nil || kid != step.signs {
				t.Errorf("the new assertion: key %s, %v; want %s", kid, err, step.signs)
			}
		})
	}
}

// shareLocalCA copies the root of the local CA in a shared storage to
// where testenv's clients look for it, the Caddy's own data directory.
func shareLocalCA(t *testing.T, storage string, c *testenv.Caddy) {
	t.Helper()
	const rel = "pki/authorities/local/root.crt"
	for i := 0; ; i++ {
		b, err := os.ReadFile(filepath.Join(storage, rel))
		if err == nil {
			dst := filepath.Join(c.Dir, "data", "caddy", rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
		if i == 100 {
			t.Fatalf("no local CA in the shared storage: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two instances sharing one storage, with signing_key_rotate: they sign
// with the same key in turn, each key is in the JWKS before it signs, a
// session made on one works on the other, and an assertion made before a
// rotation verifies against the JWKS after it.
func TestGeneratedSigningKeyRotation(t *testing.T) {
	ports := [2][2]int{}
	for i := range ports {
		ports[i] = [2]int{testenv.FreePort(t), testenv.FreePort(t)}
	}
	e := newRotationEnv(t, ports[0][1], ports[1][1])
	secret := randomSecret(t)
	shared := t.TempDir()
	globals := e.globals("\tstorage file_system "+shared, "cookie_secret "+secret, "signing_key_rotate 2s")
	var caddys [2]*testenv.Caddy
	for i := range caddys {
		caddys[i] = testenv.StartCaddyOn(t, ports[i][0], ports[i][1], globals, e.sites())
		shareLocalCA(t, shared, caddys[i])
	}
	ua := caddys[0].NewUserAgent(t)
	if resp, _ := ua.SignIn(t, ua.URL("app.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	cookie := http.Header{"Cookie": {"__Host-_iap=" + ua.Cookie("app.test", "__Host-_iap")}, "Accept": {"application/json"}}
	current := func(i int) string {
		r := caddys[i].Get(t, "app.test", "/.iap/jwt", cookie)
		if r.Status != 200 {
			t.Fatalf("instance %d, /.iap/jwt with the session: %d %s", i+1, r.Status, r.Body)
		}
		return r.Body
	}
	first := current(0)

	published := map[string]bool{}
	var signed [2][]string
	for deadline := time.Now().Add(7 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for i := range caddys {
			set := fetchJWKS(t, caddys[i])
			raw := current(i)
			kid, err := verifiedKID(raw, set)
			if err != nil {
				t.Fatalf("instance %d: its assertion does not verify against its JWKS: %v", i+1, err)
			}
			if n := len(signed[i]); n == 0 || signed[i][n-1] != kid {
				if n > 0 && !published[kid] {
					t.Errorf("instance %d signs with %s, which no JWKS listed before", i+1, kid)
				}
				signed[i] = append(signed[i], kid)
			}
			for _, k := range kids(set) {
				published[k] = true
			}
			if _, err := verifiedKID(first, set); err != nil {
				t.Errorf("instance %d: the first assertion no longer verifies against its JWKS: %v", i+1, err)
			}
		}
	}
	// A loaded machine may delay one instance's check past a switch, so
	// the two sequences may differ by a skipped key; what must hold is the
	// above (every key published before it signs, old assertions still
	// verify), that keys rotate, and that the instances agree once their
	// checks have run.
	if len(signed[0]) < 2 || len(signed[1]) < 2 {
		t.Errorf("no rotation in 7 s with signing_key_rotate 2s: %v %v", signed[0], signed[1])
	}
	agreed := false
	for end := time.Now().Add(10 * time.Second); !agreed && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		k0, err0 := verifiedKID(current(0), fetchJWKS(t, caddys[0]))
		k1, err1 := verifiedKID(current(1), fetchJWKS(t, caddys[1]))
		agreed = err0 == nil && err1 == nil && k0 == k1
	}
	if !agreed {
		t.Errorf("the instances never agreed on the signing key: %v %v", signed[0], signed[1])
	}
	if !caddys[0].WaitLog("assertions are now signed with the next key") {
		t.Error("the switch was not logged")
	}
}
