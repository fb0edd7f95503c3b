package client

import (
	"errors"
	"net/http"
	"testing"

	"github.com/doubledutch/doubledutch/api/codes"
)

// TestEveryCodeMapped: every wire code matches exactly one sentinel, and
// the client's retry verdict follows the code's class: a code the server
// means as passing is retried, an unknown outcome is retried only as
// unknown, a definite answer is returned at once.
func TestEveryCodeMapped(t *testing.T) {
	all := []error{ErrBusy, ErrNotHeld, ErrNotFound, ErrGrantEnded, ErrUnauthorized, ErrRefused,
		ErrBadRequest, ErrUnavailable, ErrUnknownOutcome}
	want := map[codes.Class]verdict{codes.Definite: definite, codes.NotApplied: notApplied, codes.OutcomeUnknown: maybe}
	for _, c := range codes.All() {
		err := &APIError{Status: http.StatusBadRequest, Code: c}
		n := 0
		for _, s := range all {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s matches %d sentinels, want 1", c, n)
		}
		if got := classify(err); got != want[codes.Classify(c)] {
			t.Errorf("%s: verdict %d, want %d", c, got, want[codes.Classify(c)])
		}
		if NotApplied(err) != (codes.Classify(c) == codes.NotApplied) {
			t.Errorf("%s: NotApplied %v", c, NotApplied(err))
		}
		if retried := classify(err) != definite; retried != codes.Retryable(c) {
			t.Errorf("%s: retried %v, Retryable %v", c, retried, codes.Retryable(c))
		}
	}
	// A redirect chain that never reached a leader had no effect; an
	// answer without a JSON body is otherwise definite.
	if !NotApplied(decodeError(http.StatusTemporaryRedirect, nil)) || NotApplied(decodeError(http.StatusBadGateway, []byte("bad"))) {
		t.Fatal("answers without a code are misclassified")
	}
}
