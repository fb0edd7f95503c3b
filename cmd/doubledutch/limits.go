package main

// Upper bound of the derived API connection cap: beyond it the memory of
// the connections, not descriptors, is what runs out.
const maxDerivedConnections = 50_000

// capFromLimit is the connection cap for a descriptor limit: the limit
// minus a reserve, at least 16, at most maxDerivedConnections.
func capFromLimit(nofile uint64) int {
	if nofile > maxDerivedConnections+fdReserve {
		return maxDerivedConnections
	}
	return max(int(nofile)-fdReserve, 16)
}
