package postgres

import (
	"context"
	"fmt"
	"strings"
)

// Repositories scan rows straight into domain types: the pool maps each
// column to the field of the same name (columnName in db.go), so a domain
// type needs no db tags. A row struct stands in between only where a
// column's shape differs from its field's (an array read as JSON, a JSONB
// document, a computed value); it embeds the domain type when it can,
// declares only the differing columns, and converts itself with domain().

// domainRow is a row struct that converts itself to its domain value.
type domainRow[D any] interface{ domain() D }

// selectAll runs query into a slice of T; an empty result is an empty (not
// nil) slice, so an empty list is [] on the wire.
func selectAll[T any](ctx context.Context, q querier, query string, args ...any) ([]T, error) {
	out := []T{}
	err := q.SelectContext(ctx, &out, query, args...)
	return out, mapErr(err)
}

// getOne runs query (one row) into a T; no row is the not-found error
// code/msg.
func getOne[T any](ctx context.Context, q querier, code, msg, query string, args ...any) (T, error) {
	var v T
	err := q.GetContext(ctx, &v, query, args...)
	return v, notFound(err, code, msg)
}

// selectAs is selectAll through the row struct R.
func selectAs[R domainRow[D], D any](ctx context.Context, q querier, query string, args ...any) ([]D, error) {
	rows, err := selectAll[R](ctx, q, query, args...)
	return convertRows(rows, R.domain), err
}

// getAs is getOne through the row struct R.
func getAs[R domainRow[D], D any](ctx context.Context, q querier, code, msg, query string, args ...any) (D, error) {
	row, err := getOne[R](ctx, q, code, msg, query, args...)
	return row.domain(), err
}

// convertRows converts scanned rows to domain values; never nil.
func convertRows[R, D any](rows []R, conv func(R) D) []D {
	out := make([]D, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out
}

// insertInto runs query (an INSERT … RETURNING one row) into a fresh T and,
// when it succeeds, replaces *dst with it (the value as stored: id,
// timestamps and defaults filled).
func insertInto[T any](ctx context.Context, q querier, dst *T, query string, args ...any) error {
	var v T
	if err := q.GetContext(ctx, &v, query, args...); err != nil {
		return mapErr(err)
	}
	*dst = v
	return nil
}

// updateLocked reads one row with sel (which ends in FOR UPDATE; no row is
// the not-found error code/msg), lets fn change it and writes it back with
// write, all in one transaction.
func updateLocked[T any](ctx context.Context, s *Store, code, msg, sel string, id any,
	fn func(*T) error, write func(ctx context.Context, v T, out *T) error) (T, error) {
	var out T
	err := s.InTx(ctx, func(ctx context.Context) error {
		v, err := getOne[T](ctx, s.q(ctx), code, msg, sel, id)
		if err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		return mapErr(write(ctx, v, &out))
	})
	return out, err
}

// filter collects the optional conditions of a query and their arguments
// ($1, $2, … in the order added).
type filter struct {
	conds []string
	args  []any
}

// add appends cond, whose %d is replaced by v's placeholder number.
func (f *filter) add(cond string, v any) {
	f.conds = append(f.conds, fmt.Sprintf(cond, f.arg(v)))
}

// arg appends v and returns its placeholder number.
func (f *filter) arg(v any) int {
	f.args = append(f.args, v)
	return len(f.args)
}

// where is " WHERE c1 AND c2 …", or "" without conditions.
func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}
