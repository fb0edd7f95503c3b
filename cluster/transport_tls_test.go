package cluster

import (
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/doubledutch/doubledutch/cluster/tlsutil"
)

// tlsTestWait bounds every wait in these tests; nothing should take close.
const tlsTestWait = 10 * time.Second

// tlsTestConfigs loads node's server and client configs from a bundle dir,
// trusting the CA in caDir (normally the same dir).
func tlsTestConfigs(t *testing.T, dir, caDir, node string) (server, client *tls.Config) {
	t.Helper()
	cert, key := filepath.Join(dir, node+".crt"), filepath.Join(dir, node+".key")
	ca := filepath.Join(caDir, tlsutil.CACertFile)
	server, err := tlsutil.ServerConfig(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	client, err = tlsutil.ClientConfig(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

// tlsTestBundle writes a fresh CA and node certificates into a temp dir.
func tlsTestBundle(t *testing.T, nodes string) string {
	t.Helper()
	dir := t.TempDir()
	if err := tlsutil.WriteBundle(dir, tlsutil.ParseNodes(nodes), tlsutil.BundleOptions{ValidFor: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tlsTestLayer opens a stream layer on 127.0.0.1:0.
func tlsTestLayer(t *testing.T, server, client *tls.Config) *TLSStreamLayer {
	t.Helper()
	layer, err := NewTLSStreamLayer("127.0.0.1:0", nil, server, client)
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// tlsTestTransport starts a raft network transport over layer, closed at
// test end.
func tlsTestTransport(t *testing.T, name string, layer *TLSStreamLayer) *raft.NetworkTransport {
	t.Helper()
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: 2,
		Timeout: 5 * time.Second,
		Logger:  testLogger(t, hclog.Debug).Named(name),
	})
	t.Cleanup(func() { trans.Close() })
	return trans
}

// tlsTestServe answers RequestVote and AppendEntries RPCs arriving on trans
// until the test ends, reporting each request on the returned channel.
func tlsTestServe(t *testing.T, trans *raft.NetworkTransport) <-chan any {
	got := make(chan any, 16)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for {
			select {
			case <-stop:
				return
			case rpc := <-trans.Consumer():
				switch req := rpc.Command.(type) {
				case *raft.RequestVoteRequest:
					rpc.Respond(&raft.RequestVoteResponse{Term: req.Term, Granted: true}, nil)
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term, LastLog: req.PrevLogEntry + uint64(len(req.Entries)), Success: true}, nil)
				default:
					rpc.Respond(nil, errors.New("unexpected RPC"))
				}
				got <- rpc.Command
			}
		}
	}()
	return got
}

// tlsTestHeader is the RPC header a raft node named id would send.
func tlsTestHeader(id string, trans *raft.NetworkTransport) raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(trans.LocalAddr())}
}

func tlsTestVote(from, to *raft.NetworkTransport, term uint64) (*raft.RequestVoteResponse, error) {
	req := &raft.RequestVoteRequest{
		RPCHeader: tlsTestHeader("a", from),
		Term:      term, LastLogIndex: 7, LastLogTerm: 2,
	}
	var resp raft.RequestVoteResponse
	err := from.RequestVote("b", to.LocalAddr(), req, &resp)
	return &resp, err
}

func TestTLSTransportRPCs(t *testing.T) {
	dir := tlsTestBundle(t, "a,b")
	sa, ca := tlsTestConfigs(t, dir, dir, "a")
	sb, cb := tlsTestConfigs(t, dir, dir, "b")
	a := tlsTestTransport(t, "a", tlsTestLayer(t, sa, ca))
	b := tlsTestTransport(t, "b", tlsTestLayer(t, sb, cb))
	got := tlsTestServe(t, b)

	resp, err := tlsTestVote(a, b, 3)
	if err != nil {
		t.Fatalf("RequestVote over TLS: %v", err)
	}
	if !resp.Granted || resp.Term != 3 {
		t.Fatalf("RequestVote response = %+v", resp)
	}
	select {
	case cmd := <-got:
		if v, ok := cmd.(*raft.RequestVoteRequest); !ok || v.Term != 3 || v.LastLogIndex != 7 {
			t.Fatalf("consumer saw %#v", cmd)
		}
	case <-time.After(tlsTestWait):
		t.Fatal("RequestVote never reached the consumer")
	}

	ae := &raft.AppendEntriesRequest{
		RPCHeader: tlsTestHeader("a", a),
		Term:      3, PrevLogEntry: 7, PrevLogTerm: 2, LeaderCommitIndex: 7,
		Entries: []*raft.Log{{Index: 8, Term: 3, Type: raft.LogCommand, Data: []byte("lock")}},
	}
	var aeResp raft.AppendEntriesResponse
	if err := a.AppendEntries("b", b.LocalAddr(), ae, &aeResp); err != nil {
		t.Fatalf("AppendEntries over TLS: %v", err)
	}
	if !aeResp.Success || aeResp.LastLog != 8 {
		t.Fatalf("AppendEntries response = %+v", aeResp)
	}
	select {
	case cmd := <-got:
		req, ok := cmd.(*raft.AppendEntriesRequest)
		if !ok || len(req.Entries) != 1 || string(req.Entries[0].Data) != "lock" {
			t.Fatalf("consumer saw %#v", cmd)
		}
	case <-time.After(tlsTestWait):
		t.Fatal("AppendEntries never reached the consumer")
	}
}

func TestTLSTransportRejectsForeignCA(t *testing.T) {
	dir := tlsTestBundle(t, "b")
	rogueDir := tlsTestBundle(t, "rogue")
	sb, cb := tlsTestConfigs(t, dir, dir, "b")
	b := tlsTestTransport(t, "b", tlsTestLayer(t, sb, cb))
	got := tlsTestServe(t, b)

	cases := []struct{ name, caDir string }{
		// Trusts the real CA but holds a foreign certificate: only b's check
		// stops it (under TLS 1.3 it learns so on its first read).
		{"foreign-cert", dir},
		// Foreign through and through: it also refuses b's certificate.
		{"foreign-ca", rogueDir},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sr, cr := tlsTestConfigs(t, rogueDir, tc.caDir, "rogue")
			rogue := tlsTestTransport(t, "rogue", tlsTestLayer(t, sr, cr))
			_, err := tlsTestVote(rogue, b, 9)
			t.Logf("rogue RequestVote: %v", err)
			if err == nil {
				t.Fatal("a peer with a certificate from another CA got an RPC through")
			}
			select {
			case cmd := <-got:
				t.Fatalf("rejected peer's RPC reached the consumer: %#v", cmd)
			default:
			}
		})
	}
}

func TestTLSAcceptNotBlockedBySilentPeer(t *testing.T) {
	dir := tlsTestBundle(t, "a,b")
	sa, ca := tlsTestConfigs(t, dir, dir, "a")
	sb, cb := tlsTestConfigs(t, dir, dir, "b")
	layerB := tlsTestLayer(t, sb, cb)
	const handshakeTimeout = 2 * time.Second
	layerB.handshakeTimeout = handshakeTimeout // before the transport starts accepting
	b := tlsTestTransport(t, "b", layerB)
	a := tlsTestTransport(t, "a", tlsTestLayer(t, sa, ca))
	tlsTestServe(t, b)

	// A peer that connects and never says a word.
	silent, err := net.DialTimeout("tcp", string(b.LocalAddr()), tlsTestWait)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	// Were Accept to handshake, it would sit on the silent peer until the
	// handshake timeout and only then take a's connection.
	start := time.Now()
	if _, err := tlsTestVote(a, b, 1); err != nil {
		t.Fatalf("RequestVote while a silent peer is connected: %v", err)
	}
	if took := time.Since(start); took >= handshakeTimeout {
		t.Fatalf("RequestVote took %v: Accept waited for the silent peer", took)
	}

	// The silent peer's handshake times out and b hangs up on it.
	silent.SetReadDeadline(time.Now().Add(tlsTestWait))
	_, err = silent.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("silent peer was not disconnected: read err = %v", err)
	}
}

func TestTLSStreamLayerAddrAndChecks(t *testing.T) {
	dir := tlsTestBundle(t, "a")
	s, c := tlsTestConfigs(t, dir, dir, "a")

	adv := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8300}
	layer, err := NewTLSStreamLayer("127.0.0.1:0", adv, s, c)
	if err != nil {
		t.Fatal(err)
	}
	if layer.Addr().String() != "10.1.2.3:8300" {
		t.Fatalf("Addr() = %v, want the advertise address", layer.Addr())
	}
	layer.Close()

	layer, err = NewTLSStreamLayer("127.0.0.1:0", nil, s, c)
	if err != nil {
		t.Fatal(err)
	}
	if tcp, ok := layer.Addr().(*net.TCPAddr); !ok || tcp.Port == 0 || !tcp.IP.IsLoopback() {
		t.Fatalf("Addr() = %v, want the real listener address", layer.Addr())
	}
	layer.Close()

	if _, err := NewTLSStreamLayer("0.0.0.0:0", nil, s, c); err == nil {
		t.Error("an unspecified bind address without an advertise address was accepted")
	}
	noMutual, err := tlsutil.ServerConfig(filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTLSStreamLayer("127.0.0.1:0", nil, noMutual, c); err == nil {
		t.Error("a server config without client authentication was accepted")
	}
}
