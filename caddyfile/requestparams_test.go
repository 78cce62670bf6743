package caddyfile_test

import (
	"strings"
	"testing"
)

// request_param in the idp block, repeatable, becomes request_params; a
// line without a name and a value is an error at that line.
func TestIDPRequestParam(t *testing.T) {
	const head = "{\n\tiap {\n\t\tidp {\n\t\t\tprovider_url https://idp.example\n\t\t\tclient_id x\n"
	const tail = "\t\t}\n\t}\n}\napp.example.com {\n\trespond ok\n}"
	out, err := adapt(t, head+"\t\t\trequest_param prompt select_account\n\t\t\trequest_param hd example.com\n"+tail)
	if err != nil || !strings.Contains(out, `"request_params":{"hd":"example.com","prompt":"select_account"}`) {
		t.Errorf("%v\n%s", err, out)
	}
	if _, err := adapt(t, head+"\t\t\trequest_param prompt\n"+tail); err == nil || !strings.Contains(err.Error(), "request_param takes a name and a value") || !strings.Contains(err.Error(), ":6") {
		t.Errorf("one value: %v", err)
	}
}

// sign_out_redirect_url in the global iap option.
func TestSignOutRedirectURLOption(t *testing.T) {
	out, err := adapt(t, "{\n\tiap {\n\t\tsign_out_redirect_url https://www.example.com/bye\n\t}\n}\napp.example.com {\n\trespond ok\n}")
	if err != nil || !strings.Contains(out, `"sign_out_redirect_url":"https://www.example.com/bye"`) {
		t.Errorf("%v\n%s", err, out)
	}
}

// programmatic_redirect_domain_whitelist in the global iap option: one or
// more hosts, on one line or several; none is an error naming the line,
// and an entry that could never match fails validation with its name.
func TestProgrammaticRedirectDomainWhitelistOption(t *testing.T) {
	out, err := adapt(t, "{\n\tiap {\n\t\tprogrammatic_redirect_domain_whitelist localhost example.com\n\t\tprogrammatic_redirect_domain_whitelist apps.example.org\n\t}\n}\napp.example.com {\n\trespond ok\n}")
	if err != nil || !strings.Contains(out, `"programmatic_redirect_domain_whitelist":["localhost","example.com","apps.example.org"]`) {
		t.Errorf("%v\n%s", err, out)
	}
	if _, err := adapt(t, "{\n\tiap {\n\t\tprogrammatic_redirect_domain_whitelist\n\t}\n}\napp.example.com {\n\trespond ok\n}"); err == nil ||
		!strings.Contains(err.Error(), "programmatic_redirect_domain_whitelist takes one or more host names") || !strings.Contains(err.Error(), ":3") {
		t.Errorf("no value: %v", err)
	}
	if _, err := adapt(t, "{\n\tiap {\n\t\tprogrammatic_redirect_domain_whitelist localhost *.example.com\n\t}\n}\napp.example.com {\n\trespond ok\n}"); err == nil ||
		!strings.Contains(err.Error(), `programmatic_redirect_domain_whitelist "*.example.com": wildcards are not supported`) || !strings.Contains(err.Error(), ":3") {
		t.Errorf("a wildcard: %v", err)
	}
}
