package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testOP is a minimal OpenID provider for tests that need to mint tokens
// Dex would not (unknown key IDs, other token types): discovery and a JWKS
// at /keys, whose fetches it counts.
type testOP struct {
	*httptest.Server
	keyFetches atomic.Int64

	mu   sync.Mutex
	keys map[string]*ecdsa.PrivateKey // by key ID, all published
	// gate, when set, holds discovery requests until it is closed.
	gate chan struct{}
}

func startTestOP(t testing.TB) *testOP {
	op := &testOP{keys: map[string]*ecdsa.PrivateKey{}}
	op.addKey("k1")
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		gate := op.gate
		op.mu.Unlock()
		if gate != nil {
			<-gate
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": op.URL, "authorization_endpoint": op.URL + "/auth", "token_endpoint": op.URL + "/token",
			"jwks_uri": op.URL + "/keys", "id_token_signing_alg_values_supported": []string{"ES256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		op.keyFetches.Add(1)
		op.mu.Lock()
		var set jose.JSONWebKeySet
		for kid, k := range op.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"})
		}
		op.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	op.Server = httptest.NewServer(mux)
	t.Cleanup(op.Close)
	return op
}

// addKey publishes a new signing key (a rotation).
func (op *testOP) addKey(kid string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	op.mu.Lock()
	op.keys[kid] = k
	op.mu.Unlock()
}

// token mints a JWT for client "caddy", signed with the published key kid,
// or, for a kid never published, with a fresh key; typ is the header's
// typ (none when empty), extra are more claims.
func (op *testOP) token(t testing.TB, kid, typ string, now time.Time, extra map[string]any) string {
	t.Helper()
	op.mu.Lock()
	k := op.keys[kid]
	op.mu.Unlock()
	if k == nil {
		k, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"email": "alice@example.com"}
	for k, v := range extra {
		claims[k] = v
	}
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: op.URL, Audience: jwt.Audience{"caddy"}, Subject: "alice",
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
	}).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// startAuthenticatorAt starts an Authenticator on op with a clock the test
// moves.
func startAuthenticatorAt(t *testing.T, op *testOP, clock *fakeClock, edit func(*Config)) *Authenticator {
	t.Helper()
	a := newTestAuthenticator(t, op.URL)
	a.cfg.Now = clock.Now
	if edit != nil {
		edit(&a.cfg)
	}
	a.idp = newIdP(&a.cfg)
	a.Start()
	t.Cleanup(a.Stop)
	waitDiscovered(t, a)
	return a
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest("GET", "https://app.test/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	r.Header.Set("Accept", "application/json")
	return r
}
