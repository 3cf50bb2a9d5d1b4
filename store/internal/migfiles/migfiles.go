// Package migfiles reads a store's embedded, numbered migration files, the
// one layout the SQL backends share: migrations/0001_name.sql, 0002_…, in
// order, with no gaps.
package migfiles

import (
	"fmt"
	"io/fs"
	"strings"
)

// Read returns the SQL of every file under migrations in fsys, version i+1
// at index i, or an error naming a file out of sequence.
func Read(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, "migrations") // sorted by name
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		if want := fmt.Sprintf("%04d_", i+1); !strings.HasPrefix(e.Name(), want) {
			return nil, fmt.Errorf("migration %s: want a name starting %s", e.Name(), want)
		}
		b, err := fs.ReadFile(fsys, "migrations/"+e.Name())
		if err != nil {
			return nil, err
		}
		out[i] = string(b)
	}
	return out, nil
}
