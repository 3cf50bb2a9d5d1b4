package exampletest

import (
	"bytes"
	"encoding/json"
)

// jsonEqual reports whether got and want are the same JSON value, whatever
// their spacing and key order.
func jsonEqual(got []byte, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return bytes.Equal(got, []byte(want))
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
