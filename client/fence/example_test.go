package fence_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/doubledutch/doubledutch/client/fence"
)

// The resource admits writes in token order; a holder that was paused
// past its lock's expiry comes back with an old token and is refused.
func ExampleGuard() {
	g := fence.New()
	write := func(token uint64, what string) {
		err := g.Do("reports/2026-12", token, func() error {
			fmt.Println("wrote", what, "with token", token)
			return nil
		})
		if errors.Is(err, fence.ErrStale) {
			fmt.Println("refused", what+":", err)
		}
	}
	write(7, "draft")  // the first holder
	write(12, "final") // the lock expired; the next holder has 12
	write(7, "late")   // the first holder wakes up from a pause
	// Output:
	// wrote draft with token 7
	// wrote final with token 12
	// refused late: fence: token 7 for "reports/2026-12" is below 12, already admitted: its lock was superseded
}

// With the resource in a SQL database, keep the token in the row and
// make the write conditional on it, in one statement or transaction: a
// stale holder's UPDATE matches no row. (Compiled, not run: the standard
// library has no SQL driver.)
func Example_sqlTransaction() {
	var db *sql.DB // sql.Open("pgx", ...), for example
	update := func(ctx context.Context, token uint64, balance int) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx,
			`UPDATE accounts SET balance = $1, fence = $2 WHERE id = $3 AND fence <= $2`,
			balance, token, "acct-1")
		if err != nil {
			return err
		}
		// Count matched rows: some databases report 0 "changed" rows when
		// the values were already equal (MySQL: use CLIENT_FOUND_ROWS).
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return fence.ErrStale
		}
		return tx.Commit()
	}
	_ = update
}
