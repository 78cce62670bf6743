package authz

import "testing"

// FuzzParse feeds YAML and JSON to the parser and compiler, and evaluates
// whatever compiles: nothing may panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(tenRules))
	f.Add([]byte("allow:\n  or:\n    - email: {is: a@b.c}\n    - claim/x/y: {in: [a, b]}\n"))
	f.Add([]byte("- deny:\n    not:\n      - time_of_day: {after: '22:00', before: '06:00', timezone: Europe/Paris}\n"))
	f.Add([]byte(`{"allow":{"nor":[{"client_certificate":{"san_dns":{"ends_with":".x"},"fingerprint":["00"]}}]}}`))
	f.Add([]byte("allow: [\n"))
	f.Add([]byte("allow:\n  and:\n    - client_certificate_user: {field: subject_common_name}\n    - client_certificate_user: true\n"))
	f.Add([]byte("- {}\n- allow: {action: allow, not: [claim/org.team: {in: [true, 3, x, null]}]}\n  deny: {nor: [email: {not_in: []}, client_certificate: {san_dns: {starts_with: a, not_in: [b]}}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		e, err := Compile(p)
		if err != nil {
			return
		}
		in := baseInput()
		e.Evaluate(&in)
		in = Input{}
		e.Evaluate(&in)
		_ = p.ClaimNames()
	})
}
