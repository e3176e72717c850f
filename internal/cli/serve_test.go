package cli

import (
	"os"
	"runtime/debug"
	"testing"
)

// serve raises the collector's target unless the operator set GOGC, whose
// value then stands (Go applied it at start).
func TestTuneGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })

	t.Setenv("GOGC", "50")
	TuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the target is %d; want it left alone (100)", got)
	}

	os.Unsetenv("GOGC") // t.Setenv restores it afterwards
	TuneGC()
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC, the target is %d; want %d", got, defaultGCPercent)
	}
}
