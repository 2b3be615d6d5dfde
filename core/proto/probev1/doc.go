// Package probev1 is the plugin protocol, major version 1: the Plugin gRPC
// service of probe.proto and its messages, as generated code. `make proto`
// regenerates it.
package probev1
