// Package testenv starts the real programs the end-to-end tests talk to:
// Caddy built with caddy-iap, and openssl s_server as an mTLS upstream. Each
// is stopped when its test ends.
package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Need fails the test when a program is missing. The README's test command
// installs them; a test that silently skipped would prove nothing.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed: run the tests with ./scripts/test.sh, which installs it", p)
		}
	}
}

// FreePort returns a loopback TCP port that was free a moment ago, and
// that it never returned before in this test binary. The kernel may hand
// out a port again once its probe is closed; two Caddy instances given the
// same one would both bind it (Caddy listens with SO_REUSEPORT) and share
// its connections, one speaking HTTP where the other speaks HTTPS.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no loopback port that was not handed out before")
	return 0
}

// The ports FreePort returned.
var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// waitOK waits until a GET of url answers 200, for at most limit; the test
// fails, with the process's output, if name exits first or never answers.
func waitOK(t testing.TB, name, url string, limit time.Duration, exited <-chan struct{}, out *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-exited:
			t.Fatalf("%s exited:\n%s", name, out.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s in %s:\n%s", name, url, limit, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitListening waits until something accepts TCP connections on addr.
func WaitListening(t testing.TB, addr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("the process meant to listen on %s exited", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after 30s", addr)
}

var (
	buildOnce sync.Once
	caddyBin  string
	buildErr  error
)

// CaddyBinary builds Caddy with the standard modules and caddy-iap (the same
// set as xcaddy.sh) once per test binary, and returns its path.
func CaddyBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-iap-bin-")
		if err != nil {
			buildErr = err
			return
		}
		caddyBin = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", caddyBin, "github.com/caddy-iap/caddy-iap/internal/cmd/caddy")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building caddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return caddyBin
}

// RemoveCaddyBinary removes the binary CaddyBinary built, so that no test
// run leaves one behind. Call it from TestMain after m.Run.
func RemoveCaddyBinary() {
	if caddyBin != "" {
		_ = os.RemoveAll(filepath.Dir(caddyBin))
	}
}

// Caddy is a running caddy process.
type Caddy struct {
	Dir       string // its home, data and config directories live here
	HTTPSPort int
	HTTPPort  int
	stderr    *syncBuffer

	// Set by StartCaddyOn, for Reload.
	cmd       *exec.Cmd
	caddyfile string
}

// caddyEnv keeps Caddy's data (local CA, inline upstream certificates) in dir.
func caddyEnv(dir string) []string {
	return append(os.Environ(),
		"CADDY_ADMIN=127.0.0.1:0", // configs without `admin off` must not fight over :2019
		"HOME="+dir,
		"XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
	)
}

// globals are the global options every test Caddyfile starts with: its own
// ports, no admin endpoint (unless extra has an admin line of its own, for
// a test of the admin API), and a local CA that is not installed anywhere.
func globals(httpPort, httpsPort int, extra string) string {
	admin := "\tadmin off\n"
	if adminLine.MatchString(extra) {
		admin = ""
	}
	// Each test's Caddy has fresh storage, so certmagic's storage cleaner
	// has nothing to do there but race the first certificate: seen once
	// deleting the site folder being written ("deleting site folder
	// because key is empty"), which left the host without a certificate
	// for a minute (TLS internal error).
	clean := "\tstorage_clean_interval off\n"
	if strings.Contains(extra, "storage_clean_interval") {
		clean = ""
	}
	return fmt.Sprintf(`{
%s%s	skip_install_trust
	local_certs
	http_port %d
	https_port %d
%s
}
`, admin, clean, httpPort, httpsPort, extra)
}

var adminLine = regexp.MustCompile(`(?m)^\s*admin\s`)

// WriteCaddyfile writes a Caddyfile made of the test globals (plus extra
// global options) and the given site blocks, and returns its path.
func WriteCaddyfile(t testing.TB, dir, extraGlobals, sites string) string {
	t.Helper()
	p := filepath.Join(dir, "Caddyfile")
	body := globals(FreePort(t), FreePort(t), extraGlobals) + sites
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// StartCaddy runs `caddy run` on a Caddyfile of the test globals, any extra
// global options, and the given site blocks.
func StartCaddy(t testing.TB, extraGlobals, sites string) *Caddy {
	t.Helper()
	return StartCaddyOn(t, FreePort(t), FreePort(t), extraGlobals, sites)
}

// StartCaddyOn is StartCaddy on given ports, for configs that must know
// them beforehand (an IdP's redirect URIs).
func StartCaddyOn(t testing.TB, httpPort, httpsPort int, extraGlobals, sites string) *Caddy {
	t.Helper()
	bin := CaddyBinary(t)
	dir := t.TempDir()
	c := &Caddy{Dir: dir, HTTPPort: httpPort, HTTPSPort: httpsPort, stderr: new(syncBuffer)}
	p := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(p, []byte(globals(c.HTTPPort, c.HTTPSPort, extraGlobals)+sites), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", p)
	cmd.Dir = dir
	cmd.Env = caddyEnv(dir)
	cmd.Stdout = c.stderr
	cmd.Stderr = c.stderr
	exited := start(t, cmd, "caddy", c.stderr)
	WaitListening(t, fmt.Sprintf("127.0.0.1:%d", c.HTTPSPort), exited)
	c.cmd, c.caddyfile = cmd, p
	return c
}

// StartCaddyConfig runs `caddy run` on a config for another adapter (such
// as pomerium) that listens on httpsPort, with env added.
func StartCaddyConfig(t testing.TB, adapter, name, body string, httpsPort int, env ...string) *Caddy {
	t.Helper()
	dir := t.TempDir()
	c := &Caddy{Dir: dir, HTTPSPort: httpsPort, stderr: new(syncBuffer)}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(CaddyBinary(t), "run", "--adapter", adapter, "--config", p)
	cmd.Dir = dir
	cmd.Env = append(caddyEnv(dir), env...)
	cmd.Stdout, cmd.Stderr = c.stderr, c.stderr
	exited := start(t, cmd, "caddy", c.stderr)
	WaitListening(t, fmt.Sprintf("127.0.0.1:%d", c.HTTPSPort), exited)
	return c
}

// start runs cmd until the test ends, and reports its output on failure.
func start(t testing.TB, cmd *exec.Cmd, name string, out *syncBuffer) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, out.String())
		}
	})
	return exited
}

// Log returns what Caddy has logged so far.
func (c *Caddy) Log() string { return c.stderr.String() }

// WaitLog waits up to 10s for Caddy's log to contain s, and reports whether
// it did.
func (c *Caddy) WaitLog(s string) bool {
	for i := 0; i < 200; i++ {
		if strings.Contains(c.Log(), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// RootFile is the certificate of Caddy's local CA, which signs the test
// sites' certificates; it waits for Caddy to write it.
func (c *Caddy) RootFile(t testing.TB) string {
	t.Helper()
	if f := c.rootFile(100); f != "" {
		return f
	}
	t.Fatalf("caddy's local root is missing in %s", c.Dir)
	return ""
}

// rootFile waits up to tries*50ms for the local CA's root, or returns "".
func (c *Caddy) rootFile(tries int) string {
	rootFile := filepath.Join(c.Dir, "data", "caddy", "pki", "authorities", "local", "root.crt")
	for i := 0; i < tries; i++ {
		if _, err := os.Stat(rootFile); err == nil {
			return rootFile
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ""
}

// Roots is a pool holding Caddy's local CA, which signs the test sites'
// certificates.
func (c *Caddy) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	roots := x509.NewCertPool()
	pemBytes, err := os.ReadFile(c.RootFile(t))
	if err != nil || !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("reading caddy's local root: %v", err)
	}
	return roots
}

// TLSConfig trusts Caddy's local CA; each option may change it, e.g. to add
// a client certificate.
func (c *Caddy) TLSConfig(t testing.TB, options ...func(*tls.Config)) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: c.Roots(t)}
	for _, o := range options {
		o(cfg)
	}
	return cfg
}

// DialContext dials this Caddy's HTTPS port whatever address is asked for,
// so that a client reaches every site by its host name.
func (c *Caddy) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return dialer.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", c.HTTPSPort))
}

// Client returns an HTTP client that reaches every host on this Caddy's
// HTTPS port and trusts its local CA. Each option may change its TLS
// config, e.g. to add a client certificate.
func (c *Caddy) Client(t testing.TB, options ...func(*tls.Config)) *http.Client {
	t.Helper()
	return &http.Client{
		Timeout:       20 * time.Second,
		Transport:     &http.Transport{DialContext: c.DialContext, TLSClientConfig: c.TLSConfig(t, options...)},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Response is what a test request got.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Get requests https://host/path through this Caddy.
func (c *Caddy) Get(t testing.TB, host, path string, header http.Header) Response {
	t.Helper()
	r, err := c.Do(t, c.Client(t), host, path, header)
	if err != nil {
		t.Fatalf("GET https://%s%s: %v", host, path, err)
	}
	return r
}

// Do requests https://host/path with the given client, and returns the
// error instead of failing the test.
func (c *Caddy) Do(t testing.TB, client *http.Client, host, path string, header http.Header) (Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = vs[0]
			continue
		}
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	// Caddy issues each site's certificate from its local CA in the
	// background at start; until then the handshake fails this way.
	for i := 0; err != nil && strings.Contains(err.Error(), "tls: internal error") && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
		resp, err = client.Do(req)
	}
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("reading body: %v", err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}

// Validate runs `caddy validate` on a Caddyfile and returns its combined
// output and whether it succeeded.
func Validate(t testing.TB, caddyfilePath string) (string, bool) {
	t.Helper()
	dir := filepath.Dir(caddyfilePath)
	cmd := exec.Command(CaddyBinary(t), "validate", "--adapter", "caddyfile", "--config", caddyfilePath)
	cmd.Dir = dir
	cmd.Env = caddyEnv(dir)
	out, err := cmd.CombinedOutput()
	// Caddy logs JSON: unescape quotes so tests can look for messages.
	return strings.ReplaceAll(string(out), `\"`, `"`), err == nil
}

// SServer is a running `openssl s_server -www`.
type SServer struct {
	Port int
	out  *syncBuffer
}

// Addr is the s_server's address as an upstream URL host.
func (s *SServer) Addr() string { return fmt.Sprintf("localhost:%d", s.Port) }

// Output returns what s_server has printed.
func (s *SServer) Output() string { return s.out.String() }

// StartSServer runs `openssl s_server -www` with the given certificate and
// key on a free loopback port, plus extra flags such as "-Verify 1".
func StartSServer(t testing.TB, certFile, keyFile string, extra ...string) *SServer {
	t.Helper()
	Need(t, "openssl")
	s := &SServer{Port: FreePort(t), out: new(syncBuffer)}
	args := append([]string{"s_server", "-www", "-accept", fmt.Sprintf("127.0.0.1:%d", s.Port),
		"-cert", certFile, "-key", keyFile}, extra...)
	cmd := exec.Command("openssl", args...)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	exited := start(t, cmd, "openssl s_server", s.out)
	WaitListening(t, fmt.Sprintf("127.0.0.1:%d", s.Port), exited)
	return s
}

// Apache is a running Apache httpd serving TLS 1.2 that asks for a client
// certificate only under /reneg, by renegotiating the connection: the real
// case Pomerium's tls_upstream_allow_renegotiation exists for. (openssl
// s_server's /reneg sends application data before the new handshake, which
// no Go client accepts.) Every path answers with mod_status's page.
type Apache struct {
	Port int
	Dir  string
}

// Addr is the server's address as an upstream URL host.
func (a *Apache) Addr() string { return fmt.Sprintf("localhost:%d", a.Port) }

// ErrorLog returns Apache's error log.
func (a *Apache) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(a.Dir, "error.log"))
	return string(b)
}

// StartApache runs Apache httpd in the foreground (-X) with the given server
// certificate, verifying client certificates against caFile.
func StartApache(t testing.TB, certFile, keyFile, caFile string) *Apache {
	t.Helper()
	const bin = "/usr/sbin/apache2"
	Need(t, bin)
	a := &Apache{Port: FreePort(t), Dir: t.TempDir()}
	mod := func(name string) string {
		return fmt.Sprintf("LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", name, name)
	}
	conf := "ServerRoot " + a.Dir + "\n" +
		"ServerName openssl.localhost\n" +
		fmt.Sprintf("Listen 127.0.0.1:%d\n", a.Port) +
		mod("mpm_event") + mod("authz_core") + mod("ssl") + mod("socache_shmcb") + mod("status") +
		"DefaultRuntimeDir " + a.Dir + "\n" +
		"PidFile " + filepath.Join(a.Dir, "httpd.pid") + "\n" +
		"ErrorLog " + filepath.Join(a.Dir, "error.log") + "\n" +
		"LogLevel info\nUser nobody\nGroup nogroup\nMutex posixsem\n" +
		"SSLEngine on\nSSLProtocol TLSv1.2\n" +
		"SSLCertificateFile " + certFile + "\n" +
		"SSLCertificateKeyFile " + keyFile + "\n" +
		"SSLCACertificateFile " + caFile + "\n" +
		"<Location />\n  SetHandler server-status\n  Require all granted\n</Location>\n" +
		"<Location /reneg>\n  SSLVerifyClient require\n  SSLVerifyDepth 1\n</Location>\n"
	confFile := filepath.Join(a.Dir, "httpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := new(syncBuffer)
	cmd := exec.Command(bin, "-f", confFile, "-X")
	cmd.Stdout, cmd.Stderr = out, out
	exited := start(t, cmd, "apache2", out)
	WaitListening(t, fmt.Sprintf("127.0.0.1:%d", a.Port), exited)
	return a
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitCertificates waits until Caddy completes a TLS handshake for each host
// (its internal issuer makes the sites' certificates just after it starts
// listening), so that the first request of a test does not race it.
func (c *Caddy) WaitCertificates(t testing.TB, hosts ...string) {
	t.Helper()
	for _, host := range hosts {
		deadline := time.Now().Add(30 * time.Second)
		for {
			conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", c.HTTPSPort), &tls.Config{ServerName: host, InsecureSkipVerify: true})
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no TLS handshake for %s: %v", host, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
