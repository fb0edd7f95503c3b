package codes

import (
	"os"
	"regexp"
	"testing"
)

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

// TestOpenAPIListsEveryCode: the error code enum of api/openapi.yaml is
// this table (client_gone aside: nobody reads that answer).
func TestOpenAPIListsEveryCode(t *testing.T) {
	data, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[Code]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+- ([a-z_]+)\s+# \d{3}`).FindAllStringSubmatch(string(data), -1) {
		listed[Code(m[1])] = true
	}
	for _, c := range All() {
		if !listed[c] && c != ClientGone {
			t.Errorf("%s is not in openapi.yaml's error code enum", c)
		}
	}
	for c := range listed {
		if !Known(c) {
			t.Errorf("openapi.yaml lists %s, which package codes does not know", c)
		}
	}
}
