package api

import (
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/doubledutch/doubledutch/cluster"
)

// The v1 membership resource: add and remove Raft voters at runtime. The
// leader changes the configuration through the log; followers redirect.
// These routes take the admin key, not the lock key: whoever can add a
// voter can take the cluster over.

func (s *Server) memberRoutes() []route {
	return []route{
		{method: http.MethodPut, path: "/v1/cluster/nodes/:id", auth: authAdmin, handle: s.addNode},
		{method: http.MethodDelete, path: "/v1/cluster/nodes/:id", auth: authAdmin, handle: s.removeNode},
	}
}

// addNodeBody is the body of PUT /v1/cluster/nodes/:id.
type addNodeBody struct {
	RaftAddress string `json:"raft_address"` // host:port the peers dial
}

// memberResponse answers a membership change.
type memberResponse struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address,omitempty"`
	Member      bool   `json:"member"`
}

// maxNodeIDLength bounds a node id.
const maxNodeIDLength = 64

// addNode serves PUT /v1/cluster/nodes/:id[?force=true]: the node joins as
// a voter (or has its address updated). Start it first with --join, so
// that it waits for the leader instead of bootstrapping. Unless forced, a
// change after which no quorum of voters answers on its Raft address is
// refused with 409 quorum_at_risk: on a one-node cluster, adding a voter
// nobody can reach would stop the cluster for good.
func (s *Server) addNode(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, opts, err := memberRequest(r, ps)
	if err != nil {
		return err
	}
	var body addNodeBody
	if err := s.decodeBody(w, r, &body); err != nil {
		return err
	}
	if err := checkRaftAddress(body.RaftAddress); err != nil {
		return err
	}
	if err := s.cluster.AddVoter(id, body.RaftAddress, opts...); err != nil {
		return err
	}
	s.log.Info("added a voter", "node", id, "raft_address", body.RaftAddress, "forced", len(opts) > 0)
	writeJSON(w, http.StatusOK, memberResponse{ID: id, RaftAddress: body.RaftAddress, Member: true})
	return nil
}

// removeNode serves DELETE /v1/cluster/nodes/:id[?force=true]: 404 for a
// non-member, 409 quorum_at_risk as for addNode. Removing a node whose
// data was lost, before starting it again empty, keeps its forgotten
// acknowledgements out of every future quorum.
func (s *Server) removeNode(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, opts, err := memberRequest(r, ps)
	if err != nil {
		return err
	}
	if err := s.cluster.RemoveServer(id, opts...); err != nil {
		return err
	}
	s.log.Info("removed a node", "node", id, "forced", len(opts) > 0)
	writeJSON(w, http.StatusOK, memberResponse{ID: id, Member: false})
	return nil
}

// memberRequest reads the node id and the force option.
func memberRequest(r *http.Request, ps httprouter.Params) (string, []cluster.MembershipOption, error) {
	id, err := nodeID(ps)
	if err != nil {
		return "", nil, err
	}
	q, err := parseQuery(r.URL.RawQuery, "force")
	if err != nil {
		return "", nil, err
	}
	switch q.Get("force") {
	case "", "false", "0":
		return id, nil, nil
	case "true", "1":
		return id, []cluster.MembershipOption{cluster.Force}, nil
	}
	return "", nil, badRequest("force must be true or false")
}

// nodeID is the percent-decoded id in the path: 1 to 64 letters, digits,
// '.', '_' or '-', the same rule serve applies to --node-id.
func nodeID(ps httprouter.Params) (string, error) {
	id, err := url.PathUnescape(ps.ByName("id"))
	if err != nil {
		return "", badRequest("node id in the path is not valid percent-encoding")
	}
	if !ValidNodeID(id) {
		return "", badRequest("node id must be 1 to %d letters, digits, '.', '_' or '-'", maxNodeIDLength)
	}
	return id, nil
}

// ValidNodeID reports whether id is a valid node id: 1 to 64 ASCII
// letters, digits, '.', '_' or '-'. Such ids are safe in paths, logs and
// file names without escaping.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > maxNodeIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// checkRaftAddress accepts host:port with a host that peers can dial (not
// empty, not 0.0.0.0 or ::) and a port from 1 to 65535.
func checkRaftAddress(addr string) error {
	if err := checkText("raft_address", addr, 256); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return badRequest("raft_address must be host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return badRequest("raft_address must have a port from 1 to 65535")
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return badRequest("raft_address must be an address peers can dial, not %s", host)
	}
	return nil
}
