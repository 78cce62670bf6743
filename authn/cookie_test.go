package authn

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func secret(t testing.TB) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// bigSession is an Azure-sized session: hundreds of group IDs and a long
// refresh token and ID token.
func bigSession() *Session {
	s := &Session{ID: randomID(), Subject: "00000000-0000-0000-0000-000000000001", Email: "alice@contoso.example",
		Name: "Alice", IDTokenExpiry: time.Now().Add(time.Hour), IssuedAt: time.Now()}
	for i := 0; i < 200; i++ {
		s.Groups = append(s.Groups, fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i*7919, i, i, i, i*104729))
	}
	s.RefreshToken = strings.Repeat("0.AAAAbigrefreshtokenmaterial", 60)
	s.RawIDToken = strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 120)
	return s
}

// roundTrip writes the session with one response and reads it back from
// the cookies a browser would send.
func roundTrip(t *testing.T, c *codec, j jar, s *Session, edit func([]*http.Cookie)) (*Session, []*http.Cookie, error) {
	t.Helper()
	v, err := c.seal(j.name, s)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := j.write(w, httptest.NewRequest("GET", "/", nil), v, time.Now().Add(time.Hour)); err != nil {
		return nil, nil, err
	}
	cookies := w.Result().Cookies()
	if edit != nil {
		edit(cookies)
	}
	r := httptest.NewRequest("GET", "/", nil)
	for _, ck := range cookies {
		r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	raw, err := j.read(r)
	if err != nil {
		return nil, cookies, err
	}
	var got Session
	err = c.open(j.name, raw, &got)
	return &got, cookies, err
}

func TestCookies(t *testing.T) {
	sec := secret(t)
	c, _ := newCodec(sec, "session")
	j := jar{name: "_iap", sameSite: http.SameSiteLaxMode}
	small := &Session{ID: "s1", Subject: "u1", Email: "a@example.com", Groups: []string{"admins"}, IssuedAt: time.Now()}

	t.Run("a small session is one Secure HttpOnly cookie", func(t *testing.T) {
		got, cookies, err := roundTrip(t, c, j, small, nil)
		if err != nil || got.Email != "a@example.com" || len(cookies) != 1 {
			t.Fatalf("got %+v, %d cookies, %v", got, len(cookies), err)
		}
		if !cookies[0].Secure || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
			t.Errorf("attributes: %+v", cookies[0])
		}
	})

	t.Run("an Azure-sized session is split into chunks and rejoined", func(t *testing.T) {
		big := bigSession()
		got, cookies, err := roundTrip(t, c, j, big, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(cookies) < 3 || cookies[1].Name != "_iap_0" {
			t.Errorf("want a marker and several chunks, got %d cookies", len(cookies))
		}
		for _, ck := range cookies {
			if len(ck.Value) > chunkSize {
				t.Errorf("chunk %s is %d bytes", ck.Name, len(ck.Value))
			}
		}
		if len(got.Groups) != 200 || got.RefreshToken != big.RefreshToken {
			t.Errorf("lost data in the round trip")
		}
	})

	for _, c2 := range []struct {
		name string
		edit func([]*http.Cookie)
	}{
		{"a tampered value", func(cs []*http.Cookie) {
			// One character changed (a no-op, 1 time in 64, if it were
			// always "A").
			c := "A"
			if cs[0].Value[20] == 'A' {
				c = "B"
			}
			cs[0].Value = cs[0].Value[:20] + c + cs[0].Value[21:]
		}},
		{"a truncated value", func(cs []*http.Cookie) { cs[0].Value = cs[0].Value[:len(cs[0].Value)/2] }},
		{"another format", func(cs []*http.Cookie) { cs[0].Value = "v0." + cs[0].Value[3:] }},
		{"a value for another cookie name", func(cs []*http.Cookie) { cs[0].Name = "_iap" }},
	} {
		t.Run(c2.name+" is refused", func(t *testing.T) {
			other := jar{name: "_iap"}
			codecFor := c
			if c2.name == "a value for another cookie name" {
				// sealed under the name _other, presented as _iap
				v, _ := c.seal("_other", small)
				r := httptest.NewRequest("GET", "/", nil)
				r.AddCookie(&http.Cookie{Name: "_iap", Value: v})
				raw, _ := other.read(r)
				var s Session
				if err := codecFor.open("_iap", raw, &s); !errors.Is(err, ErrCookie) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if _, _, err := roundTrip(t, c, j, small, c2.edit); !errors.Is(err, ErrCookie) {
				t.Fatalf("err = %v, want ErrCookie", err)
			}
		})
	}

	t.Run("a cookie from another cookie_secret is refused", func(t *testing.T) {
		other, _ := newCodec(secret(t), "session")
		v, _ := other.seal("_iap", small)
		var s Session
		if err := c.open("_iap", v, &s); !errors.Is(err, ErrCookie) || !strings.Contains(err.Error(), "another cookie_secret") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("chunk problems are refused", func(t *testing.T) {
		for name, cookies := range map[string]string{
			"a missing chunk":       "_iap=chunks.2; _iap_0=abc",
			"too many chunks":       "_iap=chunks.999",
			"a bad count":           "_iap=chunks.x",
			"an oversized chunk":    "_iap=chunks.1; _iap_0=" + strings.Repeat("A", chunkSize+1),
			"a chunk with no value": "_iap=chunks.0",
		} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Cookie", cookies)
			if _, err := j.read(r); !errors.Is(err, ErrCookie) {
				t.Errorf("%s: err = %v", name, err)
			}
		}
	})

	t.Run("a session too large for 16 chunks is an error, not a broken cookie", func(t *testing.T) {
		huge := bigSession()
		huge.RawIDToken = randomString(40 * chunkSize)
		if _, _, err := roundTrip(t, c, j, huge, nil); err == nil || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("writing a smaller session clears the old chunks", func(t *testing.T) {
		v, _ := c.seal("_iap", small)
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", "_iap=chunks.3; _iap_0=a; _iap_1=b; _iap_2=c")
		w := httptest.NewRecorder()
		if err := j.write(w, r, v, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		cleared := 0
		for _, ck := range w.Result().Cookies() {
			if strings.HasPrefix(ck.Name, "_iap_") && ck.MaxAge < 0 {
				cleared++
			}
		}
		if cleared != 3 {
			t.Errorf("cleared %d old chunks, want 3", cleared)
		}
	})
}

// randomString is incompressible text, so it keeps its size through deflate.
func randomString(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// The upstream gets the request's cookies minus the session's and the
// login's, whatever their order, spacing or number of Cookie lines.
func TestStripCookies(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1") // never contacted
	for _, c := range []struct {
		in   []string
		want []string
	}{
		{[]string{"__Host-_iap=abc"}, nil},
		{[]string{"a=1; __Host-_iap=chunks.2; __Host-_iap_0=x;__Host-_iap_1=y; __Host-_iap_login_0123456789ab=z; b=2"}, []string{"a=1; b=2"}},
		{[]string{"__Host-_iapx=keep; __Host-_iap_foo=keep; __Host-_iap_loginx=keep; _Host-_iap=keep"}, []string{"__Host-_iapx=keep; __Host-_iap_foo=keep; __Host-_iap_loginx=keep; _Host-_iap=keep"}},
		// The names from before the __Host- prefix, which browsers may
		// still hold after an upgrade, never reach the upstream either.
		{[]string{"_iap=abc"}, nil},
		{[]string{"a=1; _iap=chunks.2; _iap_0=x;_iap_1=y; _iap_login=z; b=2"}, []string{"a=1; b=2"}},
		{[]string{"_iap_login_0123456789ab=z; _iap_login_x=z; c=3"}, []string{"c=3"}},
		{[]string{"_iap_loginx=keep"}, []string{"_iap_loginx=keep"}},
		{[]string{"_iapx=keep; _iap_foo=keep; _iap_=keep; x_iap=keep"}, []string{"_iapx=keep; _iap_foo=keep; _iap_=keep; x_iap=keep"}},
		{[]string{"theme=dark", "_iap=abc; _iap_3=q"}, []string{"theme=dark"}},
		{[]string{"untouched=1;;  spaced=2"}, []string{"untouched=1;;  spaced=2"}},
	} {
		h := http.Header{"Cookie": append([]string(nil), c.in...)}
		a.StripCookies(h)
		if got := h.Values("Cookie"); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// Clearing a session answers with a few Set-Cookie headers, one per name:
// the session cookie and the chunks a session within the cookie budget can
// have, whatever the request sent (issue 11: 2,250 _iap_N cookies got a
// 401 with 2,251 Set-Cookie headers).
func TestClearingASessionSetsFewCookies(t *testing.T) {
	a := newTestAuthenticator(t, "http://127.0.0.1:1/unused")
	many := []string{"__Host-_iap=v1.garbage"}
	for i := 0; i < 2250; i++ {
		many = append(many, fmt.Sprintf("__Host-_iap_%d=x", i))
	}
	for _, c := range []struct {
		name, cookies string
		want          []string
	}{
		{"a broken session with 2,250 chunk cookies clears the session and at most the first chunks",
			strings.Join(many, "; "), nil},
		{"a broken chunked session clears the chunks it declares",
			"__Host-_iap=chunks.3; __Host-_iap_0=a; __Host-_iap_1=b; __Host-_iap_2=c", []string{"__Host-_iap", "__Host-_iap_0", "__Host-_iap_1", "__Host-_iap_2"}},
		{"a cookie sent twice is cleared once",
			"__Host-_iap=v1.x; __Host-_iap=v1.y; __Host-_iap_0=a; __Host-_iap_0=b", []string{"__Host-_iap", "__Host-_iap_0"}},
		{"a chunk name with a leading zero is not ours to clear",
			"__Host-_iap=v1.x; __Host-_iap_00=a", []string{"__Host-_iap"}},
		{"a broken session declaring 16 chunks clears only as many as the budget allows",
			"__Host-_iap=chunks.16; " + strings.Join(many[1:17], "; "), []string{"__Host-_iap", "__Host-_iap_0", "__Host-_iap_1", "__Host-_iap_2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://app.test/", nil)
			r.Header.Set("Cookie", c.cookies)
			w := httptest.NewRecorder()
			if _, err := a.Session(w, r); err == nil {
				t.Fatal("a broken session was accepted")
			}
			var names []string
			seen := map[string]bool{}
			for _, ck := range w.Result().Cookies() {
				if ck.MaxAge >= 0 {
					t.Errorf("%s was set, not cleared", ck.Name)
				}
				if seen[ck.Name] {
					t.Errorf("%s cleared twice", ck.Name)
				}
				seen[ck.Name] = true
				names = append(names, ck.Name)
			}
			// A session within the default budget of 8 KB has at most 3
			// chunks of 3,500 bytes.
			if len(names) > 4 {
				t.Fatalf("%d Set-Cookie headers, want at most 4", len(names))
			}
			if c.want != nil && strings.Join(names, " ") != strings.Join(c.want, " ") {
				t.Errorf("cleared %v, want %v", names, c.want)
			}
		})
	}
}
