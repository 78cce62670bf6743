package e2e

// WebSockets through iap_route, end to end: a real WebSocket client
// (github.com/coder/websocket) dials real Caddy, which signs users in
// against real Dex and proxies to a real WebSocket echo server made with
// the same library.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// wsEcho is a WebSocket upstream: it keeps the handshake request of each
// connection (by X-Test-Id), greets the client with whether it got the
// identity assertion, then echoes every message. A request without an
// Upgrade header gets a plain 200, so that a browser's sign-in lands
// somewhere.
type wsEcho struct {
	URL   string
	mu    sync.Mutex
	seen  map[string]http.Header // every request, by X-Test-Id
	hosts map[string]string      // its Host
	ups   map[string]bool        // the requests that became WebSockets
}

func newWSEcho(t *testing.T) *wsEcho {
	t.Helper()
	e := &wsEcho{seen: map[string]http.Header{}, hosts: map[string]string{}, ups: map[string]bool{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Test-Id")
		e.mu.Lock()
		e.seen[id] = r.Header.Clone()
		e.hosts[id] = r.Host
		e.mu.Unlock()
		if r.Header.Get("Upgrade") == "" {
			_, _ = io.WriteString(w, "plain page")
			return
		}
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered the client
		}
		e.mu.Lock()
		e.ups[id] = true
		e.mu.Unlock()
		defer conn.CloseNow()
		conn.SetReadLimit(1 << 20)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		greeting := "hello, no assertion"
		if r.Header.Get("X-Iap-Jwt-Assertion") != "" {
			greeting = "hello, asserted"
		}
		if err := conn.Write(ctx, websocket.MessageText, []byte(greeting)); err != nil {
			return
		}
		for {
			typ, msg, err := conn.Read(ctx)
			if err != nil {
				return
			}
			if err := conn.Write(ctx, typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	e.URL = "http://" + l.Addr().String()
	return e
}

// got returns the headers of the request with this X-Test-Id, and whether
// it became a WebSocket.
func (e *wsEcho) got(id string) (http.Header, bool, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h, ok := e.seen[id]
	return h, ok, e.ups[id]
}

func TestWebSockets(t *testing.T) {
	echo := newWSEcho(t)
	httpPort, httpsPort := testenv.FreePort(t), testenv.FreePort(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob},
		RedirectURIs: redirectURIs(httpsPort, "ws.test", "nows.test")})
	onlyAlice := policyLines([]string{"allow", "or", "email is " + alice.Email})
	sites := routeSite("ws.test", echo.URL, onlyAlice) +
		routeSite("nows.test", echo.URL, onlyAlice, "\t\tallow_websockets false") +
		routeSite("pubws.test", echo.URL, "\t\tallow_public_unauthenticated_access") +
		routeSite("preservews.test", echo.URL, "\t\tallow_public_unauthenticated_access", "\t\tpreserve_host_header")
	caddy := testenv.StartCaddyOn(t, httpPort, httpsPort, iapGlobals(dex, randomSecret(t), ""), sites)
	caddy.WaitCertificates(t, "ws.test", "nows.test", "pubws.test", "preservews.test")
	client := caddy.Client(t)
	wsURL := func(host, path string) string { return fmt.Sprintf("wss://%s:%d%s", host, httpsPort, path) }

	// dial opens a WebSocket through Caddy with the given headers and a
	// fresh X-Test-Id, which it returns.
	dial := func(t *testing.T, host string, header http.Header) (*websocket.Conn, *http.Response, string, error) {
		t.Helper()
		id := testID()
		h := header.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("X-Test-Id", id)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, resp, err := websocket.Dial(ctx, wsURL(host, "/socket"), &websocket.DialOptions{HTTPClient: client, HTTPHeader: h})
		if conn != nil {
			t.Cleanup(func() { conn.CloseNow() })
		}
		return conn, resp, id, err
	}

	// talk checks that messages go both ways: the upstream's greeting
	// reaches the client, and what the client sends comes back.
	talk := func(t *testing.T, conn *websocket.Conn, wantGreeting string) {
		t.Helper()
		conn.SetReadLimit(1 << 20)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		typ, msg, err := conn.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(msg) != wantGreeting {
			t.Fatalf("the upstream's greeting: %v %q %v, want %q", typ, msg, err, wantGreeting)
		}
		big := strings.Repeat("0123456789abcdef", 1<<12) // 64 KiB, many frames' worth
		for _, m := range []struct {
			typ  websocket.MessageType
			data string
		}{{websocket.MessageText, "ping 1"}, {websocket.MessageBinary, "\x00\x01\x02\xff"}, {websocket.MessageText, big}, {websocket.MessageText, "ping 2"}} {
			if err := conn.Write(ctx, m.typ, []byte(m.data)); err != nil {
				t.Fatalf("writing %d bytes: %v", len(m.data), err)
			}
			typ, msg, err := conn.Read(ctx)
			if err != nil || typ != m.typ || string(msg) != "echo: "+m.data {
				t.Fatalf("the echo of %d bytes: type %v, %d bytes, %v", len(m.data), typ, len(msg), err)
			}
		}
		if err := conn.Close(websocket.StatusNormalClosure, "done"); err != nil {
			t.Errorf("closing: %v", err)
		}
	}

	// refused checks a handshake that must not upgrade: the status, the
	// JSON reason, and that the upstream never saw it.
	refused := func(t *testing.T, conn *websocket.Conn, resp *http.Response, id string, err error, status int, reason string) {
		t.Helper()
		if err == nil || conn != nil {
			t.Fatalf("the handshake succeeded, want %d %s", status, reason)
		}
		if resp == nil {
			t.Fatalf("no HTTP response (%v), want %d %s", err, status, reason)
		}
		body, _ := io.ReadAll(resp.Body)
		wantRefusal(t, "the handshake", rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, status, reason)
		if _, seen, _ := echo.got(id); seen {
			t.Errorf("the refused handshake reached the upstream")
		}
	}

	aliceUA := caddy.NewUserAgent(t)
	if resp, body := aliceUA.SignIn(t, aliceUA.URL("ws.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 || body != "plain page" {
		t.Fatalf("alice's sign-in: %d %s", resp.StatusCode, oneLine(body))
	}
	aliceCookie := sessionCookies(t, aliceUA, "ws.test")

	t.Run("a signed-in user allowed by the policy: the echo works both ways", func(t *testing.T) {
		idToken, _ := dexTokens(t, dex, alice)
		for _, c := range []struct {
			name   string
			header http.Header
		}{
			{"session cookie", http.Header{"Cookie": {aliceCookie + "; theme=dark"}}},
			{"bearer ID token", http.Header{"Authorization": {"Bearer " + idToken}, "Cookie": {"theme=dark"}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				conn, resp, id, err := dial(t, "ws.test", c.header)
				if err != nil {
					status, body := 0, ""
					if resp != nil {
						b, _ := io.ReadAll(resp.Body)
						status, body = resp.StatusCode, string(b)
					}
					t.Fatalf("dial: %v (%d %s)", err, status, oneLine(body))
				}
				talk(t, conn, "hello, asserted")
				h, _, upgraded := echo.got(id)
				if !upgraded {
					t.Fatal("the upstream did not accept a WebSocket")
				}
				if h.Get("X-Iap-Jwt-Assertion") == "" {
					t.Errorf("the upstream's handshake lacks X-Iap-Jwt-Assertion: %v", h)
				}
				if got := strings.Join(h.Values("Cookie"), "; "); got != "theme=dark" {
					t.Errorf("the upstream's handshake got Cookie %q, want only theme=dark (no session cookie)", got)
				}
				if a := h.Values("Authorization"); len(a) > 0 {
					t.Errorf("the upstream's handshake got Authorization %q", a)
				}
			})
		}
	})

	t.Run("an anonymous client on a route that needs a user gets 401", func(t *testing.T) {
		conn, resp, id, err := dial(t, "ws.test", nil)
		refused(t, conn, resp, id, err, 401, "user-unauthenticated")
	})

	t.Run("a signed-in user the policy does not allow gets 403", func(t *testing.T) {
		bobUA := caddy.NewUserAgent(t)
		if resp, body := bobUA.SignIn(t, bobUA.URL("ws.test", "/"), bob.Email, bob.Password); resp.StatusCode != 403 {
			t.Fatalf("bob's sign-in: %d %s, want 403 (else this proves nothing)", resp.StatusCode, oneLine(body))
		}
		conn, resp, id, err := dial(t, "ws.test", http.Header{"Cookie": {sessionCookies(t, bobUA, "ws.test")}})
		refused(t, conn, resp, id, err, 403, "not-allowed")
		bobToken, _ := dexTokens(t, dex, bob)
		conn, resp, id, err = dial(t, "ws.test", http.Header{"Authorization": {"Bearer " + bobToken}})
		refused(t, conn, resp, id, err, 403, "not-allowed")
	})

	t.Run("allow_websockets false refuses the upgrade with 400 even for an allowed user", func(t *testing.T) {
		nowsUA := caddy.NewUserAgent(t)
		if resp, body := nowsUA.SignIn(t, nowsUA.URL("nows.test", "/"), alice.Email, alice.Password); resp.StatusCode != 200 || body != "plain page" {
			t.Fatalf("alice's plain request on the route (control): %d %s", resp.StatusCode, oneLine(body))
		}
		conn, resp, id, err := dial(t, "nows.test", http.Header{"Cookie": {sessionCookies(t, nowsUA, "nows.test")}})
		refused(t, conn, resp, id, err, 400, "upgrade-refused")
		idToken, _ := dexTokens(t, dex, alice)
		conn, resp, id, err = dial(t, "nows.test", http.Header{"Authorization": {"Bearer " + idToken}})
		refused(t, conn, resp, id, err, 400, "upgrade-refused")
	})

	t.Run("a public route lets an anonymous client upgrade", func(t *testing.T) {
		conn, resp, id, err := dial(t, "pubws.test", nil)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("dial: %v (%d)", err, status)
		}
		talk(t, conn, "hello, no assertion")
		if _, _, upgraded := echo.got(id); !upgraded {
			t.Error("the upstream did not accept a WebSocket")
		}
	})

	t.Run("preserve_host_header: the upstream's handshake carries the route's host", func(t *testing.T) {
		conn, _, id, err := dial(t, "preservews.test", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		talk(t, conn, "hello, no assertion")
		echo.mu.Lock()
		host := echo.hosts[id]
		echo.mu.Unlock()
		if want := fmt.Sprintf("preservews.test:%d", httpsPort); host != want {
			t.Errorf("the upstream's handshake had Host %q, want %q", host, want)
		}
	})

	t.Run("Upgrade h2c is refused with 400 and never reaches the upstream", func(t *testing.T) {
		rc := newRawClient(t, caddy)
		idToken, _ := dexTokens(t, dex, alice)
		for _, c := range []struct{ host, auth string }{
			{"pubws.test", ""},
			{"ws.test", "Authorization: Bearer " + idToken + "\r\n"},
		} {
			t.Run(c.host, func(t *testing.T) {
				id := testID()
				r := rc.raw(t, c.host, fmt.Sprintf("GET /socket HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\nX-Test-Id: %s\r\n%s"+
					"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n", c.host, httpsPort, id, c.auth))
				wantRefusal(t, "Upgrade: h2c", r, 400, "upgrade-refused")
				if _, seen, _ := echo.got(id); seen {
					t.Error("the h2c upgrade reached the upstream")
				}
			})
		}
	})

}
