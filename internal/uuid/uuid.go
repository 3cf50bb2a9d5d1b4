// Package uuid generates the UUIDs tasker gives to tasks: version 7 (RFC
// 9562), so IDs sort by creation time to the millisecond.
package uuid

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// NewV7 returns a version 7 UUID for the time now: the Unix milliseconds of
// now in the first 48 bits, then the version, 12 random bits, the variant
// and 62 more random bits, from crypto/rand. It is formatted as 8-4-4-4-12
// lowercase hex digits. IDs made in different milliseconds sort, as
// strings, in the order of their times; within one millisecond their order
// is random. now must not be before 1970.
func NewV7(now time.Time) string {
	var b [16]byte
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16|uint64(binary.BigEndian.Uint16(b[6:8])))
	b[6] = 0x70 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
