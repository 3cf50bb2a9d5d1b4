package sqlite

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// maxRows is the most rows one multi-row INSERT holds: 64 rows of ten
// values stay far below SQLite's limit on a statement's parameters
// (32766).
const maxRows = 64

// rowsInsert is one INSERT of many rows at a time. Running one statement
// for n rows costs one call into SQLite, one VDBE run and one opening of
// the table's cursors instead of n. The statement for n rows is prepared
// the first time n rows come, for n up to maxRows; more rows take several
// statements. A workload repeats few counts (a template's steps, a
// transaction's transitions), so few of the maxRows sizes are prepared.
type rowsInsert struct {
	conn  driver.Conn
	head  string // the statement up to VALUES, included
	row   string // one row's placeholders: "(?, ?, …)"
	width int    // values per row
	count *atomic.Int64
	stmts [maxRows + 1]*stmt // stmts[n] inserts n rows; nil until used
}

// newRowsInsert returns the multi-row form of insert, a single-row INSERT
// of width values ending in "VALUES (?, …)", prepared on conn as needed.
func newRowsInsert(conn driver.Conn, insert string, width int, count *atomic.Int64) (*rowsInsert, error) {
	head, row, ok := strings.Cut(insert, "VALUES ")
	if !ok || strings.Count(row, "?") != width {
		return nil, fmt.Errorf("sqlite: %q is not an INSERT of %d values", insert, width)
	}
	return &rowsInsert{conn: conn, head: head + "VALUES ", row: row, width: width, count: count}, nil
}

// run inserts the rows whose values vals holds, row after row; len(vals)
// is a multiple of the row's width.
func (ri *rowsInsert) run(vals []driver.Value) error {
	for len(vals) > 0 {
		rows := min(len(vals)/ri.width, maxRows)
		st, err := ri.stmt(rows)
		if err != nil {
			return err
		}
		n := ri.width * rows
		if _, err := st.run(vals[:n]...); err != nil {
			return err
		}
		vals = vals[n:]
	}
	return nil
}

// stmt returns the statement inserting n rows, preparing it the first
// time.
func (ri *rowsInsert) stmt(n int) (*stmt, error) {
	if ri.stmts[n] != nil {
		return ri.stmts[n], nil
	}
	var b strings.Builder
	b.WriteString(ri.head)
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString(ri.row)
	}
	st, err := prepare(ri.conn, b.String())
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	st.count = ri.count
	ri.stmts[n] = st
	return st, nil
}

func (ri *rowsInsert) close() error {
	var errs []error
	for i, st := range ri.stmts {
		if st != nil {
			errs = append(errs, st.close())
			ri.stmts[i] = nil
		}
	}
	return errors.Join(errs...)
}
