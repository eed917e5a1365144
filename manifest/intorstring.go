package manifest

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// IntOrString holds a value that may be written as an integer or a string
// (ports by number or name, maxSurge as 1 or "25%").
type IntOrString struct {
	IsString bool
	IntVal   int32
	StrVal   string
}

// UnmarshalJSON accepts a JSON number or string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsString = true
		return json.Unmarshal(b, &v.StrVal)
	}
	v.IsString = false
	return json.Unmarshal(b, &v.IntVal)
}

// MarshalJSON writes the value in the form it was given.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

// String renders the value as written.
func (v IntOrString) String() string {
	if v.IsString {
		return v.StrVal
	}
	return strconv.Itoa(int(v.IntVal))
}

// ScaledValue resolves an integer or a percentage of total, rounding up when
// roundUp is set (Kubernetes rounds maxSurge up and maxUnavailable down).
func (v IntOrString) ScaledValue(total int, roundUp bool) (int, error) {
	if !v.IsString {
		return int(v.IntVal), nil
	}
	s := v.StrVal
	if len(s) < 2 || s[len(s)-1] != '%' {
		return 0, fmt.Errorf("%q: must be an integer or a percentage", s)
	}
	p, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || p < 0 {
		return 0, fmt.Errorf("%q: must be an integer or a percentage", s)
	}
	if roundUp {
		return (p*total + 99) / 100, nil
	}
	return p * total / 100, nil
}
