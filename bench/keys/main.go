// Command keys is the load and the upstream of the keys drill
// (bench/run.sh keys): browser-like clients, each with its own cookie jar
// seeded with a signed-in session, request a caddy-iap route for a while,
// and the route's upstream, served here, verifies every identity
// assertion it gets against the JWKS it fetched from Caddy, fetching it
// again only for a key ID it does not hold, as go-oidc and jose libraries
// do. Meanwhile the drill rotates the signing key and the cookie secret by
// reloading Caddy.
//
//	go run ./bench/keys -caddy 127.0.0.1:8443 -url https://bench.localhost:8443/keys/ \
//		-cookie "$cookie" -upstream 127.0.0.1:9091 -duration 30s
//
// It counts failed requests (any status but 200, or no answer), forced
// sign-ins (a redirect to sign in: the session was lost) and assertions
// that did not verify, prints them, and exits 1 unless all are 0.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func main() {
	caddyAddr := flag.String("caddy", "127.0.0.1:8443", "where Caddy listens")
	target := flag.String("url", "https://bench.localhost:8443/keys/", "the signed-in route, proxied to -upstream")
	jwksPath := flag.String("jwks", "/.well-known/iap/jwks.json", "the JWKS path on the route's host")
	cookieLine := flag.String("cookie", "", "the session's cookies, as bench/signin prints them")
	upstream := flag.String("upstream", "127.0.0.1:9091", "where the verifying upstream listens")
	clients := flag.Int("clients", 16, "concurrent browser-like clients")
	duration := flag.Duration("duration", 30*time.Second, "how long to load")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil || *cookieLine == "" {
		flag.Usage()
		os.Exit(2)
	}
	transport := func() *http.Transport {
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		return &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if host, _, _ := net.SplitHostPort(addr); strings.HasSuffix(host, ".localhost") {
					addr = *caddyAddr
				}
				return dialer.DialContext(ctx, network, addr)
			},
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the bench's own local CA
			MaxIdleConnsPerHost: 4,
		}
	}

	v := &verifier{jwksURL: u.Scheme + "://" + u.Host + *jwksPath, host: u.Hostname(),
		client: &http.Client{Timeout: 10 * time.Second, Transport: transport()}, kids: map[string]int64{}}
	ln, err := net.Listen("tcp", *upstream)
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = http.Serve(ln, v) }()
	log.Printf("upstream verifying assertions on %s against %s", *upstream, v.jwksURL)

	var st stats
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	resealed := make([]bool, *clients)
	for i := range *clients {
		jar, _ := cookiejar.New(nil)
		var seeded []*http.Cookie
		for part := range strings.SplitSeq(*cookieLine, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			seeded = append(seeded, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true})
		}
		jar.SetCookies(u, seeded)
		client := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: transport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := cookieValues(jar, u)
			for time.Now().Before(deadline) {
				st.request(client, *target)
				if !resealed[i] && cookieValues(jar, u) != first {
					resealed[i] = true
				}
			}
		}()
	}
	wg.Wait()

	n := 0
	for _, r := range resealed {
		if r {
			n++
		}
	}
	fmt.Printf("keys: %d requests, %d failed, %d forced sign-ins; %d of %d clients had their session cookie sealed again\n",
		st.total.Load(), st.failed.Load(), st.signIns.Load(), n, *clients)
	for _, line := range st.examples() {
		fmt.Println("  failure:", line)
	}
	fmt.Printf("upstream: %d assertions verified, %d failed, %d JWKS fetches; by key: %s\n",
		v.verified.Load(), v.failed.Load(), v.fetches.Load(), v.byKey())
	for _, line := range v.examples() {
		fmt.Println("  failure:", line)
	}
	if st.failed.Load()+st.signIns.Load()+v.failed.Load() > 0 {
		os.Exit(1)
	}
}

func cookieValues(jar http.CookieJar, u *url.URL) string {
	var b strings.Builder
	for _, c := range jar.Cookies(u) {
		b.WriteString(c.Name + "=" + c.Value + ";")
	}
	return b.String()
}

// stats counts the clients' outcomes.
type stats struct {
	total, failed, signIns atomic.Int64
	mu                     sync.Mutex
	seen                   []string
}

func (s *stats) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) < 10 {
		s.seen = append(s.seen, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

func (s *stats) examples() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

// request makes one request as a browser would (Accept: text/html, so a
// lost session is a redirect to sign in) and counts its outcome.
func (s *stats) request(c *http.Client, target string) {
	s.total.Add(1)
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		s.failed.Add(1)
		s.note("no answer: %v", err)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK && string(body) == "verified":
	case resp.StatusCode == http.StatusFound:
		s.signIns.Add(1)
		s.note("sent to sign in: %s", resp.Header.Get("Location"))
	default:
		s.failed.Add(1)
		s.note("%d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
}

// verifier is the upstream: it verifies each request's assertion against
// the JWKS it holds, fetched again only for a key ID it does not hold.
type verifier struct {
	jwksURL, host string
	client        *http.Client

	mu   sync.RWMutex
	keys jose.JSONWebKeySet

	fetchMu                   sync.Mutex
	verified, failed, fetches atomic.Int64
	kidsMu                    sync.Mutex
	kids                      map[string]int64
	order                     []string // key IDs in order of first use
	failures                  []string
}

func (v *verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kid, err := v.verify(r.Header.Get("X-Iap-Jwt-Assertion"))
	v.kidsMu.Lock()
	if err == nil {
		if v.kids[kid] == 0 {
			v.order = append(v.order, kid)
			log.Printf("upstream: first assertion signed by key %s", kid)
		}
		v.kids[kid]++
	} else if len(v.failures) < 10 {
		v.failures = append(v.failures, time.Now().Format("15:04:05.000 ")+err.Error())
	}
	v.kidsMu.Unlock()
	if err != nil {
		v.failed.Add(1)
		http.Error(w, "assertion: "+err.Error(), http.StatusUnauthorized)
		return
	}
	v.verified.Add(1)
	_, _ = io.WriteString(w, "verified")
}

func (v *verifier) verify(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no assertion")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", err
	}
	kid := tok.Headers[0].KeyID
	key, err := v.key(kid)
	if err != nil {
		return kid, err
	}
	var c jwt.Claims
	if err := tok.Claims(key.Key, &c); err != nil {
		return kid, fmt.Errorf("key %s: %v", kid, err)
	}
	return kid, c.Validate(jwt.Expected{Issuer: v.host, AnyAudience: jwt.Audience{v.host}, Time: time.Now()})
}

// key returns the key kid from the JWKS held, fetching it again first
// when kid is not in it.
func (v *verifier) key(kid string) (jose.JSONWebKey, error) {
	v.mu.RLock()
	keys := v.keys.Key(kid)
	v.mu.RUnlock()
	if len(keys) > 0 {
		return keys[0], nil
	}
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	v.mu.RLock()
	keys = v.keys.Key(kid)
	v.mu.RUnlock()
	if len(keys) > 0 {
		return keys[0], nil
	}
	v.fetches.Add(1)
	resp, err := v.client.Get(v.jwksURL)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("fetching the JWKS: %v", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		return jose.JSONWebKey{}, fmt.Errorf("fetching the JWKS: %d %v", resp.StatusCode, err)
	}
	v.mu.Lock()
	v.keys = set
	v.mu.Unlock()
	if keys = set.Key(kid); len(keys) == 0 {
		return jose.JSONWebKey{}, fmt.Errorf("key %s is not in the JWKS, even fetched again", kid)
	}
	return keys[0], nil
}

func (v *verifier) byKey() string {
	v.kidsMu.Lock()
	defer v.kidsMu.Unlock()
	var parts []string
	for _, kid := range v.order {
		parts = append(parts, fmt.Sprintf("%s… %d", kid[:8], v.kids[kid]))
	}
	return strings.Join(parts, ", ")
}

func (v *verifier) examples() []string {
	v.kidsMu.Lock()
	defer v.kidsMu.Unlock()
	return v.failures
}
