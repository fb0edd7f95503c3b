package api

import (
	"net"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// The v1 membership resource: add and remove Raft voters at runtime. The
// leader changes the configuration through the log; followers redirect.

func (s *Server) memberRoutes() []route {
	return []route{
		{method: http.MethodPut, path: "/v1/cluster/nodes/:id", auth: authBearer, handle: s.addNode},
		{method: http.MethodDelete, path: "/v1/cluster/nodes/:id", auth: authBearer, handle: s.removeNode},
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
const maxNodeIDLength = 128

// addNode serves PUT /v1/cluster/nodes/:id: the node joins as a voter (or
// has its address updated). Start it first with no --voters, so that it
// waits for the leader instead of bootstrapping.
func (s *Server) addNode(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	id, err := nodeID(ps)
	if err != nil {
		return err
	}
	var body addNodeBody
	if err := s.decodeBody(w, r, &body); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(body.RaftAddress); err != nil || body.RaftAddress == "" {
		return badRequest("raft_address must be host:port")
	}
	if err := checkText("raft_address", body.RaftAddress, 256); err != nil {
		return err
	}
	if err := s.cluster.AddVoter(id, body.RaftAddress); err != nil {
		return err
	}
	s.log.Info("added a voter", "node", id, "raft_address", body.RaftAddress)
	writeJSON(w, http.StatusOK, memberResponse{ID: id, RaftAddress: body.RaftAddress, Member: true})
	return nil
}

// removeNode serves DELETE /v1/cluster/nodes/:id. Removing a node whose
// data was lost, before starting it again empty, keeps its forgotten
// acknowledgements out of every future quorum.
func (s *Server) removeNode(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) error {
	id, err := nodeID(ps)
	if err != nil {
		return err
	}
	if err := s.cluster.RemoveServer(id); err != nil {
		return err
	}
	s.log.Info("removed a node", "node", id)
	writeJSON(w, http.StatusOK, memberResponse{ID: id, Member: false})
	return nil
}

func nodeID(ps httprouter.Params) (string, error) {
	id := ps.ByName("id")
	if id == "" {
		return "", badRequest("node id must not be empty")
	}
	return id, checkText("node id", id, maxNodeIDLength)
}
