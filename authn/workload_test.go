package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/caddy-iap/caddy-iap/authz"
	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// countingTransport counts the requests whose path ends in suffix.
type countingTransport struct {
	suffix string
	n      atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, c.suffix) {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// hydraWorkloads starts Hydra issuing JWT access tokens and registers a
// workload client "ci" that may ask for the audiences api and other.
func hydraWorkloads(t *testing.T) *testenv.Hydra {
	t.Helper()
	h := testenv.StartHydra(t, testenv.HydraOptions{JWTAccessTokens: true})
	h.CreateWorkloadClient(t, "ci", "ci-secret", "api", "other")
	return h
}

// claimsOf reads a JWT's claims without verifying it.
func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// headerOf reads a JWT's header.
func headerOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// hydraPublicKey fetches the public key that signed tok from Hydra's JWKS.
func hydraPublicKey(t *testing.T, h *testenv.Hydra, kid string) jose.JSONWebKey {
	t.Helper()
	resp, err := http.Get(h.Issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(kid)
	if len(keys) == 0 {
		t.Fatalf("hydra's JWKS has no key %q", kid)
	}
	return keys[0]
}

// The workload verifier against a real issuer: Ory Hydra's JWT access
// tokens from the client_credentials grant, and what it refuses.
func TestWorkloadTokensFromHydra(t *testing.T) {
	h := hydraWorkloads(t)
	tok := h.ClientCredentials(t, "ci", "ci-secret", "api")
	iss, _ := claimsOf(t, tok)["iss"].(string)
	if iss == "" {
		t.Fatalf("hydra's access token has no iss: %v", claimsOf(t, tok))
	}
	keys := &countingTransport{suffix: "/jwks.json"}
	now := time.Now()
	clock := func() time.Time { return now }
	w, err := NewWorkloads(WorkloadsConfig{
		Issuers: []WorkloadIssuer{
			{Name: "hydra", Issuer: iss, Audiences: []string{"api"}},
			{Name: "other", Issuer: "https://other.example.com", Audiences: []string{"api"}},
		},
		HTTPClient: &http.Client{Transport: keys, Timeout: 10 * time.Second},
		Now:        func() time.Time { return clock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	s, err := w.Verify(ctx, tok, nil)
	if err != nil {
		t.Fatalf("hydra's token for api: %v", err)
	}
	if s.Subject != "hydra/ci" || s.Workload != "hydra" || !s.Bearer {
		t.Errorf("session %+v: want user hydra/ci, workload hydra, bearer", s)
	}
	if v, _ := s.Claim("sub"); v != "ci" {
		t.Errorf("claim sub = %v, want the token's own sub, ci", v)
	}
	if v, ok := s.Claim("client_id"); !ok || v != "ci" {
		t.Errorf("claim client_id = %v %v, want ci (every claim of the token is kept)", v, ok)
	}
	if _, err := w.Verify(ctx, tok, []string{"hydra"}); err != nil {
		t.Errorf("allowed by name: %v", err)
	}

	kid, _ := headerOf(t, tok)["kid"].(string)
	pub := hydraPublicKey(t, h, kid)
	der, err := x509.MarshalPKIXPublicKey(pub.Key)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	sign := func(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(signer).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	withClaims := func(change func(map[string]any)) map[string]any {
		c := claimsOf(t, tok)
		change(c)
		return c
	}
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, withClaims(func(c map[string]any) { c["sub"] = "admin" }))) + "." + parts[2]
	badSig := []byte(parts[2])
	// Another base64url character, so that the signature decodes.
	if badSig[10] == 'A' {
		badSig[10] = 'B'
	} else {
		badSig[10] = 'A'
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+kid+`","typ":"JWT"}`)) + "." + parts[1] + "."

	refused := []struct {
		name, token string
		allowed     []string
		want        string
	}{
		{"a token for another audience", h.ClientCredentials(t, "ci", "ci-secret", "other"), nil, `audience ["other"] is none of its audiences ["api"]`},
		{"a token with no audience", h.ClientCredentials(t, "ci", "ci-secret"), nil, "is none of its audiences"},
		{"an issuer not allowed on the route", tok, []string{"other"}, `identity provider "hydra" (issuer "` + iss + `") is not allowed on this route`},
		{"an issuer not configured", sign(jose.RS256, otherKey, "k", map[string]any{"iss": "https://evil.example.com", "sub": "x", "aud": "api", "exp": now.Add(time.Hour).Unix()}), nil, "no identity provider of identity_providers has the token's issuer"},
		{"claims changed under hydra's signature", tampered, nil, "failed to verify signature"},
		{"a signature with one character changed", parts[0] + "." + parts[1] + "." + string(badSig), nil, "failed to verify signature"},
		{"alg none", none, nil, "malformed jwt"},
		{"HS256 with hydra's public key as the secret", sign(jose.HS256, der, kid, claimsOf(t, tok)), nil, "unexpected signature algorithm"},
		{"RS256 with a key hydra never published", sign(jose.RS256, otherKey, "made-up-kid", claimsOf(t, tok)), nil, "failed to verify"},
		{"not a JWT", "abc.def", nil, "not a JWT"},
		{"over the size bound", strings.Repeat("a", MaxWorkloadToken+1), nil, "over the 16384 accepted"},
	}
	for _, c := range refused {
		_, err := w.Verify(ctx, c.token, c.allowed)
		if err == nil || !errors.Is(err, ErrBadBearer) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrBadBearer with %q", c.name, err, c.want)
		}
	}

	// An hour and a minute later, hydra's token (an hour's lifespan) has
	// expired.
	clock = func() time.Time { return now.Add(61 * time.Minute) }
	if _, err := w.Verify(ctx, tok, nil); err == nil || !strings.Contains(err.Error(), "token is expired") {
		t.Errorf("expired: %v", err)
	}
	clock = func() time.Time { return now }

	// Made-up key IDs do not make the key set be fetched once each: one
	// fetch per refresh interval (10s), however many tokens.
	before := keys.n.Load()
	for i := range 50 {
		forged := sign(jose.RS256, otherKey, "made-up-"+string(rune('a'+i%26))+string(rune('a'+i/26)), claimsOf(t, tok))
		if _, err := w.Verify(ctx, forged, nil); err == nil {
			t.Fatal("a token signed with a made-up key was accepted")
		}
	}
	if n := keys.n.Load() - before; n > 1 {
		t.Errorf("50 tokens with unknown key IDs made %d key set fetches at hydra, want at most 1", n)
	}
	t.Logf("key set fetches at hydra: %d in all; %d for 50 tokens with unknown key IDs", keys.n.Load(), keys.n.Load()-before)
	if _, err := w.Verify(ctx, tok, nil); err != nil {
		t.Errorf("the good token after the flood: %v", err)
	}
}

// Dex's ID tokens are a second real issuer: their audience is the client
// ID. A workload issuer set up for Dex accepts them; a route that lists
// only hydra does not.
func TestWorkloadTokensFromDex(t *testing.T) {
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{{Email: "alice@example.com", Password: "pw"}}})
	tok := dex.PasswordGrant(t, "caddy", "caddy-secret", "alice@example.com", "pw", "openid email")
	w, err := NewWorkloads(WorkloadsConfig{Issuers: []WorkloadIssuer{
		{Name: "dex", Issuer: dex.Issuer, Audiences: []string{"caddy"}},
		{Name: "hydra", Issuer: "http://127.0.0.1:1", Audiences: []string{"api"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Verify(context.Background(), tok.IDToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Subject, "dex/") || s.Email != "alice@example.com" {
		t.Errorf("session %+v: want user dex/<sub> and alice's email", s)
	}
	if _, err := w.Verify(context.Background(), tok.IDToken, []string{"hydra"}); err == nil || !strings.Contains(err.Error(), `identity provider "dex"`) {
		t.Errorf("dex's token on a hydra-only route: %v", err)
	}
	// The same token for an issuer whose audiences are another client's.
	w2, _ := NewWorkloads(WorkloadsConfig{Issuers: []WorkloadIssuer{{Name: "dex", Issuer: dex.Issuer, Audiences: []string{"api"}}}})
	if _, err := w2.Verify(context.Background(), tok.IDToken, nil); err == nil || !strings.Contains(err.Error(), "none of its audiences") {
		t.Errorf("dex's token for caddy where api is wanted: %v", err)
	}
}

// An issuer that cannot be discovered is ErrIdPUnavailable (a 503, the
// token may be good), and is asked again at most once per interval.
func TestWorkloadIssuerDown(t *testing.T) {
	port := testenv.FreePort(t)
	iss := "http://127.0.0.1:" + itoa(port)
	disco := &countingTransport{suffix: "/openid-configuration"}
	var observed []string
	w, err := NewWorkloads(WorkloadsConfig{Issuers: []WorkloadIssuer{{Name: "down", Issuer: iss, Audiences: []string{"api"}}},
		HTTPClient: &http.Client{Transport: disco, Timeout: 5 * time.Second},
		Observe:    func(event, result, reason string) { observed = append(observed, event+" "+result+" "+reason) }})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, nil)
	raw, _ := jwt.Signed(signer).Claims(map[string]any{"iss": iss, "sub": "x", "aud": "api", "exp": time.Now().Add(time.Hour).Unix()}).Serialize()
	for range 20 {
		if _, err := w.Verify(context.Background(), raw, nil); !errors.Is(err, ErrIdPUnavailable) {
			t.Fatalf("issuer down: %v, want ErrIdPUnavailable", err)
		}
	}
	if n := disco.n.Load(); n != 1 {
		t.Errorf("20 tokens of an issuer that is down made %d discovery requests, want 1", n)
	}
	if want := EventIdPFetchError + " " + FetchDiscovery + " " + iss; len(observed) != 1 || observed[0] != want {
		t.Errorf("observed %q, want one %q (caddy_iap_idp_fetch_errors_total)", observed, want)
	}

	// A jwks_url that does not answer: 503 too, and a key fetch error.
	observed = nil
	w, err = NewWorkloads(WorkloadsConfig{Issuers: []WorkloadIssuer{{Name: "down", Issuer: iss, JWKSURL: iss + "/keys", Audiences: []string{"api"}}},
		HTTPClient: &http.Client{Timeout: 5 * time.Second},
		Observe:    func(event, result, reason string) { observed = append(observed, event+" "+result+" "+reason) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Verify(context.Background(), raw, nil); !errors.Is(err, ErrIdPUnavailable) || errors.Is(err, ErrBadBearer) {
		t.Errorf("key set down: %v, want ErrIdPUnavailable", err)
	}
	if want := EventIdPFetchError + " " + FetchKeys + " " + iss; len(observed) != 1 || observed[0] != want {
		t.Errorf("observed %q, want one %q", observed, want)
	}
	// Within the interval the key set is not asked again, and it is
	// still down: 503, not a refused token.
	if _, err := w.Verify(context.Background(), raw, nil); !errors.Is(err, ErrIdPUnavailable) || len(observed) != 1 {
		t.Errorf("again at once: %v, %d fetch errors", err, len(observed))
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The settings Pomerium refuses are refused, each naming the setting.
func TestCheckWorkloadIssuer(t *testing.T) {
	ok := WorkloadIssuer{Name: "ci", Issuer: "https://token.actions.githubusercontent.com", Audiences: []string{"api"}}
	if err := CheckWorkloadIssuer(ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		change func(*WorkloadIssuer)
		want   string
	}{
		{"a plain-http issuer on the network", func(w *WorkloadIssuer) { w.Issuer = "http://idp.example.com" }, "must use https (http only on a loopback host)"},
		{"a plain-http key set on the network", func(w *WorkloadIssuer) { w.JWKSURL = "http://idp.example.com/keys" }, "jwks_url \"http://idp.example.com/keys\" must be an https URL"},
		{"no audiences", func(w *WorkloadIssuer) { w.Audiences = nil }, "audiences are required"},
		{"an empty audience", func(w *WorkloadIssuer) { w.Audiences = []string{" "} }, "an empty audience"},
		{"HS256", func(w *WorkloadIssuer) { w.SupportedAlgs = []string{"RS256", "HS256"} }, `supported_algs "HS256" is not accepted`},
		{"none", func(w *WorkloadIssuer) { w.SupportedAlgs = []string{"none"} }, `supported_algs "none" is not accepted`},
		{"kubernetes:///", func(w *WorkloadIssuer) { w.Issuer = "kubernetes:///" }, "the in-cluster Kubernetes issuer is not supported"},
		{"a relative issuer", func(w *WorkloadIssuer) { w.Issuer = "foo" }, "must be an absolute URL"},
		{"an uppercase name", func(w *WorkloadIssuer) { w.Name = "CI" }, "must be lowercase"},
		{"a name with a slash", func(w *WorkloadIssuer) { w.Name = "a/b" }, "must not contain '/'"},
	} {
		w := ok
		c.change(&w)
		if err := CheckWorkloadIssuer(w); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	for _, loop := range []string{"http://127.0.0.1:5556/dex", "http://localhost:8080", "http://[::1]:1", "http://idp.localhost"} {
		w := ok
		w.Issuer = loop
		if err := CheckWorkloadIssuer(w); err != nil {
			t.Errorf("%s: %v", loop, err)
		}
	}
	_, err := NewWorkloads(WorkloadsConfig{Issuers: []WorkloadIssuer{ok, {Name: "ci2", Issuer: ok.Issuer, Audiences: []string{"x"}}}})
	if err == nil || !strings.Contains(err.Error(), "have the same issuer") {
		t.Errorf("two providers with one issuer: %v", err)
	}
}

// The claims PPL sees of a workload, as Pomerium's tests use them
// (authorize/jwt_bearer_int_test.go): claim/sub is the token's own sub,
// nested claims are reached with dots (claim/kubernetes.io.namespace), and
// user is "<name>/<sub>".
func TestWorkloadClaimsForPolicy(t *testing.T) {
	op := startTestOP(t)
	now := time.Now()
	w, err := NewWorkloads(WorkloadsConfig{Issuers: []WorkloadIssuer{{Name: "k8s", Issuer: op.URL, Audiences: []string{"caddy"}}}})
	if err != nil {
		t.Fatal(err)
	}
	session := func(namespace string) *Session {
		raw := op.token(t, "k1", "", now, map[string]any{"sub": "system:serviceaccount:" + namespace + ":my-sa",
			"kubernetes.io": map[string]any{"namespace": namespace, "serviceaccount": map[string]any{"name": "my-sa"}}})
		s, err := w.Verify(context.Background(), raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		policy string
		allow  map[string]bool // by namespace
	}{
		{"allow:\n  and:\n    - claim/kubernetes.io.namespace: platform\n", map[string]bool{"platform": true, "other": false}},
		{"allow:\n  and:\n    - claim/sub: system:serviceaccount:platform:my-sa\n", map[string]bool{"platform": true, "other": false}},
		{"allow:\n  and:\n    - user: {is: k8s/system:serviceaccount:other:my-sa}\n", map[string]bool{"platform": false, "other": true}},
		{"allow:\n  and:\n    - claim/kubernetes.io.serviceaccount.name: my-sa\n", map[string]bool{"platform": true, "other": true}},
	} {
		p, err := authz.Parse([]byte(c.policy), "test")
		if err != nil {
			t.Fatal(err)
		}
		e, err := authz.Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		for ns, want := range c.allow {
			s := session(ns)
			in := &authz.Input{User: &authz.User{ID: s.Subject, Email: s.Email, Groups: s.Groups, Claim: s.Claim}, Now: now}
			if got := e.Evaluate(in).Allow; got != want {
				t.Errorf("%q for namespace %s: allowed %v, want %v", c.policy, ns, got, want)
			}
		}
	}
}
