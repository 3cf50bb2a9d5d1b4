package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/gotasker/tasker"
)

// header is the CSV's first line.
var header = []string{"id", "name", "category", "price", "quantity"}

// Product is a row of the CSV.
type Product struct {
	ID         int
	Name       string
	Category   string
	PriceCents int64 // the price column, "12.34", in cents
	Quantity   int64
}

// Value is the product's inventory value in cents: price × quantity.
func (p Product) Value() int64 { return p.PriceCents * p.Quantity }

// scan reads the CSV at path and calls each with every data
// row from row from up to (not including) row to, counted from 0 after
// the header, stopping early when each returns an error. It returns how
// many data rows it read. A file that cannot be read or a malformed row is
// a permanent error: retrying does not fix it.
func scan(path string, from, to int, each func(row int, p Product) error) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, badCSV(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = len(header)
	r.ReuseRecord = true
	if rec, err := r.Read(); err != nil || !slices.Equal(rec, header) {
		return 0, badCSV(fmt.Errorf("%s: the header must be %s", path, strings.Join(header, ",")))
	}
	row := 0
	for ; row < to; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return row, badCSV(err)
		}
		if row < from {
			continue
		}
		p, err := parse(rec)
		if err != nil {
			return row, badCSV(fmt.Errorf("%s: row %d: %w", path, row, err))
		}
		if err := each(row, p); err != nil {
			return row, err
		}
	}
	return row, nil
}

// parse reads a product from a record of the CSV.
func parse(rec []string) (Product, error) {
	id, err1 := strconv.Atoi(rec[0])
	price, err2 := cents(rec[3])
	qty, err3 := strconv.ParseInt(rec[4], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Product{}, err
	}
	return Product{ID: id, Name: rec[1], Category: rec[2], PriceCents: price, Quantity: qty}, nil
}

// cents parses a price with two decimals, "12.34", into cents.
func cents(s string) (int64, error) {
	units, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 {
		return 0, fmt.Errorf("price %q: want two decimals, as 12.34", s)
	}
	return strconv.ParseInt(units+frac, 10, 64)
}

// badCSV is the permanent failure of a CSV that cannot be processed.
func badCSV(err error) error {
	return &tasker.StepError{Type: tasker.ErrorPermanent, Code: "BAD_CSV", Message: err.Error(), Err: err}
}
