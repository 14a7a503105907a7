package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

const syscallTERM = syscall.SIGTERM

// detached makes a started process its own session, so that it outlives
// the test.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil && !zombie(pid)
}

// zombie reports whether pid is a zombie (dead, not yet reaped).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// keepNoInheritedFDs marks every descriptor above stderr close-on-exec
// before a long-lived process (incusd) is started from the test: the live
// tests run under `flock /tmp/anklume-live.lock`, whose descriptor the
// test process inherits open across exec, and a daemon that kept it would
// hold the live lock for as long as it runs, blocking every other live
// test. Go opens its own descriptors close-on-exec, so only inherited
// ones change.
func keepNoInheritedFDs() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
