package api

import "github.com/doubledutch/doubledutch/cluster"

// The real node must satisfy the interface api declares.
var _ Cluster = (*cluster.Node)(nil)
