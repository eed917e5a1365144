package main

import "testing"

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                  "1.2.3",
		"1.2.3":                   "1.2.3",
		"v1.2.3-rc1":              "1.2.3~rc1",
		"v1.2.3-4-gabcdef0":       "1.2.3+4.gabcdef0",
		"v1.2.3-4-gabcdef0-dirty": "1.2.3+4.gabcdef0.dirty",
		"v1.2.3-dirty":            "1.2.3+dirty",
		"v1.2.3-rc1-2-g1234567":   "1.2.3~rc1+2.g1234567",
		"abcdef0":                 "0.0.0~gitabcdef0",
		"1234567-dirty":           "0.0.0~git1234567+dirty",
		"dev":                     "0.0.0~dev",
		"":                        "0.0.0",
		"release_2026/01":         "0.0.0~release.2026.01",
	} {
		if got := DebVersion(in); got != want {
			t.Errorf("DebVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
