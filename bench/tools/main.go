// SPDX-License-Identifier: Apache-2.0
//
// k2rbench: the measuring half of bench/compare.sh. One binary, one
// subcommand per job, so that every contender (the bridge, the peers, kcat)
// is timed, charged and checked by the same code:
//
//	produce   create a topic with P partitions and write a file's lines to it
//	webhooks  turn the @octokit/webhooks-examples index into seed-shaped events
//	drain     run a contender as a child until Redis saw N PUBLISHes (or, with
//	          -stdout, until the child's stdout ends): records/s from its
//	          assignment to the last, its CPU (utime+stime) and peak RSS
//	          (VmHWM); with -capture, also what it published (PSUBSCRIBE
//	          events:*), for the byte-for-byte comparison of notifications
//	latency   produce at a steady rate with the produce time in each event,
//	          receive the notifications on a pattern subscriber, report p50,
//	          p99 and max, and the contender's CPU per record in the window
//	report    the Markdown table, the ratios and the regression guard
//
// It is a bench tool: it trusts its inputs and exits on the first error.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmds := map[string]func([]string){
		"produce":  cmdProduce,
		"webhooks": cmdWebhooks,
		"drain":    cmdDrain,
		"latency":  cmdLatency,
		"report":   cmdReport,
	}
	f, ok := cmds[os.Args[1]]
	if !ok {
		usage()
	}
	f(os.Args[2:])
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: k2rbench produce|webhooks|drain|latency|report [flags]")
	os.Exit(2)
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "k2rbench: "+format+"\n", args...)
	os.Exit(1)
}
