package atomicfile

import (
	"os"
	"os/signal"
	"syscall"
)

// HandleSignals makes SIGINT and SIGTERM (Ctrl-C, kill) remove every live
// temporary and exit the process with the shell's status for the signal:
// 130 for SIGINT, 143 for SIGTERM. A command calls it once at start; a file
// committed before the signal stays, one not yet committed disappears, so
// no partial file is left under any name. It returns a function that
// restores the default behaviour (tests).
func HandleSignals() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			Cleanup()
			os.Exit(ExitCode(sig))
		case <-quit:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}

// ExitCode is the exit status a shell reports for a process killed by sig:
// 128 plus the signal number (130 for SIGINT, 143 for SIGTERM).
func ExitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}
