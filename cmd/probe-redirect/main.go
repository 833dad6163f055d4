/*
Copyright 2026 The probe-redirect-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command probe-redirect tells, before a change merges, which kubelet probes will break in the
// mesh: `probe-redirect analyze -f manifests/`. Installed as kubectl-prp it is the kubectl
// plugin `kubectl prp analyze`.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFindings = 1 // --fail-on matched
	exitError    = 2 // bad flags or unreadable input
)

func main() {
	cmd := newRootCommand(filepath.Base(os.Args[0]), os.Stdin, os.Stdout, os.Stderr)
	err := cmd.Execute()
	var findings errFindings
	switch {
	case err == nil:
		os.Exit(exitOK)
	case errors.As(err, &findings):
		os.Exit(exitFindings)
	default:
		_, _ = fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(exitError)
	}
}
