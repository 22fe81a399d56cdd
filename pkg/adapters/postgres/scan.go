package postgres

import (
	"context"
	"fmt"
	"strings"
)

// domainRow is a row struct that converts itself to its domain value.
type domainRow[D any] interface{ domain() D }

// selectAs runs query into rows of type R and converts each; an empty
// result is an empty (not nil) slice.
func selectAs[R domainRow[D], D any](ctx context.Context, q querier, query string, args ...any) ([]D, error) {
	rows := []R{}
	err := q.SelectContext(ctx, &rows, query, args...)
	return convertRows(rows, R.domain), mapErr(err)
}

// getAs runs query (one row) into a row of type R and converts it; no row
// is the not-found error code/msg.
func getAs[R domainRow[D], D any](ctx context.Context, q querier, code, msg, query string, args ...any) (D, error) {
	var row R
	err := q.GetContext(ctx, &row, query, args...)
	return row.domain(), notFound(err, code, msg)
}

// insertInto runs query (an INSERT … RETURNING one row) into a row of type
// R and, when it succeeds, stores its domain value in dst.
func insertInto[R domainRow[D], D any](ctx context.Context, q querier, dst *D, query string, args ...any) error {
	var row R
	if err := q.GetContext(ctx, &row, query, args...); err != nil {
		return mapErr(err)
	}
	*dst = row.domain()
	return nil
}

// updateLocked reads one row with sel (which ends in FOR UPDATE; no row is
// the not-found error code/msg), lets fn change its domain value and writes
// that back with write, all in one transaction.
func updateLocked[R domainRow[D], D any](ctx context.Context, s *Store, code, msg, sel string, id any,
	fn func(*D) error, write func(ctx context.Context, v D, out *R) error) (D, error) {
	var out R
	err := s.InTx(ctx, func(ctx context.Context) error {
		var row R
		if err := s.q(ctx).GetContext(ctx, &row, sel, id); err != nil {
			return notFound(err, code, msg)
		}
		v := row.domain()
		if err := fn(&v); err != nil {
			return err
		}
		return mapErr(write(ctx, v, &out))
	})
	return out.domain(), err
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
