// Package suggest finds the name a typo meant, for "did you mean" in
// config errors.
package suggest

import "fmt"

// Closest returns the word of words nearest to name (Levenshtein
// distance), or "" when none is within 1+len(name)/5 edits. The first
// of equally near words wins.
func Closest(name string, words []string) string {
	best, bestDist := "", 0
	for _, w := range words {
		if d := distance(name, w); best == "" || d < bestDist {
			best, bestDist = w, d
		}
	}
	if best == "" || bestDist > 1+len(name)/5 {
		return ""
	}
	return best
}

// DidYouMean returns ` (did you mean "x"?)` for the Closest word, or "".
func DidYouMean(name string, words []string) string {
	if w := Closest(name, words); w != "" {
		return fmt.Sprintf(" (did you mean %q?)", w)
	}
	return ""
}

// distance is the Levenshtein distance of a and b, by bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
