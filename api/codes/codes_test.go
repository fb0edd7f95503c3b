package codes

import "testing"

// TestEveryCodeClassified: every code of the table has a class, and
// Retryable agrees with it.
func TestEveryCodeClassified(t *testing.T) {
	all := All()
	if len(all) < 20 {
		t.Fatalf("only %d codes", len(all))
	}
	for _, c := range all {
		cl := Classify(c)
		if cl == Unclassified || !Known(c) {
			t.Errorf("%s: unclassified", c)
		}
		if Retryable(c) != (cl != Definite) {
			t.Errorf("%s: class %d, Retryable %v", c, cl, Retryable(c))
		}
	}
	if Known("http_502") || Retryable("http_502") || Classify("no_such") != Unclassified {
		t.Fatal("a code outside the table is classified")
	}
}

// TestClasses pins the classes that decide whether a client retries.
func TestClasses(t *testing.T) {
	for c, want := range map[Code]Class{
		Busy: Definite, NotHeld: Definite, GrantEnded: Definite, TooLarge: Definite,
		BadRequest: Definite, QuorumAtRisk: Definite, AdminDisabled: Definite,
		NoLeader: NotApplied, TooStale: NotApplied, TooManyLocks: NotApplied,
		TooManyRequestIDs: NotApplied, TooManyWaiters: NotApplied, BodyTimeout: NotApplied,
		UnknownOutcome: OutcomeUnknown, Internal: OutcomeUnknown,
	} {
		if got := Classify(c); got != want {
			t.Errorf("%s: class %d, want %d", c, got, want)
		}
	}
}
