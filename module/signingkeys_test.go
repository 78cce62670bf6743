package module

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/caddy-iap/caddy-iap/authn"
)

func init() {
	caddy.RegisterModule(latencyStorage{})
}

// latencyStorage is Caddy's file_system storage with a network storage's
// latency (Redis, Consul, a database) on every read and write. Its lock is
// file_system's own, a lock file, as between processes.
type latencyStorage struct {
	Root    string         `json:"root"`
	Latency caddy.Duration `json:"latency"`
}

func (latencyStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.storage.iap_test_latency", New: func() caddy.Module { return new(latencyStorage) }}
}

func (s latencyStorage) CertMagicStorage() (certmagic.Storage, error) {
	return &slowFiles{FileStorage: &certmagic.FileStorage{Path: s.Root}, latency: time.Duration(s.Latency)}, nil
}

type slowFiles struct {
	*certmagic.FileStorage
	latency time.Duration
}

func (s *slowFiles) Load(ctx context.Context, key string) ([]byte, error) {
	time.Sleep(s.latency)
	return s.FileStorage.Load(ctx, key)
}

func (s *slowFiles) Store(ctx context.Context, key string, value []byte) error {
	time.Sleep(s.latency)
	return s.FileStorage.Store(ctx, key, value)
}

// storageContext is a caddy.Context whose storage is loaded as Caddy loads
// the config's `storage`: latencyStorage over dir. Each call makes its own
// certmagic.FileStorage, as each Caddy process would.
func storageContext(t *testing.T, dir string) caddy.Context {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"module": "iap_test_latency", "root": dir, "latency": "2ms"})
	ctx, err := caddy.ProvisionContext(&caddy.Config{StorageRaw: raw})
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// idpApp is an iap app with an IdP (never reached here) and no signing key
// configured, so that it uses the one in storage.
func idpApp(secret string) *App {
	return &App{IDP: &IDP{ProviderURL: "https://idp.example.com", ClientID: "caddy"}, CookieSecret: secret}
}

// publishedKIDs are the key IDs the app's JWKS lists.
func publishedKIDs(t *testing.T, a *App) []string {
	t.Helper()
	w := httptest.NewRecorder()
	a.auth.ServeEndpoint(w, httptest.NewRequest("GET", "https://app.test/.well-known/iap/jwks.json", nil))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

// Replicas started together on one shared storage must sign with one key
// (issue 19: 1 start in 4 served different JWKS). Each of 20 tries
// provisions four apps at the same instant, each with its own Caddy
// context and its own FileStorage over the try's directory, so that only
// the storage's lock (a lock file, as between processes) can make them
// agree; the storage answers with a network's latency, as a shared one
// does. The tries run at once: the file lock is polled every second.
func TestInstancesStartedTogetherAgreeOnTheGeneratedKey(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(make([]byte, 32))
	const tries, instances = 20, 4
	type instance struct {
		ctx caddy.Context
		app *App
		err error
	}
	all := make([][]instance, tries)
	for try := range all {
		dir := t.TempDir()
		for range instances {
			// One at a time: ProvisionContext sets globals.
			all[try] = append(all[try], instance{ctx: storageContext(t, dir), app: idpApp(secret)})
		}
	}
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for try := range all {
		for i := range all[try] {
			ready.Add(1)
			done.Add(1)
			go func() {
				defer done.Done()
				in := &all[try][i]
				ready.Done()
				<-start
				in.err = in.app.Provision(in.ctx)
			}()
		}
	}
	ready.Wait()
	close(start)
	done.Wait()
	for try, group := range all {
		kids := map[string]int{}
		for i, in := range group {
			if in.err != nil {
				t.Fatalf("try %d, instance %d: %v", try+1, i+1, in.err)
			}
			kids[in.app.auth.SigningKeyID()]++
			if got := publishedKIDs(t, in.app); len(got) != 1 || got[0] != in.app.auth.SigningKeyID() {
				t.Errorf("try %d, instance %d publishes %v and signs with %s", try+1, i+1, got, in.app.auth.SigningKeyID())
			}
		}
		if len(kids) != 1 {
			t.Errorf("try %d: the %d instances sign with %d different keys: %v", try+1, instances, len(kids), kids)
		}
	}
}

func TestMaintainRing(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key := func(from time.Time) authn.SigningKey {
		k, err := newSigningKey(from)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	retiredFor := authn.AssertionLifetime + retiredKeyMargin
	for _, tc := range []struct {
		name    string
		ring    []authn.SigningKey
		rotate  time.Duration
		changed bool
		// want is each key's SignsFrom, relative to now (zero: always).
		want []time.Duration
	}{
		{"no ring and no rotation gives one key that always signs", nil, 0, true, []time.Duration{0}},
		{"no ring with rotation gives the key and the next, one interval ahead", nil, time.Hour, true, []time.Duration{0, time.Hour}},
		{"one key and no rotation is left alone", []authn.SigningKey{key(time.Time{})}, 0, false, []time.Duration{0}},
		{"a next key is added once the last one signs", []authn.SigningKey{key(time.Time{}), key(now.Add(-time.Second))}, time.Hour, true, []time.Duration{0, -time.Second, time.Hour}},
		{"a scheduled next key is enough", []authn.SigningKey{key(time.Time{}), key(now.Add(time.Minute))}, time.Hour, false, []time.Duration{0, time.Minute}},
		{"a retired key stays while its assertions may live", []authn.SigningKey{key(now.Add(-2 * time.Hour)), key(now.Add(-retiredFor + time.Second)), key(now.Add(time.Hour))}, time.Hour, false, []time.Duration{-2 * time.Hour, -retiredFor + time.Second, time.Hour}},
		{"then it goes", []authn.SigningKey{key(now.Add(-2 * time.Hour)), key(now.Add(-retiredFor)), key(now.Add(time.Hour))}, time.Hour, true, []time.Duration{-retiredFor, time.Hour}},
		{"rotation turned off keeps the scheduled key and drops retired ones", []authn.SigningKey{key(now.Add(-2 * time.Hour)), key(now.Add(-time.Hour)), key(now.Add(time.Hour))}, 0, true, []time.Duration{-time.Hour, time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := maintainRing(tc.ring, tc.rotate, now)
			if err != nil {
				t.Fatal(err)
			}
			var got []time.Duration
			for _, k := range out {
				if k.SignsFrom.IsZero() {
					got = append(got, 0)
				} else {
					got = append(got, k.SignsFrom.Sub(now))
				}
			}
			if changed != tc.changed || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v (changed %v), want %v (changed %v)", got, changed, tc.want, tc.changed)
			}
			// What is stored reads back the same.
			b, err := encodeRing(out)
			if err != nil {
				t.Fatal(err)
			}
			back, err := parseSigningKeys(b, true)
			if err != nil || !sameRing(back, out) {
				t.Errorf("read back %v, %v", back, err)
			}
		})
	}
}

// writeKeys writes PEM blocks to a file: "pkcs8" and "sec1" keys, and
// "params" for the EC PARAMETERS block `openssl ecparam -genkey` writes
// first.
func writeKeys(t *testing.T, kinds ...string) (string, []string) {
	t.Helper()
	var buf bytes.Buffer
	var kids []string
	for _, kind := range kinds {
		if kind == "params" {
			buf.WriteString("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
			continue
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		block := &pem.Block{Type: "EC PRIVATE KEY"}
		if kind == "pkcs8" {
			block.Type = "PRIVATE KEY"
			block.Bytes, _ = x509.MarshalPKCS8PrivateKey(k)
		} else {
			block.Bytes, _ = x509.MarshalECPrivateKey(k)
		}
		_ = pem.Encode(&buf, block)
		kid, _ := authn.KeyID(k.Public())
		kids = append(kids, kid)
	}
	p := filepath.Join(t.TempDir(), "signing.pem")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, kids
}

func TestConfiguredSigningKeys(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(make([]byte, 32))
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	t.Run("of several keys in signing_key_file the first signs and all are published", func(t *testing.T) {
		file, kids := writeKeys(t, "params", "sec1", "pkcs8")
		a := idpApp(secret)
		a.SigningKeyFile = file
		if err := a.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		if got := publishedKIDs(t, a); fmt.Sprint(got) != fmt.Sprint(kids) || a.auth.SigningKeyID() != kids[0] {
			t.Errorf("publishes %v, signs with %s; want %v, the first", got, a.auth.SigningKeyID(), kids)
		}
	})

	t.Run("signing_key holds the same, base64-encoded, as Pomerium's does", func(t *testing.T) {
		file, kids := writeKeys(t, "pkcs8", "pkcs8")
		b, _ := os.ReadFile(file)
		a := idpApp(secret)
		a.SigningKey = base64.StdEncoding.EncodeToString(b)
		if err := a.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		if got := publishedKIDs(t, a); fmt.Sprint(got) != fmt.Sprint(kids) || a.auth.SigningKeyID() != kids[0] {
			t.Errorf("publishes %v, signs with %s", got, a.auth.SigningKeyID())
		}
	})

	for _, tc := range []struct {
		name, want string
		edit       func(*App)
	}{
		{"signing_key_rotate with a configured key is refused", "signing_key_rotate rotates the generated key", func(a *App) {
			a.SigningKeyFile, _ = writeKeys(t, "pkcs8")
			a.SigningKeyRotate = caddy.Duration(time.Hour)
		}},
		{"a file without a key names the file", "no PEM private key", func(a *App) {
			p := filepath.Join(t.TempDir(), "empty.pem")
			_ = os.WriteFile(p, []byte("not a key"), 0o600)
			a.SigningKeyFile = p
		}},
		{"a bad previous cookie secret is named with its place", "cookie_secret_previous 2", func(a *App) {
			a.CookieSecretPrevious = []string{secret, "c2hvcnQ="}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := idpApp(secret)
			tc.edit(a)
			if err := a.Provision(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// Two instances on one storage with signing_key_rotate switch keys
// together, and each key is in both JWKS before either signs with it.
func TestGeneratedKeyRotatesOnEveryInstanceTogether(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(make([]byte, 32))
	dir := t.TempDir()
	var apps [2]*App
	for i := range apps {
		apps[i] = idpApp(secret)
		apps[i].SigningKeyRotate = caddy.Duration(2 * time.Second)
		if err := apps[i].Provision(storageContext(t, dir)); err != nil {
			t.Fatal(err)
		}
		if err := apps[i].Start(); err != nil {
			t.Fatal(err)
		}
		defer apps[i].Stop()
	}
	published := map[string]bool{}
	var signed [2][]string
	deadline := time.Now().Add(7 * time.Second)
	for time.Now().Before(deadline) {
		for i, a := range apps {
			kid := a.auth.SigningKeyID()
			if n := len(signed[i]); n == 0 || signed[i][n-1] != kid {
				if !published[kid] && n > 0 {
					t.Errorf("instance %d signs with %s, which no JWKS listed before", i+1, kid)
				}
				signed[i] = append(signed[i], kid)
			}
			for _, k := range publishedKIDs(t, a) {
				published[k] = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	// On a loaded machine an instance's check may come late and skip a key
	// the other signed with for a moment; what must hold is that every key
	// was published before it signed (above), that keys rotate, and that
	// the instances agree on the current key once their checks have run.
	if len(signed[0]) < 2 || len(signed[1]) < 2 {
		t.Errorf("no rotation in 7 s with signing_key_rotate 2s: %v %v", signed[0], signed[1])
	}
	agreed := false
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if apps[0].auth.SigningKeyID() == apps[1].auth.SigningKeyID() {
			agreed = true
			break
		}
	}
	if !agreed {
		t.Errorf("the instances never agreed on the signing key: %s and %s", apps[0].auth.SigningKeyID(), apps[1].auth.SigningKeyID())
	}
	for i, a := range apps {
		if got := publishedKIDs(t, a); !slices.Contains(got, signed[0][0]) {
			t.Errorf("instance %d no longer publishes the first key, whose assertions live 5 minutes: %v", i+1, got)
		}
	}
}
