package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/doubledutch/doubledutch/client"
	"github.com/doubledutch/doubledutch/client/fence"
)

// Hold a lock for as long as the work takes: the keepalive refreshes it
// at a third of its lifetime, and Lost closes (strictly before the cluster
// could expire the lock) if it cannot.
func ExampleClient_Acquire() {
	c, err := client.NewClient(client.Config{Endpoints: exampleEndpoints, APIKey: exampleKey})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	l, err := c.Acquire(ctx, "nightly-report", client.AcquireOptions{
		Lifetime: 3 * time.Second, Wait: 10 * time.Second, KeepAlive: true})
	if err != nil {
		log.Fatal(err)
	}
	work := time.After(2 * time.Second) // longer than a third of the lifetime
	select {
	case <-work:
		fmt.Println("done, still holding:", l.Err() == nil)
	case <-l.Lost():
		fmt.Println("lost the lock, stopping:", l.Err())
	}
	if err := l.Release(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("after release:", l.Err())
	// Output:
	// done, still holding: true
	// after release: lock released
}

// WithLock runs a function under a lock; its context ends if the lock is
// lost. The fencing token goes with every write to the protected
// resource, which refuses stale ones.
func ExampleClient_WithLock() {
	c, err := client.NewClient(client.Config{Endpoints: exampleEndpoints, APIKey: exampleKey})
	if err != nil {
		log.Fatal(err)
	}
	store := fence.New() // the protected resource's side
	err = c.WithLock(context.Background(), "ledger", client.AcquireOptions{Lifetime: 5 * time.Second},
		func(ctx context.Context, l *client.Lock) error {
			return store.Do("ledger", l.Fence(), func() error {
				fmt.Println("writing under", l.Name())
				return nil
			})
		})
	fmt.Println("err:", err)
	// Output:
	// writing under ledger
	// err: <nil>
}
