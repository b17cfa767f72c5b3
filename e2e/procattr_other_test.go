//go:build !linux

package e2e

import "os/exec"

// dieWithParent: only Linux offers a parent-death signal; elsewhere TestMain's
// own clean-up is all there is.
func dieWithParent(*exec.Cmd) {}
