package e2e

// SPDY/3.1 upgrades (what kubectl exec, attach and port-forward send)
// through real Caddy to a real upstream that switches protocols and echoes
// over the hijacked connection: proxied on a route that allows SPDY
// (allow_spdy, Pomerium's allow_spdy or allow_upgrades naming spdy/3.1, or a
// Kubernetes route), refused with 400 upgrade-refused everywhere else, and
// never before the route's policy allowed the request.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-iap/caddy-iap/internal/testenv"
)

// spdyEcho is an upstream that answers "Upgrade: SPDY/3.1" with 101
// Switching Protocols, then echoes every byte back over the hijacked
// connection, as the Kubernetes API server's streams do (without SPDY's
// framing, which the proxy never reads). It records each request by
// X-Test-Id, and whether it carried the identity assertion.
type spdyEcho struct {
	URL      string
	mu       sync.Mutex
	seen     map[string]http.Header
	upgraded map[string]bool
}

func newSPDYEcho(t *testing.T) *spdyEcho {
	t.Helper()
	e := &spdyEcho{seen: map[string]http.Header{}, upgraded: map[string]bool{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Test-Id")
		e.mu.Lock()
		e.seen[id] = r.Header.Clone()
		e.mu.Unlock()
		if !strings.EqualFold(r.Header.Get("Upgrade"), "SPDY/3.1") {
			_, _ = io.WriteString(w, "plain page")
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		e.mu.Lock()
		e.upgraded[id] = true
		e.mu.Unlock()
		_, _ = io.WriteString(rw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"+
			"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw) // echo until the client closes
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

func (e *spdyEcho) got(id string) (h http.Header, seen, upgraded bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	h, seen = e.seen[id]
	return h, seen, e.upgraded[id]
}

// spdyResult is what a SPDY upgrade through Caddy got: the response, and
// for a 101, what came back of the bytes sent over the connection.
type spdyResult struct {
	status int
	body   string
	echo   string
	id     string
}

// spdyUpgrade sends a kubectl-like SPDY upgrade to host over HTTP/1.1,
// with header added, and on 101 sends a message over the upgraded
// connection and reads its echo.
func spdyUpgrade(t *testing.T, caddy *testenv.Caddy, host string, header http.Header, options ...func(*tls.Config)) spdyResult {
	t.Helper()
	cfg := caddy.TLSConfig(t, options...)
	cfg.ServerName = host
	cfg.NextProtos = []string{"http/1.1"}
	var conn *tls.Conn
	var err error
	for i := 0; i < 100; i++ {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", caddy.HTTPSPort), cfg)
		if err == nil || !strings.Contains(err.Error(), "tls: internal error") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("TLS to %s: %v", host, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // a hang fails, it does not block the suite
	res := spdyResult{id: testID()}
	req := fmt.Sprintf("POST /api/v1/namespaces/default/pods/web/exec?command=sh&stdin=true HTTP/1.1\r\nHost: %s:%d\r\n"+
		"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"+
		"Accept: application/json\r\nContent-Length: 0\r\nX-Test-Id: %s\r\n", host, caddy.HTTPSPort, res.id)
	for k, vs := range header {
		for _, v := range vs {
			req += k + ": " + v + "\r\n"
		}
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	res.status = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		res.body = string(b)
		return res
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "SPDY/3.1") {
		t.Errorf("101 with Upgrade %q", resp.Header.Get("Upgrade"))
	}
	msg := "\x80\x03\x00\x01 stream frame, binary \x00\xff\n"
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatalf("writing over the upgraded connection: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(br, buf); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	res.echo = string(buf)
	if res.echo != msg {
		t.Errorf("echo %q, want %q", res.echo, msg)
	}
	return res
}

// iap_route's allow_spdy, in the Caddyfile: a SPDY upgrade is proxied on
// the route that allows it, once its policy let the user in, and refused
// (400 upgrade-refused, never reaching the upstream) on a route that does
// not, for an anonymous user, and when SPDY is asked for with another
// protocol.
func TestSPDYUpgradesOnlyWhereAllowed(t *testing.T) {
	echo := newSPDYEcho(t)
	dex := testenv.StartDex(t, testenv.DexOptions{Users: []testenv.DexUser{alice, bob}})
	onlyAlice := policyLines([]string{"allow", "or", "email is " + alice.Email})
	sites := routeSite("spdy.test", echo.URL, onlyAlice, "\t\tallow_spdy") +
		routeSite("nospdy.test", echo.URL, onlyAlice) +
		routeSite("pubspdy.test", echo.URL, "\t\tallow_public_unauthenticated_access", "\t\tallow_spdy", "\t\tallow_websockets false")
	caddy := testenv.StartCaddy(t, iapGlobals(dex, randomSecret(t), ""), sites)
	caddy.WaitCertificates(t, "spdy.test", "nospdy.test", "pubspdy.test")
	aliceToken, _ := dexTokens(t, dex, alice)
	bobToken, _ := dexTokens(t, dex, bob)
	asAlice := http.Header{"Authorization": {"Bearer " + aliceToken}}

	for _, c := range []struct {
		what   string
		host   string
		header http.Header
		status int
		reason string
	}{
		{"alice on the route with allow_spdy", "spdy.test", asAlice, 101, ""},
		{"anyone on a public route with allow_spdy (WebSockets off)", "pubspdy.test", nil, 101, ""},
		{"alice on a route without allow_spdy", "nospdy.test", asAlice, 400, "upgrade-refused"},
		{"bob, whom the policy refuses", "spdy.test", http.Header{"Authorization": {"Bearer " + bobToken}}, 403, "not-allowed"},
		{"no user", "spdy.test", nil, 401, "user-unauthenticated"},
	} {
		t.Run(c.what, func(t *testing.T) {
			r := spdyUpgrade(t, caddy, c.host, c.header)
			_, seen, upgraded := echo.got(r.id)
			if c.status == 101 {
				if r.status != 101 || !upgraded {
					t.Fatalf("got %d %s, upstream upgraded: %v", r.status, oneLine(r.body), upgraded)
				}
				return
			}
			wantRefusal(t, c.what, rawResponse{Status: r.status, Body: r.body}, c.status, c.reason)
			if seen {
				t.Errorf("the refused upgrade reached the upstream")
			}
		})
	}

	// Smuggling: SPDY named with another protocol, or an Upgrade other
	// than WebSocket on the route that allows SPDY.
	for _, up := range []string{"SPDY/3.1, h2c", "h2c", "spdy/3", "SPDY/3.1x"} {
		r := newRawClient(t, caddy).raw(t, "spdy.test", fmt.Sprintf("GET / HTTP/1.1\r\nHost: spdy.test:%d\r\nConnection: Upgrade\r\nUpgrade: %s\r\n"+
			"Authorization: Bearer %s\r\nAccept: application/json\r\n\r\n", caddy.HTTPSPort, up, aliceToken))
		wantRefusal(t, "Upgrade: "+up, r, 400, "upgrade-refused")
	}
}

// Pomerium's allow_spdy and allow_upgrades [spdy/3.1] (per route or
// global), and a Kubernetes route (Pomerium's IsForKubernetes), from a
// config.yaml: each proxies SPDY; a route with none of them refuses it.
func TestPomeriumAllowSPDY(t *testing.T) {
	echo := newSPDYEcho(t)
	httpsPort := testenv.FreePort(t)
	token := writeFile(t, "token", "sa-token")
	config := fmt.Sprintf(`address: :%d
http_redirect_addr: :%d
routes:
  - from: https://spdy.pomerium.test
    to: %[3]s
    allow_public_unauthenticated_access: true
    allow_spdy: true
  - from: https://upgrades.pomerium.test
    to: %[3]s
    allow_public_unauthenticated_access: true
    allow_upgrades: [SPDY/3.1]
  - from: https://kube.pomerium.test
    to: %[3]s
    allow_public_unauthenticated_access: true
    kubernetes_service_account_token_file: %[4]s
  - from: https://nospdy.pomerium.test
    to: %[3]s
    allow_public_unauthenticated_access: true
    allow_websockets: true
`, httpsPort, testenv.FreePort(t), echo.URL, token)
	caddy := testenv.StartCaddyConfig(t, "pomerium", "config.yaml", config, httpsPort)
	hosts := []string{"spdy.pomerium.test", "upgrades.pomerium.test", "kube.pomerium.test", "nospdy.pomerium.test"}
	caddy.WaitCertificates(t, hosts...)
	for _, host := range hosts[:3] {
		if r := spdyUpgrade(t, caddy, host, nil); r.status != 101 {
			t.Errorf("%s: %d %s, want 101", host, r.status, oneLine(r.body))
		}
	}
	r := spdyUpgrade(t, caddy, "nospdy.pomerium.test", nil)
	wantRefusal(t, "nospdy.pomerium.test", rawResponse{Status: r.status, Body: r.body}, 400, "upgrade-refused")
	if _, seen, _ := echo.got(r.id); seen {
		t.Error("the refused upgrade reached the upstream")
	}
}

// A site's iap_mtls runs before its route and leaves SPDY to it: with a
// valid client certificate, the route with allow_spdy proxies the upgrade
// and the route without refuses it; without a certificate, neither does
// (495 first).
func TestSPDYBehindSiteMTLS(t *testing.T) {
	echo := newSPDYEcho(t)
	c := newClientCerts(t)
	mtls := "ca_file " + c.caFile
	site := func(host, extra string) string {
		return fmt.Sprintf("%s {\n\ttls internal\n\tiap_mtls {\n\t\t%s\n\t}\n\tiap_route {\n\t\tto %s\n\t\tallow_public_unauthenticated_access\n%s\t}\n}\n",
			host, mtls, echo.URL, extra)
	}
	caddy := testenv.StartCaddy(t, "", site("spdy.test", "\t\tallow_spdy\n")+site("nospdy.test", ""))
	caddy.WaitCertificates(t, "spdy.test", "nospdy.test")
	withCert := c.tlsCert(t, "valid")
	if r := spdyUpgrade(t, caddy, "spdy.test", nil, withCert); r.status != 101 {
		t.Errorf("allow_spdy behind iap_mtls: %d %s, want 101", r.status, oneLine(r.body))
	}
	r := spdyUpgrade(t, caddy, "nospdy.test", nil, withCert)
	wantRefusal(t, "no allow_spdy behind iap_mtls", rawResponse{Status: r.status, Body: r.body}, 400, "upgrade-refused")
	r = spdyUpgrade(t, caddy, "spdy.test", nil)
	if _, seen, _ := echo.got(r.id); r.status != 495 || seen {
		t.Errorf("allow_spdy without a client certificate: %d (upstream saw it: %v), want 495", r.status, seen)
	}
}
