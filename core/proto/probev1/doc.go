// Package probev1 is the plugin protocol, major version 1: the Plugin gRPC
// service of probe.proto and its messages, as generated code that `make
// proto` regenerates, and the hand-written codec of a phase's attributes
// (attrs.go).
package probev1
