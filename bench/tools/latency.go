// SPDX-License-Identifier: Apache-2.0
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cpuTicks is utime+stime of process pid, all threads, in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		die("%v", err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// latency -brokers B -topic T -redis H:P -rate R -secs S -- CMD ARGS...
//
// Creates T (3 partitions), starts CMD (a contender reading T with a fresh
// group), then produces R events a second, each carrying its produce time
// ("ts", µs since the epoch) and a sequence number in its id. A pattern
// subscriber (PSUBSCRIBE events:*) takes each notification's arrival time;
// latency is arrival minus the produce time of that id. Events go out from
// the start until one arrives (the contender has joined); the S-second
// measured window starts two seconds later. Prints one line:
//
//	records=N p50_ms=.. p99_ms=.. max_ms=.. cpu_us=.. lost=L ack_p99_ms=.. ack_max_ms=..
//
// ack_*: from the produce call to Kafka's acknowledgement, the part of the
// latency no contender can change (a stall there is the broker's or the
// machine's).
// cpu_us: the child's CPU (utime+stime, /proc) during the window over the
// records produced in it. The child gets SIGTERM at the end. With
// K2RBENCH_DEBUG set, one record's latency every 100 ms goes to stderr.
func cmdLatency(args []string) {
	fs := flag.NewFlagSet("latency", flag.ExitOnError)
	brokers := fs.String("brokers", "", "")
	topic := fs.String("topic", "", "")
	addr := fs.String("redis", "", "")
	rate := fs.Int("rate", 5000, "")
	secs := fs.Int("secs", 10, "")
	logf := fs.String("log", "", "")
	_ = fs.Parse(args)
	ctx := context.Background()
	newTopic(ctx, *brokers, *topic, 3)
	_, notes := subscribe(ctx, *addr)

	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // see drain
	if *logf != "" {
		f, err := os.Create(*logf)
		if err != nil {
			die("%v", err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		die("start: %v", err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	cl := producer(*brokers, kgo.DefaultProduceTopic(*topic), kgo.ProducerLinger(0))
	defer cl.Close()

	maxRecs := (*secs + 120) * *rate
	sent := make([]int64, maxRecs) // produce time (ns since start) by sequence number
	arrived := make([]int64, maxRecs)
	acked := make([]int64, maxRecs) // when Kafka acknowledged the record
	t0 := time.Now()
	var seen atomic.Int64 // notifications received
	var firstSeen atomic.Int64
	firstSeen.Store(-1)
	go func() {
		for l := range notes {
			now := time.Since(t0).Nanoseconds()
			msg := l[strings.IndexByte(l, '\t')+1:]
			var nt struct {
				ID string `json:"id"`
			}
			if json.Unmarshal([]byte(msg), &nt) != nil || !strings.HasPrefix(nt.ID, "L") {
				continue
			}
			seq, err := strconv.Atoi(nt.ID[1:])
			if err != nil || seq >= maxRecs {
				continue
			}
			atomic.StoreInt64(&arrived[seq], now)
			if seen.Add(1) == 1 {
				firstSeen.Store(int64(seq))
			}
		}
	}()

	// Produce at a steady pace: every millisecond, what is due by now.
	seq := 0
	winStart, winEnd := -1, -1
	var cpu0, cpu1 int64
	var tWin0 time.Time
	interval := time.Second / time.Duration(*rate)
	for {
		el := time.Since(t0)
		due := int(el / interval)
		for ; seq < due && seq < maxRecs; seq++ {
			ts := time.Now()
			sent[seq] = ts.Sub(t0).Nanoseconds()
			v := fmt.Sprintf(`{"id":"L%d","type":"push","source_type":"user","source_id":"u%d","ts":%d,"payload":{"ref":"refs/heads/main"}}`,
				seq, seq%1000, ts.UnixMicro())
			i := seq
			cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err != nil {
					die("produce: %v", err)
				}
				atomic.StoreInt64(&acked[i], time.Since(t0).Nanoseconds())
			})
		}
		if winStart < 0 && seen.Load() > 0 {
			if first := firstSeen.Load(); first >= 0 && sent[first]+int64(2*time.Second) < el.Nanoseconds() {
				winStart, tWin0 = seq, time.Now()
				cpu0 = cpuTicks(cmd.Process.Pid)
			}
		}
		if winStart >= 0 && time.Since(tWin0) >= time.Duration(*secs)*time.Second {
			winEnd = seq
			cpu1 = cpuTicks(cmd.Process.Pid)
			break
		}
		if seq >= maxRecs {
			die("latency: nothing arrived in %d s", *secs+120)
		}
		time.Sleep(time.Millisecond)
	}
	// Wait for the window's notifications (at most 10 s more).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		missing := 0
		for i := winStart; i < winEnd; i++ {
			if atomicLoad(&arrived[i]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lat, ack []float64
	lost := 0
	for i := winStart; i < winEnd; i++ {
		if k := atomicLoad(&acked[i]); k > 0 {
			ack = append(ack, float64(k-sent[i])/1e6)
		}
		a := atomicLoad(&arrived[i])
		if a == 0 {
			lost++
			continue
		}
		lat = append(lat, float64(a-sent[i])/1e6)
	}
	if os.Getenv("K2RBENCH_DEBUG") != "" {
		for i := winStart; i < winEnd; i += *rate / 10 {
			fmt.Fprintf(os.Stderr, "t=%.1fs sent seq %d: %.1f ms\n", float64(sent[i])/1e9, i, float64(atomicLoad(&arrived[i])-sent[i])/1e6)
		}
	}
	if len(lat) == 0 {
		die("latency: no notification in the window")
	}
	sort.Float64s(lat)
	sort.Float64s(ack)
	if len(ack) == 0 {
		ack = []float64{0}
	}
	hz := 100.0 // USER_HZ on Linux
	n := winEnd - winStart
	fmt.Printf("records=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f cpu_us=%.2f lost=%d ack_p99_ms=%.2f ack_max_ms=%.2f\n", n,
		lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1],
		float64(cpu1-cpu0)/hz*1e6/float64(n), lost, ack[len(ack)*99/100], ack[len(ack)-1])
}

func atomicLoad(p *int64) int64 { return atomic.LoadInt64(p) }
