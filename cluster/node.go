// Package cluster owns the Raft node: its log and stable stores, snapshot
// store and TCP (optionally mutual-TLS) transport, bootstrap, leadership
// tracking, the leader's lease clock and expiry ticks, proposing commands
// with honest outcomes, and linearizable reads.
//
// It knows nothing about HTTP: the api package talks to a Node through an
// interface it declares itself.
package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/doubledutch/doubledutch/fsm"
)

// Node is one member of a DoubleDutch cluster.
type Node struct {
	cfg   Config
	log   hclog.Logger
	fsm   *fsm.Machine
	raft  *raft.Raft
	trans *raft.NetworkTransport
	// stream dials peers as the transport does (TLS included), for the
	// reachability check of membership changes.
	stream raft.StreamLayer
	guard  *voteGuard
	// raftRef publishes raft to the vote guard, which may see RPCs before
	// NewRaft has returned.
	raftRef atomic.Pointer[raft.Raft]
	store   *raftboltdb.BoltStore
	clock   *leaseClock
	// tracker is the FSM Raft drives: fsm plus configuration entries.
	tracker *appliedTracker
	ops     opsState // operations bookkeeping (ops.go)
	// proposer packs commands into entries (group commit).
	proposer proposer
	// transfers holds entries back while a leadership transfer this node
	// started is in flight (transfergate.go).
	transfers transferGate
	// handoff is the waiting layer, asked for next holders while sealing.
	handoff atomic.Pointer[Handoff]

	// notify receives Raft's leadership changes; watchLeadership always
	// drains it.
	notify chan bool
	// leadMu orders starting and stopping leader terms.
	leadMu sync.Mutex
	// leading is non-nil while this node leads and has passed its Barrier.
	leading atomic.Pointer[leaderTerm]
	// wake nudges the expiry timer when a new deadline may be earlier.
	wake chan struct{}
	// failAnnounces counts announces still to fail (tests).
	failAnnounces atomic.Int32
	// nudgeMu serializes heartbeat-timer nudges (two reloads each).
	nudgeMu sync.Mutex
	// peerClosed is when a peer last closed a Raft connection (unix ns).
	peerClosed atomic.Int64

	subsMu sync.Mutex
	subs   map[int]func(Event)
	subSeq int

	appliedMu     sync.Mutex
	appliedNotify chan struct{} // closed and replaced after an apply
	readWaiters   atomic.Int32  // reads waiting for the applied index

	// caughtUp latches once this node has caught up since start (lag.go).
	caughtUp atomic.Bool

	closing     chan struct{}
	raftStopped chan struct{}
	closeOnce   sync.Once
	wg          sync.WaitGroup
}

// Start opens the stores, starts Raft and, for a node with no state and a
// voter list, bootstraps the cluster.
func Start(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:           cfg,
		log:           cfg.Logger.Named("cluster"),
		clock:         newLeaseClock(cfg.StallThreshold),
		wake:          make(chan struct{}, 1),
		subs:          map[int]func(Event){},
		appliedNotify: make(chan struct{}),
		closing:       make(chan struct{}),
		raftStopped:   make(chan struct{}),
		notify:        make(chan bool, 64),
	}
	n.failAnnounces.Store(cfg.failAnnounces)
	n.proposer.n = n
	n.fsm = fsm.New(fsm.Options{OnApply: n.onApply})
	n.tracker = &appliedTracker{Machine: n.fsm, node: n}
	if err := n.open(); err != nil {
		if n.raft != nil {
			_ = n.raft.Shutdown().Error()
		}
		n.closeStores()
		return nil, err
	}
	n.wg.Add(4)
	go n.watchLeadership()
	go n.watchLeaderChanges()
	go n.watchLeaderContact()
	go n.watchDisk()
	return n, nil
}

func (n *Node) open() error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("cluster: data directory: %w", err)
	}
	store, err := openBoltStore(filepath.Join(n.cfg.DataDir, "raft.db"), n.cfg.NoSync)
	if err != nil {
		return err
	}
	n.store = store
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		return err
	}
	n.removeTempSnapshots()
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, n.cfg.Logger.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("cluster: snapshot store: %w", err)
	}
	snaps := &cleanSnapshotStore{FileSnapshotStore: fileSnaps, dir: filepath.Join(n.cfg.DataDir, "snapshots"), log: n.log}
	st, err := n.inspectStorage(store, snaps)
	if err != nil {
		return err
	}
	if st.guard != "" {
		// An empty directory is also every brand-new node: not alarming.
		logf := n.log.Warn
		if !st.existing {
			logf = n.log.Info
		}
		logf("starting guarded: no votes or campaigns until caught up with a leader", "reason", st.guard)
		if err := n.writeGuardFile(st.guard); err != nil {
			return err
		}
	}
	if n.trans, err = n.newTransport(); err != nil {
		return err
	}
	n.guard = newVoteGuard(n, n.trans, logs, st.guard != "")
	if err := n.startRaft(logs, store, snaps); err != nil {
		return err
	}
	if st.existing || len(n.cfg.Voters) == 0 {
		n.log.Info("starting from existing state", "existing", st.existing)
	} else if err := n.bootstrap(); err != nil {
		return err
	}
	n.campaignIfAlone()
	return nil
}

// startRaft starts Raft. The start-up check finds the damage that makes
// NewRaft panic; the recover is the backstop, so that a damaged directory
// ends in one clear error, never a stack trace.
func (n *Node) startRaft(logs raft.LogStore, store *raftboltdb.BoltStore, snaps raft.SnapshotStore) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &damagedError{file: n.cfg.DataDir, what: fmt.Sprintf("Raft could not rebuild its state (%v)", p)}
		}
	}()
	r, err := raft.NewRaft(n.raftConfig(), n.tracker, logs, store, snaps, n.ops.wrap(n.guard))
	if err != nil {
		return fmt.Errorf("cluster: start raft: %w", err)
	}
	n.raft = r
	n.raftRef.Store(r)
	return nil
}

// bootstrap writes the shared voter list as the first configuration. Every
// voter writes the same entry, so their logs agree; a node whose data was
// wiped writes it again but cannot win an election against peers with
// longer logs, and catches up from the leader instead.
func (n *Node) bootstrap() error {
	servers := make([]raft.Server, 0, len(n.cfg.Voters))
	for _, v := range n.cfg.Voters {
		servers = append(servers, raft.Server{
			ID: raft.ServerID(v.ID), Address: raft.ServerAddress(v.Address), Suffrage: raft.Voter,
		})
	}
	n.log.Info("bootstrapping a new cluster", "voters", len(servers))
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	return nil
}

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.TrailingLogs = n.cfg.TrailingLogs
	// Larger batches let one fsync serve many concurrent proposals.
	rc.MaxAppendEntries = 256
	rc.Logger = n.cfg.Logger.Named("raft")
	rc.NotifyCh = n.notify
	return rc
}

func (n *Node) newTransport() (*raft.NetworkTransport, error) {
	var adv net.Addr
	if n.cfg.RaftAdvertise != "" {
		a, err := net.ResolveTCPAddr("tcp", n.cfg.RaftAdvertise)
		if err != nil {
			return nil, fmt.Errorf("cluster: raft advertise address: %w", err)
		}
		adv = a
	}
	logger := n.cfg.Logger.Named("transport")
	ln := n.cfg.RaftListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.RaftBind); err != nil {
			return nil, fmt.Errorf("cluster: raft listener: %w", err)
		}
	}
	ln = &peerCloseListener{Listener: ln, closed: n.notePeerClose}
	var stream raft.StreamLayer = &tcpStreamLayer{Listener: ln, advertise: adv}
	if n.cfg.RaftServerTLS != nil {
		tlsStream, err := NewTLSStreamLayerOn(ln, adv, n.cfg.RaftServerTLS, n.cfg.RaftClientTLS)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("cluster: raft TLS: %w", err)
		}
		stream = tlsStream
	} else if a, ok := stream.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("cluster: raft address %s is not reachable by peers; give an advertise address", a)
	}
	n.stream = stream
	return raft.NewNetworkTransportWithLogger(stream, 3, 10*time.Second, logger), nil
}

// RaftAddr is the address peers use to reach this node's Raft transport.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// FSM exposes the local state machine for read-only inspection (tests,
// digests). Reads from it are not linearizable.
func (n *Node) FSM() *fsm.Machine { return n.fsm }

// Close shuts the node down. A leader first hands leadership to another
// voter so the cluster does not wait out an election timeout.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.closing)
		if n.raft != nil {
			if n.raft.State() == raft.Leader && n.voterCount() > 1 {
				n.handOver()
			}
			err = n.raft.Shutdown().Error()
		}
		close(n.raftStopped)
		n.wg.Wait()
		n.closeStores()
	})
	return err
}

// HandOver transfers leadership to another voter if this node leads and
// is not alone, and returns when that is done (or after two election
// timeouts). A graceful shutdown calls it before closing the API, so that
// requests waiting here are carried to the new leader (api redirect)
// rather than refused.
func (n *Node) HandOver() {
	if n.raft.State() == raft.Leader && n.voterCount() > 1 {
		n.handOver()
	}
}

// handOver asks Raft to transfer leadership, waiting at most two election
// timeouts: when the peers are stopping too (a restart of every node) the
// transfer may find nobody to take over, and shutdown must not hang on it.
// After a transfer it also waits for this node's term to have stopped:
// Raft answers the transfer before the node has told its subscribers, and
// a caller that closes the API at once (serve's shutdown) ended the
// requests waiting here as "shutting down" (503) instead of letting the
// waiting layer carry them to the new leader.
func (n *Node) handOver() {
	term := n.leading.Load()
	timeout := time.NewTimer(2 * n.cfg.ElectionTimeout)
	defer timeout.Stop()
	done := make(chan error, 1)
	go func() { done <- n.transfers.run(n.raft.LeadershipTransfer) }()
	select {
	case err := <-done:
		if err != nil {
			n.log.Warn("leadership transfer before shutdown failed", "error", err)
			return
		}
	case <-timeout.C:
		n.log.Warn("leadership transfer before shutdown timed out; shutting down anyway")
		return
	}
	if term == nil {
		return // the term was not serving yet: nobody waits here
	}
	select {
	case <-term.stopped:
	case <-timeout.C:
		n.log.Warn("leadership transferred, but this node did not step down in time; shutting down anyway")
	}
}

// Kill stops the node without handing leadership over, as a crash would
// look to its peers (the log on disk is kept). For failure tests.
func (n *Node) Kill() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.closing)
		err = n.raft.Shutdown().Error()
		close(n.raftStopped)
		n.wg.Wait()
		n.closeStores()
	})
	return err
}

func (n *Node) closeStores() {
	if n.guard != nil {
		n.guard.stopHeartbeats()
		_ = n.guard.Close()
	} else if n.trans != nil {
		_ = n.trans.Close()
	}
	if n.store != nil {
		_ = n.store.Close()
	}
}

func (n *Node) voterCount() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}
