package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Redirects to members added at runtime. A node added after the client
// was configured can become leader, and then every follower redirects
// there. The client follows such a redirect when the cluster itself lists
// the host as a member: it asks the node that redirected (a node it
// already trusts, over the same scheme) for GET /v1/cluster and trusts
// the API URLs of the servers in its Raft configuration. A redirect to a
// host that is neither configured nor a reported member is still refused:
// the key goes only to the cluster's nodes.

// memberTTL bounds how long a reported member stays trusted without being
// reported again, so that a node removed from the cluster (whose address
// may be reused) is not trusted for ever.
const memberTTL = time.Minute

// memberCache holds the members' API URLs the cluster last reported.
type memberCache struct {
	mu      sync.Mutex
	bases   map[string]string // origin -> base URL
	learned time.Time
}

func (m *memberCache) get(o string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.learned) > memberTTL {
		return "", false
	}
	base, ok := m.bases[o]
	return base, ok
}

func (m *memberCache) set(bases map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bases, m.learned = bases, time.Now()
}

// trusts reports whether the key may go to origin o: a configured
// endpoint, or a member the cluster reported within memberTTL.
func (c *Client) trusts(o string) bool {
	if _, ok := c.trusted[o]; ok {
		return true
	}
	_, ok := c.members.get(o)
	return ok
}

// redirectBase returns the base URL of the node a redirect from "from"
// to "next" leads to, if it may be followed: a configured endpoint, or a
// member the cluster reports. A host that is neither gets a
// *RedirectError, and so does one the node did not vouch for (it
// answered GET /v1/cluster with an error); one whose membership could not
// be checked for want of a connection, an error that says nothing was
// applied (the call retries).
func (c *Client) redirectBase(ctx context.Context, from, next *url.URL) (string, error) {
	o := origin(next)
	if base, ok := c.trusted[o]; ok {
		return base, nil
	}
	if base, ok := c.members.get(o); ok {
		return base, nil
	}
	err := c.learnMembers(ctx, from)
	var apiErr *APIError
	if err != nil && !errors.As(err, &apiErr) {
		// Not reached (a connection failure): the member may be real.
		return "", &unfollowedError{to: o, why: "could not check that it is a member: " + err.Error()}
	}
	if base, ok := c.members.get(o); ok {
		return base, nil
	}
	return "", &RedirectError{From: origin(from), To: o}
}

// learnMembers asks the node at from (trusted: the client just sent it a
// request) for its view of the cluster and caches the API URLs of the
// members that announced one. A member reached only over http is not
// learned from an https node: that would be a downgrade.
func (c *Client) learnMembers(ctx context.Context, from *url.URL) error {
	fo := origin(from)
	base, ok := c.trusted[fo]
	if !ok {
		if base, ok = c.members.get(fo); !ok {
			return errors.New("the redirecting node is no longer trusted") // do sends only to trusted nodes
		}
	}
	resp, err := c.send(ctx, http.MethodGet, base+"/v1/cluster", nil)
	if err != nil {
		return err
	}
	var view struct {
		Servers []struct {
			APIURL string `json:"api_url"`
		} `json:"servers"`
	}
	if err := readAnswer(resp, &view); err != nil {
		return err
	}
	bases := make(map[string]string)
	for _, s := range view.Servers {
		u, err := url.Parse(strings.TrimSpace(s.APIURL))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		if strings.EqualFold(from.Scheme, "https") && u.Scheme != "https" {
			continue
		}
		bases[origin(u)] = strings.TrimRight(u.String(), "/")
	}
	c.members.set(bases)
	return nil
}
