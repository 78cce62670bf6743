package module

import "testing"

// server_names lets a connection made for one of a host's names carry
// its requests, and nothing more: not another host's, not another name,
// not a name one label deeper than a wildcard key.
func TestMTLSServesName(t *testing.T) {
	m := &MTLS{ServerNames: map[string][]string{
		"app.example.com": {"legacy.example.com"},
		"*.apps.example":  {"old.example"},
	}}
	for _, c := range []struct {
		host, sni string
		ok        bool
	}{
		{"app.example.com", "legacy.example.com", true},
		{"APP.example.com", "Legacy.Example.com", true},
		{"app.example.com", "other.example.com", false},
		{"other.example.com", "legacy.example.com", false},
		{"x.apps.example", "old.example", true},
		{"y.x.apps.example", "old.example", false},
		{"apps.example", "old.example", false},
		{"x.apps.example", "legacy.example.com", false},
	} {
		if got := m.servesName(c.host, c.sni); got != c.ok {
			t.Errorf("host %s, SNI %s: %v, want %v", c.host, c.sni, got, c.ok)
		}
	}
}
