package authn

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzSessionCookie feeds arbitrary cookie headers to the session reader:
// nothing may panic, and every failure is ErrCookie (or no cookie at all).
func FuzzSessionCookie(f *testing.F) {
	key := make([]byte, 32)
	c, _ := newCodec(key, "session")
	good, _ := c.seal("_iap", &Session{ID: "s", Subject: "u", IssuedAt: time.Unix(1, 0)})
	big, _ := c.seal("_iap", bigSession())
	f.Add("_iap=" + good)
	f.Add("_iap=chunks.2; _iap_0=" + big[:chunkSize] + "; _iap_1=" + big[chunkSize:min(len(big), 2*chunkSize)])
	f.Add("_iap=v1.AAAA")
	f.Add("_iap=chunks.99")
	j := jar{name: "_iap"}
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", header)
		raw, err := j.read(r)
		if err != nil {
			if !errors.Is(err, ErrCookie) && !errors.Is(err, http.ErrNoCookie) {
				t.Fatalf("read: unexpected error %v", err)
			}
			return
		}
		var s Session
		if err := c.open("_iap", raw, &s); err != nil && !errors.Is(err, ErrCookie) {
			t.Fatalf("open: unexpected error %v", err)
		}
	})
}
