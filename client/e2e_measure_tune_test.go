package client_test

import "github.com/doubledutch/doubledutch/client"

// measureTune configures the measured client (the defaults).
func measureTune(*client.Config) {}
