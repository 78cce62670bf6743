package module

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-iap/caddy-iap/authn"
)

// cluster provisions n iap apps over one file_system storage directory,
// each with its own Caddy context and FileStorage as separate processes
// would have, and runs their revocation refresh loops until the test ends.
func cluster(t *testing.T, dir string, n int, refresh time.Duration) []*App {
	t.Helper()
	secret := base64.StdEncoding.EncodeToString(make([]byte, 32))
	var apps []*App
	for range n {
		ctx := storageContext(t, dir)
		a := idpApp(secret)
		a.RevocationRefresh = caddy.Duration(refresh)
		if err := a.Provision(ctx); err != nil {
			t.Fatal(err)
		}
		a.startRevocations()
		t.Cleanup(a.stopRevocations)
		apps = append(apps, a)
	}
	return apps
}

// admin calls the admin API as it would be served on Caddy's admin
// listener, on the instance whose app is live.
func admin(t *testing.T, live *App, method, path, body string) (int, string) {
	t.Helper()
	liveApp.Store(live)
	var h caddy.AdminHandler
	for _, r := range (AdminAPI{}).Routes() {
		if r.Pattern == path {
			h = r.Handler
		}
	}
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, httptest.NewRequest(method, "http://localhost:2019"+path, strings.NewReader(body)))
	if apiErr, ok := err.(caddy.APIError); ok {
		return apiErr.HTTPStatus, apiErr.Err.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	return w.Code, w.Body.String()
}

// listed waits until app lists a revocation of kind and id, and returns
// how long that took; it fails after a deadline far above the bound.
func listed(t *testing.T, app *App, kind, id string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		list, _ := app.auth.Revocations().List()
		for _, v := range list {
			if v.Kind == kind && v.ID == id {
				return time.Since(start)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the revocation %s %s did not reach the other instance in 30 s", kind, id)
	return 0
}

// A revocation made through the admin API of one instance reaches another
// sharing the storage by its refresh loop; the test reports how long that
// took (the bound is revocation_refresh plus one read).
func TestAdminRevocationsReachEveryInstance(t *testing.T) {
	apps := cluster(t, t.TempDir(), 2, 200*time.Millisecond)
	for _, c := range []struct{ path, body, kind, id string }{
		{"/iap/sessions/revoke", `{"sid": "s-123"}`, authn.RevokeBySession, "s-123"},
		{"/iap/users/revoke", `{"sub": "CgVhbGljZRIFbG9jYWw"}`, authn.RevokeBySubject, "CgVhbGljZRIFbG9jYWw"},
		{"/iap/users/revoke", `{"email": "Bob@Example.com"}`, authn.RevokeByEmail, "bob@example.com"},
	} {
		if code, body := admin(t, apps[0], "POST", c.path, c.body); code != 200 || !strings.Contains(body, `"stored":true`) {
			t.Fatalf("POST %s %s: %d %s", c.path, c.body, code, body)
		}
		t.Logf("%s %s reached the other instance in %s (revocation_refresh 200ms)", c.kind, c.id, listed(t, apps[1], c.kind, c.id))
	}
	code, body := admin(t, apps[1], "GET", "/iap/revocations", "")
	var got struct {
		Revocations []authn.Revocation
		Pending     int
	}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || len(got.Revocations) != 3 || got.Pending != 0 {
		t.Errorf("GET /iap/revocations: %d %s", code, body)
	}
}

func TestAdminAPIRefusesWhatItCannotDo(t *testing.T) {
	apps := cluster(t, t.TempDir(), 1, time.Second)
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/iap/sessions/revoke", "", 405},
		{"POST", "/iap/revocations", "", 405},
		{"POST", "/iap/sessions/revoke", `{}`, 400},
		{"POST", "/iap/sessions/revoke", `{"sid": "s", "sub": "u"}`, 400},
		{"POST", "/iap/users/revoke", `{"sub": "u", "email": "e@example.com"}`, 400},
		{"POST", "/iap/users/revoke", `{"user": "u"}`, 400},
		{"POST", "/iap/users/revoke", `not json`, 400},
		// A future "before" would lock the user out until then.
		{"POST", "/iap/users/revoke", `{"sub": "u", "before": "` + time.Now().Add(24*time.Hour).Format(time.RFC3339) + `"}`, 400},
		{"POST", "/iap/users/revoke", `{"sub": "u", "before": "` + time.Now().Add(-time.Hour).Format(time.RFC3339) + `"}`, 200},
	} {
		if code, body := admin(t, apps[0], c.method, c.path, c.body); code != c.status {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, code, body, c.status)
		}
	}
	liveApp.Store(nil)
	if code, _ := admin(t, nil, "GET", "/iap/revocations", ""); code != http.StatusNotFound {
		t.Errorf("without an iap app: %d, want 404", code)
	}
}

// While the storage cannot be used (here the directory is replaced by a
// file), instances keep the list they read, a revocation applies where it
// was made (202) and is written when the storage is back; then the other
// instance gets it.
func TestRevocationsOutliveAStorageOutage(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "storage")
	apps := cluster(t, dir, 2, 100*time.Millisecond)
	if code, body := admin(t, apps[0], "POST", "/iap/sessions/revoke", `{"sid": "before"}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	listed(t, apps[1], authn.RevokeBySession, "before")

	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := admin(t, apps[0], "POST", "/iap/sessions/revoke", `{"sid": "during"}`)
	if code != http.StatusAccepted || !strings.Contains(body, `"stored":false`) {
		t.Fatalf("revoking during the outage: %d %s, want 202 stored false", code, body)
	}
	time.Sleep(300 * time.Millisecond) // a few failed refreshes
	if list, _ := apps[1].auth.Revocations().List(); len(list) != 1 || list[0].ID != "before" {
		t.Errorf("during the outage the other instance lists %+v, want the list it had", list)
	}

	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("the revocation made during the outage reached the other instance %s after the storage came back",
		listed(t, apps[1], authn.RevokeBySession, "during"))
}

// session_store storage gives every IdP's Authenticator the storage;
// another value, or no storage, is a config error naming the option.
func TestSessionStoreOption(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(make([]byte, 32))
	a := idpApp(secret)
	a.SessionStore = "redis"
	if err := a.Provision(storageContext(t, t.TempDir())); err == nil || !strings.Contains(err.Error(), "session_store") {
		t.Errorf("session_store redis: %v", err)
	}
	a = idpApp(secret)
	a.SessionStore = "storage"
	if err := a.Provision(storageContext(t, t.TempDir())); err != nil {
		t.Fatal(err)
	}
	if n, err := a.auth.SweepSessions(t.Context()); err != nil || n != 0 {
		t.Errorf("sweeping an empty store: %d %v", n, err)
	}
}
