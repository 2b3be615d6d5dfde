package engine

// Progress reports how far the engine's runs have come, over every Run call
// so far: the rounds finished and the rounds planned, where a round is one
// attempt of a target (one per resolved address under AddressAll). It is
// safe to call while Run runs, for a progress display.
func (e *Engine) Progress() (done, planned int64) {
	return e.done.Load(), e.planned.Load()
}
