// SPDX-License-Identifier: Apache-2.0
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// publishCalls is Redis's count of PUBLISH commands since the last CONFIG RESETSTAT.
func publishCalls(ctx context.Context, rdb *redis.Client) int64 {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		die("redis INFO: %v", err)
	}
	i := strings.Index(s, "cmdstat_publish:calls=")
	if i < 0 {
		return 0
	}
	s = s[i+len("cmdstat_publish:calls="):]
	n, _ := strconv.ParseInt(s[:strings.IndexByte(s, ',')], 10, 64)
	return n
}

// drain -n N [-redis H:P | -stdout] [-term] [-capture FILE] [-timeout S] -- CMD ARGS...
//
// Starts CMD. With -redis, the clock starts at Redis's first PUBLISH (or, with
// -mark, at the child's log line saying it was assigned partitions) and stops
// at its Nth (INFO commandstats, polled every 2 ms, after CONFIG RESETSTAT),
// so a group join is not counted as work; the child is then expected to exit
// by itself (a peer given -n) or, with -term, gets SIGTERM (the bridge). With
// -stdout, the clock runs from the child's first output on stdout to the end
// of it, N is the count of lines (kcat -C -e), and the lines of that first
// output (stdio buffers them: a few hundred) are not counted in the rate.
// Prints one line:
//
//	records=N secs=S rate=R cpu_us=C rss_kib=K sys_us=S minflt=F
//
// cpu_us is the child's utime+stime over N, from its whole life (start-up
// and group join included); rss_kib its VmHWM, sampled every 5 ms; sys_us
// the stime share of cpu_us, minflt the child's minor page faults (memory
// the allocator took from the kernel and touched: a drain whose cpu_us
// rose with them spent it zero-filling pages).
func cmdDrain(args []string) {
	fs := flag.NewFlagSet("drain", flag.ExitOnError)
	n := fs.Int64("n", 0, "")
	addr := fs.String("redis", "", "")
	stdout := fs.Bool("stdout", false, "")
	term := fs.Bool("term", false, "")
	capture := fs.String("capture", "", "")
	timeout := fs.Duration("timeout", 300*time.Second, "")
	logf := fs.String("log", "", "the child's stderr (and stdout unless -stdout) go here")
	mark := fs.String("mark", "", "the clock starts at the child's first output line holding this")
	_ = fs.Parse(args)
	if fs.NArg() == 0 || *n <= 0 {
		die("drain: -n N and a command are required")
	}
	ctx := context.Background()
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	// A contender must not outlive k2rbench (a bridge left running against
	// a stack that is gone would retry forever): die() skips every cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var logw io.Writer = os.Stderr
	if *logf != "" {
		f, err := os.Create(*logf)
		if err != nil {
			die("%v", err)
		}
		defer f.Close()
		logw = f
	}
	// The child's output goes through a pipe, read line by line: its log
	// line saying it was assigned partitions starts the clock (-mark).
	pr, pw, err := os.Pipe()
	if err != nil {
		die("%v", err)
	}
	cmd.Stderr = pw
	var marked atomic.Int64 // UnixNano of the -mark line; 0 until seen
	logDone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if *mark != "" && marked.Load() == 0 && strings.Contains(sc.Text(), *mark) {
				marked.Store(time.Now().UnixNano())
			}
			fmt.Fprintln(logw, sc.Text())
		}
		close(logDone)
	}()

	var rdb *redis.Client
	var sub *redis.PubSub
	var captured chan string
	if *addr != "" {
		rdb = redis.NewClient(&redis.Options{Addr: *addr})
		if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
			die("redis CONFIG RESETSTAT: %v", err)
		}
		if *capture != "" {
			sub, captured = subscribe(ctx, *addr)
			defer sub.Close()
		}
	}
	var first, last, firstPub time.Time
	var lines, untimed int64
	done := make(chan struct{})
	if *stdout {
		out, err := cmd.StdoutPipe()
		if err != nil {
			die("%v", err)
		}
		go func() {
			r := bufio.NewReaderSize(out, 1<<20)
			buf := make([]byte, 1<<20)
			for {
				k, err := r.Read(buf)
				if k > 0 {
					now := time.Now()
					for _, c := range buf[:k] {
						if c == '\n' {
							lines++
						}
					}
					if first.IsZero() {
						// What came before this first read is not timed.
						first, untimed = now, lines
					}
					last = now
				}
				if err != nil {
					break
				}
			}
			close(done)
		}()
	} else {
		cmd.Stdout = pw
	}
	if err := cmd.Start(); err != nil {
		die("start %s: %v", fs.Arg(0), err)
	}
	pw.Close() // the child holds its own copy
	var hwm atomic.Int64
	go sampleHWM(cmd.Process.Pid, &hwm)
	exited := make(chan error, 1)
	go func() {
		if *stdout {
			<-done
		}
		exited <- cmd.Wait()
	}()

	deadline := time.Now().Add(*timeout)
	var waitErr error
	finished := false
	if rdb != nil {
		tick := time.NewTicker(2 * time.Millisecond)
	poll:
		for {
			select {
			case waitErr = <-exited:
				finished = true
				break poll
			case <-tick.C:
			}
			c := publishCalls(ctx, rdb)
			now := time.Now()
			if c > 0 && first.IsZero() {
				first, firstPub = now, now
			}
			if c >= *n {
				last = now
				break
			}
			if now.After(deadline) {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				die("drain: %s published %d of %d in %s", fs.Arg(0), c, *n, *timeout)
			}
		}
		tick.Stop()
		if !finished {
			if *term {
				_ = cmd.Process.Signal(syscall.SIGTERM)
			}
			select {
			case waitErr = <-exited:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				waitErr = <-exited
				die("drain: %s did not exit", fs.Arg(0))
			}
		} else if last.IsZero() {
			die("drain: %s exited (%v) before Redis saw %d PUBLISH", fs.Arg(0), waitErr, *n)
		}
	} else {
		select {
		case waitErr = <-exited:
		case <-time.After(*timeout):
			_ = cmd.Process.Kill()
			die("drain: %s did not finish in %s", fs.Arg(0), *timeout)
		}
		if lines < *n {
			die("drain: %s printed %d lines of %d", fs.Arg(0), lines, *n)
		}
	}
	if waitErr != nil && !*term {
		die("drain: %s: %v", fs.Arg(0), waitErr)
	}
	<-logDone
	if *mark != "" {
		if marked.Load() == 0 {
			die("drain: %s never logged %q", fs.Arg(0), *mark)
		}
		first = time.Unix(0, marked.Load())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	secs := last.Sub(first).Seconds()
	fmt.Printf("records=%d secs=%.3f rate=%.0f cpu_us=%.2f rss_kib=%d sys_us=%.2f minflt=%d", *n, secs,
		float64(*n-untimed)/secs, float64(cpu.Microseconds())/float64(*n), hwm.Load(),
		float64(ru.Stime.Nano())/1e3/float64(*n), ru.Minflt)
	if !firstPub.IsZero() {
		// From the clock's start (with -mark, the assignment) to the first
		// PUBLISH, within 2 ms: the first fetch's share of secs.
		fmt.Printf(" first_ms=%.0f", firstPub.Sub(first).Seconds()*1000)
	}
	fmt.Println()
	if captured != nil {
		writeCapture(*capture, captured, *n)
	}
}

// sampleHWM keeps the largest VmHWM of process pid in *hwm until it is gone.
// Not ru_maxrss: the kernel starts that at the parent's own peak when the
// child execs (the old mm's high-water mark), about 9 MiB of k2rbench here.
// Every 5 ms; a peer's peak while it drains is long enough to be seen.
func sampleHWM(pid int, hwm *atomic.Int64) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		i := strings.Index(string(b), "VmHWM:")
		if i < 0 {
			return // a zombie: its memory is gone
		}
		f := strings.Fields(string(b[i+len("VmHWM:"):]))
		if k, err := strconv.ParseInt(f[0], 10, 64); err == nil && k > hwm.Load() {
			hwm.Store(k)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribe starts a pattern subscriber on events:* and returns the lines
// "channel\tmessage" it receives, in arrival order.
func subscribe(ctx context.Context, addr string) (*redis.PubSub, chan string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	sub := c.PSubscribe(ctx, "events:*")
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		die("redis PSUBSCRIBE: %v", err)
	}
	out := make(chan string, 1<<20)
	go func() {
		for m := range sub.Channel(redis.WithChannelSize(1 << 16)) {
			out <- m.Channel + "\t" + m.Payload
		}
	}()
	return sub, out
}

func writeCapture(path string, lines chan string, n int64) {
	f, err := os.Create(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	defer w.Flush()
	for i := int64(0); i < n; i++ {
		select {
		case l := <-lines:
			fmt.Fprintln(w, l)
		case <-time.After(10 * time.Second):
			die("capture: %d of %d notifications arrived", i, n)
		}
	}
}
