// SPDX-License-Identifier: Apache-2.0
//
// The Go peer of bench/compare.sh: what a Go team would write instead of the
// bridge, with franz-go and go-redis. It joins a consumer group, polls
// fetches, maps each record to the channel events:{source_type}:{source_id}
// and a notification {"id","type","source_id"} (the bridge's bench rule),
// PUBLISHes every notification of one fetch in one pipeline and marks the
// fetch's offsets for commit only after Redis replied to all of them
// (franz-go's autocommit then commits what is marked; a final commit on
// exit). It stops once it has published -n records.
//
// It is not part of the bridge, and not a reference implementation: it is
// the idiomatic, reasonably careful peer the bridge is measured against.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
)

type event struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	SourceType string `json:"source_type"`
	SourceID   string `json:"source_id"`
}

type notification struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	SourceID string `json:"source_id"`
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	topic := flag.String("topic", "", "topic to consume")
	group := flag.String("group", "", "consumer group")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis host:port")
	n := flag.Int("n", 0, "exit after publishing this many records (0: never)")
	flag.Parse()
	if *topic == "" || *group == "" {
		log.Fatal("-topic and -group are required")
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(*topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Commit only what was marked, i.e. what Redis acknowledged.
		kgo.AutoCommitMarks(),
		// No rebalance while a fetch is being published.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			log.Printf("assigned %v", assigned)
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
	defer rdb.Close()

	ctx := context.Background()
	published := 0
	for *n == 0 || published < *n {
		fetches := cl.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 {
			for _, e := range errs {
				log.Printf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
			}
		}
		pipe := rdb.Pipeline()
		var done []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			done = append(done, r)
			var ev event
			if err := json.Unmarshal(r.Value, &ev); err != nil || ev.SourceType == "" || ev.SourceID == "" {
				return // skipped, like the bridge's on_error: skip
			}
			msg, err := json.Marshal(notification{ev.ID, ev.Type, ev.SourceID})
			if err != nil {
				return
			}
			pipe.Publish(ctx, "events:"+ev.SourceType+":"+ev.SourceID, msg)
		})
		if pipe.Len() > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				// Nothing marked: the next member (or a restart) reads these again.
				log.Fatalf("redis: %v", err)
			}
		}
		cl.MarkCommitRecords(done...)
		cl.AllowRebalance()
		published += len(done)
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "commit: %v\n", err)
		os.Exit(1)
	}
}
