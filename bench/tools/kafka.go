// SPDX-License-Identifier: Apache-2.0
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newTopic creates topic with the given partitions (an existing one is an error:
// every run uses a fresh name).
func newTopic(ctx context.Context, brokers, topic string, partitions int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		die("kafka: %v", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		die("create topic %s: %v", topic, err)
	}
}

func producer(brokers string, opts ...kgo.Opt) *kgo.Client {
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchMaxBytes(1 << 20),
	}, opts...)
	if os.Getenv("K2RBENCH_KGOLOG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") })))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		die("kafka: %v", err)
	}
	return cl
}

// produce -brokers B -topic T -partitions P -file F [-repeat R]: the file's
// lines, R times over, round-robin over the partitions.
func cmdProduce(args []string) {
	fs := flag.NewFlagSet("produce", flag.ExitOnError)
	brokers := fs.String("brokers", "", "")
	topic := fs.String("topic", "", "")
	partitions := fs.Int("partitions", 3, "")
	file := fs.String("file", "", "")
	_ = fs.Parse(args)
	ctx := context.Background()
	newTopic(ctx, *brokers, *topic, *partitions)
	cl := producer(*brokers, kgo.DefaultProduceTopic(*topic), kgo.MaxBufferedRecords(100000))
	defer cl.Close()
	f, err := os.Open(*file)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	n := 0
	var failed error
	for sc.Scan() {
		v := append([]byte(nil), sc.Bytes()...)
		cl.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed = err
			}
		})
		n++
	}
	if err := cl.Flush(ctx); err != nil || failed != nil {
		die("produce: %v %v", err, failed)
	}
	fmt.Fprintf(os.Stderr, "k2rbench: %d records in %s (%d partitions)\n", n, *topic, *partitions)
}

// webhooks -in index.json -n N: N seed-shaped events, one a line, each
// carrying one real webhook payload (cycled) as "payload": id wK, type the
// webhook's kind, source_type repo (repository.full_name) or user
// (sender.login).
func cmdWebhooks(args []string) {
	fs := flag.NewFlagSet("webhooks", flag.ExitOnError)
	in := fs.String("in", "", "")
	n := fs.Int("n", 20000, "")
	_ = fs.Parse(args)
	raw, err := os.ReadFile(*in)
	if err != nil {
		die("%v", err)
	}
	var defs []struct {
		Name     string            `json:"name"`
		Examples []json.RawMessage `json:"examples"`
	}
	if err := json.Unmarshal(raw, &defs); err != nil {
		die("%s: %v", *in, err)
	}
	type example struct {
		kind, stype, sid string
		body             json.RawMessage
	}
	var all []example
	for _, d := range defs {
		for _, e := range d.Examples {
			var p struct {
				Repository *struct {
					FullName string `json:"full_name"`
				} `json:"repository"`
				Sender *struct {
					Login string `json:"login"`
				} `json:"sender"`
			}
			if json.Unmarshal(e, &p) != nil {
				continue
			}
			switch {
			case p.Repository != nil && p.Repository.FullName != "":
				all = append(all, example{d.Name, "repo", p.Repository.FullName, e})
			case p.Sender != nil && p.Sender.Login != "":
				all = append(all, example{d.Name, "user", p.Sender.Login, e})
			}
		}
	}
	if len(all) == 0 {
		die("%s: no usable example", *in)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	for i := 0; i < *n; i++ {
		e := all[i%len(all)]
		var body bytes.Buffer
		if err := json.Compact(&body, e.body); err != nil {
			die("%v", err)
		}
		fmt.Fprintf(w, "{\"id\":\"w%d\",\"type\":%s,\"source_type\":%s,\"source_id\":%s,\"payload\":%s}\n",
			i, jstr(e.kind), jstr(e.stype), jstr(e.sid), body.String())
	}
}

func jstr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
