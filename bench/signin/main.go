// Command signin signs a user in at a caddy-iap route through Dex's login
// form and prints the session cookie, for load tests that need a signed-in
// session:
//
//	go run ./bench/signin -caddy 127.0.0.1:8443 -url https://bench.localhost:8443/signed/ \
//		-user alice@example.com -password password
//
// Hosts ending in .localhost are dialled at -caddy; Caddy's certificate is
// not verified (the bench uses its local CA).
package main

import (
	"context"
	"crypto/tls"
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
	"time"
)

func main() {
	caddyAddr := flag.String("caddy", "127.0.0.1:8443", "where Caddy listens")
	target := flag.String("url", "", "a URL of a route that requires sign-in")
	user := flag.String("user", "", "email")
	password := flag.String("password", "", "password")
	prefix := flag.String("cookie-prefix", "__Host-_iap", "print the cookies whose names start with this")
	flag.Parse()
	if *target == "" || *user == "" {
		flag.Usage()
		os.Exit(2)
	}
	jar, _ := cookiejar.New(nil)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, _, _ := net.SplitHostPort(addr); strings.HasSuffix(host, ".localhost") {
				addr = *caddyAddr
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the bench's own local CA
	}}
	get := func(u string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := get(*target)
	if !strings.Contains(resp.Request.URL.Path, "/auth/local/login") {
		log.Fatalf("expected Dex's login form, got %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, err := client.PostForm(resp.Request.URL.String(), url.Values{"login": {*user}, "password": {*password}})
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		log.Fatalf("sign-in ended with %d at %s", resp.StatusCode, resp.Request.URL)
	}
	log.Printf("signed in, landed at %s (%d)", resp.Request.URL, resp.StatusCode)
	u, _ := url.Parse(*target)
	var parts []string
	for _, c := range jar.Cookies(u) {
		if strings.HasPrefix(c.Name, *prefix) {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		log.Fatal("no session cookie")
	}
	fmt.Println(strings.Join(parts, "; "))
}
