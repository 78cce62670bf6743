package authz

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time_of_day zones work on machines without zoneinfo
)

// date, day_of_week and time_of_day test the time of the request. Pomerium
// reserves them for its paid editions; here they are free.
//
//	date: {after: <RFC 3339>, before: <RFC 3339>}, either or both;
//	day_of_week: "mon-fri", "mon,wed,fri", "sat", "*" (in UTC unless the
//	  object form {days: "...", timezone: "Europe/Paris"} is used);
//	time_of_day: {after: "09:00", before: "17:00", timezone: "Europe/Paris"};
//	  after > before wraps past midnight.
func init() {
	register(CriterionInfo{Name: "date", Syntax: Syntax{Keys: []Key{
		{Name: "after", Value: OneValue, Example: "2026-01-01T00:00:00Z"},
		{Name: "before", Value: OneValue, Example: "2027-01-01T00:00:00Z"},
	}}}, func(_ string, data json.RawMessage) (matcher, error) {
		var d struct{ After, Before string }
		if err := strictUnmarshal(data, &d); err != nil || (d.After == "" && d.Before == "") {
			return nil, fmt.Errorf("want {after: <RFC 3339 time>, before: <RFC 3339 time>}, got %s", data)
		}
		var after, before time.Time
		var err error
		if d.After != "" {
			if after, err = time.Parse(time.RFC3339, d.After); err != nil {
				return nil, fmt.Errorf("after: %v", err)
			}
		}
		if d.Before != "" {
			if before, err = time.Parse(time.RFC3339, d.Before); err != nil {
				return nil, fmt.Errorf("before: %v", err)
			}
		}
		return func(in *Input) bool {
			return (after.IsZero() || in.Now.After(after)) && (before.IsZero() || in.Now.Before(before))
		}, nil
	})

	register(CriterionInfo{Name: "day_of_week", Syntax: Syntax{Bare: OneValue, BareExample: "mon-fri", Keys: []Key{
		{Name: "days", Value: OneValue, Example: "mon-fri"},
		{Name: "timezone", Value: OneValue, Example: "Europe/Paris"},
	}}}, func(_ string, data json.RawMessage) (matcher, error) {
		var spec, zone string
		if json.Unmarshal(data, &spec) != nil {
			var d struct{ Days, Timezone string }
			if err := strictUnmarshal(data, &d); err != nil {
				return nil, fmt.Errorf(`want "mon-fri" or {days: "mon-fri", timezone: "<IANA zone>"}, got %s`, data)
			}
			spec, zone = d.Days, d.Timezone
		}
		days, err := parseDays(spec)
		if err != nil {
			return nil, err
		}
		loc, err := location(zone)
		if err != nil {
			return nil, err
		}
		return func(in *Input) bool { return days[in.Now.In(loc).Weekday()] }, nil
	})

	register(CriterionInfo{Name: "time_of_day", Syntax: Syntax{Keys: []Key{
		{Name: "after", Value: OneValue, Example: "09:00"},
		{Name: "before", Value: OneValue, Example: "17:00"},
		{Name: "timezone", Value: OneValue, Example: "Europe/Paris"},
	}}}, func(_ string, data json.RawMessage) (matcher, error) {
		var d struct{ After, Before, Timezone string }
		if err := strictUnmarshal(data, &d); err != nil || (d.After == "" && d.Before == "") {
			return nil, fmt.Errorf(`want {after: "09:00", before: "17:00", timezone: "<IANA zone>"}, got %s`, data)
		}
		loc, err := location(d.Timezone)
		if err != nil {
			return nil, err
		}
		after, before := -1, -1
		if d.After != "" {
			if after, err = clock(d.After); err != nil {
				return nil, fmt.Errorf("after: %v", err)
			}
		}
		if d.Before != "" {
			if before, err = clock(d.Before); err != nil {
				return nil, fmt.Errorf("before: %v", err)
			}
		}
		return func(in *Input) bool {
			t := in.Now.In(loc)
			m := t.Hour()*60 + t.Minute()
			switch {
			case after >= 0 && before >= 0 && after > before: // wraps midnight
				return m >= after || m < before
			case after >= 0 && m < after:
				return false
			case before >= 0 && m >= before:
				return false
			}
			return true
		}, nil
	})
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func parseDays(spec string) ([7]bool, error) {
	var days [7]bool
	spec = strings.ToLower(strings.TrimSpace(spec))
	if spec == "*" {
		return [7]bool{true, true, true, true, true, true, true}, nil
	}
	for _, part := range strings.Split(spec, ",") {
		from, to, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, ok1 := dayNames[from]
		b, ok2 := dayNames[to]
		if !isRange {
			b, ok2 = a, ok1
		}
		if !ok1 || !ok2 {
			return days, fmt.Errorf("%q is not a day or range of days (mon, tue, ..., sun; mon-fri; *)", part)
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func location(zone string) (*time.Location, error) {
	if zone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %v", zone, err)
	}
	return loc, nil
}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
