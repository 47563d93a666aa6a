# SPDX-License-Identifier: Apache-2.0
"""The Python peer of bench/compare.sh: what a Python team would write instead
of the bridge, with confluent-kafka and redis-py.

It joins a consumer group, consumes batches, maps each record to the channel
events:{source_type}:{source_id} and a notification {"id","type","source_id"}
(the bridge's bench rule), PUBLISHes a batch's notifications in one pipeline
and stores the batch's offsets only after Redis replied to all of them
(librdkafka's auto-commit then commits what is stored; a final commit on
exit). It stops once it has published -n records.

Not part of the bridge: the idiomatic, reasonably careful peer it is
measured against.
"""
import argparse
import json
import sys

import redis
from confluent_kafka import Consumer, KafkaException, TopicPartition


def log_assignment(_consumer, partitions):
    names = ", ".join(f"{p.topic}[{p.partition}]" for p in partitions)
    print(f"assigned {names}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--redis", default="127.0.0.1:6379", help="host:port")
    ap.add_argument("-n", type=int, default=0, help="exit after this many records (0: never)")
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        # Commit only offsets stored after Redis replied.
        "enable.auto.offset.store": False,
    })
    consumer.subscribe([args.topic], on_assign=log_assignment)
    host, port = args.redis.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))

    published = 0
    try:
        while args.n == 0 or published < args.n:
            msgs = consumer.consume(num_messages=args.batch, timeout=1.0)
            if not msgs:
                continue
            pipe = r.pipeline(transaction=False)
            nexts = {}
            taken = 0
            for m in msgs:
                if m.error():
                    print(f"kafka: {m.error()}", file=sys.stderr)
                    continue
                nexts[(m.topic(), m.partition())] = m.offset() + 1
                taken += 1
                try:
                    ev = json.loads(m.value())
                    channel = f"events:{ev['source_type']}:{ev['source_id']}"
                    note = {"id": ev["id"], "type": ev["type"], "source_id": ev["source_id"]}
                except (ValueError, KeyError, TypeError):
                    continue  # skipped, like the bridge's on_error: skip
                pipe.publish(channel, json.dumps(note, separators=(",", ":")))
            pipe.execute()
            if nexts:
                consumer.store_offsets(offsets=[TopicPartition(t, p, o) for (t, p), o in nexts.items()])
            published += taken
    finally:
        try:
            consumer.commit(asynchronous=False)
        except KafkaException:
            pass  # nothing stored yet
        consumer.close()


if __name__ == "__main__":
    main()
