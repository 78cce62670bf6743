package testenv

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// Chromium is a headless Chromium driven over the DevTools protocol. It
// resolves every *.test host to 127.0.0.1 and accepts Caddy's local CA.
type Chromium struct {
	t    testing.TB
	ws   *websocket.Conn
	mu   sync.Mutex
	next int
	wait map[int]chan cdpReply
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// StartChromium starts Debian's chromium, headless, with a fresh profile.
// env is added to its environment: HOME=<dir> makes it use the NSS
// database <dir>/.pki/nssdb, e.g. one holding a client certificate (see
// ChromiumClientCertificate).
func StartChromium(t testing.TB, env ...string) *Chromium {
	t.Helper()
	Need(t, "chromium")
	profile := t.TempDir()
	cmd := exec.Command("chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--disable-dev-shm-usage", "--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-allow-origins=*",
		"--ignore-certificate-errors", "--host-resolver-rules=MAP *.test 127.0.0.1", "--window-size=1000,700", "about:blank")
	// Chromium keeps its singleton socket in a directory of its own under
	// TMPDIR and never removes it: give it one removed with the test. A
	// short path, not t.TempDir's: a Unix socket's path has 108 bytes.
	tmp, err := os.MkdirTemp("", "iap-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := new(syncBuffer)
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("--- chromium output ---\n%s", out.String())
		}
	})

	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.Write([]byte(sc.Text() + "\n"))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	var browserURL string
	select {
	case browserURL = <-found:
	case <-exited:
		t.Fatalf("chromium exited:\n%s", out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("chromium did not start:\n%s", out.String())
	}

	// Attach to the page target.
	host := strings.TrimPrefix(browserURL, "ws://")
	host = host[:strings.Index(host, "/")]
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	resp, err := http.Get("http://" + host + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	var pageURL string
	for _, tg := range targets {
		if tg.Type == "page" {
			pageURL = tg.WS
		}
	}
	if pageURL == "" {
		t.Fatalf("no page target in %+v", targets)
	}
	ws, err := websocket.Dial(pageURL, "", "http://localhost/")
	if err != nil {
		t.Fatalf("connecting to the page: %v", err)
	}
	ws.MaxPayloadBytes = 64 << 20
	c := &Chromium{t: t, ws: ws, wait: map[int]chan cdpReply{}}
	t.Cleanup(func() { ws.Close() })
	go c.readLoop()
	c.Call("Page.enable", nil, nil)
	return c
}

func (c *Chromium) readLoop() {
	for {
		var msg struct {
			ID int `json:"id"`
			cdpReply
		}
		if err := websocket.JSON.Receive(c.ws, &msg); err != nil {
			c.mu.Lock()
			for id, ch := range c.wait {
				close(ch)
				delete(c.wait, id)
			}
			c.mu.Unlock()
			return
		}
		if msg.ID == 0 {
			continue // an event
		}
		c.mu.Lock()
		ch := c.wait[msg.ID]
		delete(c.wait, msg.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- msg.cdpReply
		}
	}
}

// Call sends a DevTools command and decodes its result into out.
func (c *Chromium) Call(method string, params any, out any) {
	c.t.Helper()
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpReply, 1)
	c.wait[id] = ch
	c.mu.Unlock()
	if params == nil {
		params = map[string]any{}
	}
	if err := websocket.JSON.Send(c.ws, map[string]any{"id": id, "method": method, "params": params}); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			c.t.Fatalf("%s: the browser closed the connection", method)
		}
		if r.Error != nil {
			c.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(r.Result, out); err != nil {
				c.t.Fatalf("%s: %v", method, err)
			}
		}
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s: no answer in 30s", method)
	}
}

// Eval runs JavaScript in the page and returns its value as a string.
func (c *Chromium) Eval(js string) string {
	c.t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	c.Call("Runtime.evaluate", map[string]any{"expression": js, "returnByValue": true}, &r)
	if r.Result.Value == nil {
		return ""
	}
	return fmt.Sprint(r.Result.Value)
}

// Navigate opens a URL.
func (c *Chromium) Navigate(url string) {
	c.t.Helper()
	c.Call("Page.navigate", map[string]any{"url": url}, nil)
}

// WaitFor waits until the JavaScript condition is true in a loaded page.
func (c *Chromium) WaitFor(cond string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c.Eval(`document.readyState === "complete" && !!(`+cond+`)`) == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("waited 30s for %s; at %s:\n%s", cond, c.Eval("location.href"), c.Eval("document.body && document.body.innerText"))
}

// Screenshot saves a PNG of the page as a test artifact under out/
// (or $IAP_ARTIFACTS) and returns its path.
func (c *Chromium) Screenshot(name string) string {
	c.t.Helper()
	var r struct {
		Data string `json:"data"`
	}
	c.Call("Page.captureScreenshot", map[string]any{"format": "png"}, &r)
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		c.t.Fatal(err)
	}
	dir := os.Getenv("IAP_ARTIFACTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// ChromiumClientCertificate prepares a client certificate for Chromium: an
// NSS database in a new home directory holding the PKCS#12 file (with its
// password), and a managed policy, AutoSelectCertificateForUrls, that
// sends it to hosts matching pattern (a content-settings pattern such as
// "[*.]example.test") without asking, which a headless browser cannot do.
// It returns the HOME=<dir> for StartChromium. The policy file is removed
// when the test ends. Chromium reads managed policies only from
// /etc/chromium/policies/managed, so this needs to write there (root).
func ChromiumClientCertificate(t testing.TB, p12File, password, pattern string) string {
	t.Helper()
	Need(t, "certutil", "pk12util")
	home := t.TempDir()
	db := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"certutil", "-N", "--empty-password", "-d", db},
		{"pk12util", "-i", p12File, "-d", db, "-W", password},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	const policyDir = "/etc/chromium/policies/managed"
	// The directories this makes are removed again when the test ends,
	// deepest first (unless another test's policy is in them by then).
	var made []string
	for d := policyDir; d != "/etc"; d = filepath.Dir(d) {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			made = append(made, d)
		}
	}
	t.Cleanup(func() {
		for _, d := range made {
			_ = asRoot(nil, "rmdir", d)
		}
	})
	if err := asRoot(nil, "mkdir", "-p", policyDir); err != nil {
		t.Fatalf("Chromium's managed policies (%s), to select a client certificate: %v (run the tests as root, as CI does, or with passwordless sudo)", policyDir, err)
	}
	rule, _ := json.Marshal(map[string]any{"pattern": pattern, "filter": map[string]any{}})
	policy, _ := json.Marshal(map[string]any{"AutoSelectCertificateForUrls": []string{string(rule)}})
	name := filepath.Join(policyDir, fmt.Sprintf("caddy-iap-test-%d-%d.json", os.Getpid(), time.Now().UnixNano()))
	t.Cleanup(func() { _ = asRoot(nil, "rm", "-f", name) })
	if err := asRoot(policy, "tee", name); err != nil {
		t.Fatalf("writing a Chromium policy in %s: %v (run the tests as root, as CI does, or with passwordless sudo)", policyDir, err)
	}
	if err := asRoot(nil, "chmod", "0644", name); err != nil {
		t.Fatal(err)
	}
	return "HOME=" + home
}

// asRoot runs a command as root: directly when the tests run as root (as
// in CI), else through passwordless sudo, as scripts/test.sh installs
// packages. input is its standard input.
func asRoot(input []byte, args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	if os.Geteuid() != 0 {
		cmd = exec.Command("sudo", append([]string{"-n"}, args...)...)
	}
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
